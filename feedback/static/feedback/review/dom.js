// Small DOM helpers shared by the review modules.
export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

// An element with its text set as text (never parsed as HTML) and an optional class.
export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// The status line (role="status") and the banner (role="alert"): both live regions in the page.
export function setStatus(text, kind = "") {
  const status = $("#status");
  status.textContent = text;
  status.className = "status " + kind;
}

export function showBanner(text, kind = "") {
  const banner = $("#banner");
  banner.textContent = text;
  banner.className = "banner " + kind;
  banner.hidden = false;
}
