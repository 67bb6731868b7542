// The page's configuration: written by the server (feedback/review/views.py) into
// <script type="application/json" id="review-config">; states, decisions and their labels, the
// rubric's criteria, scale and level descriptions, and the keyboard shortcuts all come from there.
export function readConfig(doc = document) {
  const config = JSON.parse(doc.getElementById("review-config").textContent);
  return Object.freeze(config);
}

// The label of a decision value ("edited" → "Edited"), as the server names it.
export const decisionLabel = (config, value) => config.decisionLabels[value] || value;

// Whether the page may be edited: the assignment's state is one the server lists as editable.
export const isEditable = (config) => config.editableStates.includes(config.state);

// The score criteria's level descriptions: "4" → "Adequate." (empty when the rubric has none).
export const levelDescription = (config, score) => config.levels[String(score)] || "";
