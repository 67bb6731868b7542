// Rendering of the diffs the server computed (feedback/review/diff.py is the one implementation):
// segments [op, text], op one of "same", "del", "ins". Texts are set as text, never as HTML.
import {element} from "./dom.js";

const OPS = new Set(["same", "del", "ins"]);

export function renderSegments(segments, doc = document) {
  const fragment = doc.createDocumentFragment();
  for (const [op, text] of segments || []) {
    if (!OPS.has(op)) continue;
    if (op === "same") {
      fragment.appendChild(doc.createTextNode(text));
    } else {
      const node = doc.createElement(op);
      node.textContent = text;
      fragment.appendChild(node);
    }
  }
  return fragment;
}

const changed = (segments) => (segments || []).some(([op]) => op !== "same");
const title = (name) => name[0].toUpperCase() + name.slice(1) + ": ";

// The live diff of a turn: {critique, refinement, scores} as the autosave answer (or the page)
// gives it, as nodes; a message when nothing changed or there is no draft.
export function renderLiveDiff(diff, {hasDraft}) {
  const parts = [];
  for (const name of ["critique", "refinement"]) {
    if (!diff || !changed(diff[name])) continue;
    const row = element("div", undefined, "diff-body");
    row.dataset.field = name;
    row.appendChild(element("strong", title(name)));
    row.appendChild(renderSegments(diff[name]));
    parts.push(row);
  }
  const scores = (diff && diff.scores) || [];
  if (scores.length) {
    const text = scores.map(([criterion, before, after]) => `${criterion} ${before ?? "–"} → ${after ?? "–"}`);
    parts.push(element("div", "Scores: " + text.join(", "), "diff-body score-changes"));
  }
  if (!parts.length) parts.push(element("span", hasDraft ? "No changes to the draft." : "No draft to compare with.", "muted"));
  return parts;
}
