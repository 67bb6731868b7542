// Asks before a form with data-confirm="question" is submitted; the strict Content-Security-Policy
// refuses inline onsubmit="..." handlers. Delegated from the document, so forms that htmx swaps in
// later are covered too.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
  if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
});
