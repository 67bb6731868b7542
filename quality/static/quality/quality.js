// The Quality page's plots: Vega-Lite specs built from the figures the page carries as JSON
// (<script type="application/json" id="quality-figures">, the same dict as the API's answer), drawn
// by vega-embed into each .plot container. Vega runs its expressions through vega-interpreter, so
// nothing is compiled with Function/eval and the page keeps its strict Content-Security-Policy.
// vega, vega-lite and vega-embed are classic deferred scripts placed before this module: they
// have run (window.vega, window.vegaEmbed) when it does.

import { expressionInterpreter } from "./vendor/vega-interpreter-2.3.2.js";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";
const DRAFT = "LLM draft";
const FINAL = "human final";
const OUTCOMES = ["improved", "same", "worse"];

const EMBED_OPTIONS = {
  actions: false,
  renderer: "svg",
  ast: true,
  expr: expressionInterpreter,
  defaultStyle: false, // an injected <style>: refused by the policy; quality.css has what is needed
  tooltip: { disableDefaultStyle: true },
};

const CONFIG = {
  font: "system-ui, sans-serif",
  view: { stroke: "#e3e6eb" },
  axis: { labelColor: "#1d2330", titleColor: "#4b5563", gridColor: "#eef0f3" },
  header: { labelFontSize: 12, labelFontWeight: "bold" },
  legend: { orient: "bottom" },
};

function criteriaOf(figures) {
  const held = Object.keys(figures.drafter.criteria);
  const ordered = figures.options.criteria.filter((c) => held.includes(c));
  return ordered.concat(held.filter((c) => !ordered.includes(c)));
}

// One small chart per value of ``field`` (a criterion, a text), side by side in the order given.
function columnBy(field, order, spec, extra = {}) {
  return { facet: { column: { field, type: "nominal", title: null, sort: order } }, spec, ...extra };
}

// Score distributions: per criterion, how many turns got each score from the draft and from the reviewer.
export function scoresSpec(figures) {
  const values = [];
  for (const criterion of criteriaOf(figures)) {
    const c = figures.drafter.criteria[criterion];
    c.confusion.labels.forEach((label, i) => {
      values.push({ criterion, score: label, source: DRAFT, turns: c.draft_distribution[i] });
      values.push({ criterion, score: label, source: FINAL, turns: c.final_distribution[i] });
    });
  }
  if (!values.some((v) => v.turns > 0)) return null;
  return {
    $schema: SCHEMA,
    description: "Bars: for each criterion, how many reviewed turns got each score from the LLM draft and from the reviewer.",
    data: { values },
    ...columnBy("criterion", criteriaOf(figures), {
      width: 170,
      height: 160,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: { field: "score", type: "ordinal", title: "score", axis: { labelAngle: 0 } },
        xOffset: { field: "source", type: "nominal", sort: [DRAFT, FINAL] },
        y: { field: "turns", type: "quantitative", title: "turns" },
        color: { field: "source", type: "nominal", title: null, scale: { domain: [DRAFT, FINAL], range: ["#9db4d8", "#1f5fae"] } },
      },
    }),
  };
}

// The draft × final confusion matrix of each criterion as a heatmap, counts written in the cells.
export function confusionSpec(figures) {
  const values = [];
  let labels = [];
  for (const criterion of criteriaOf(figures)) {
    const { labels: own, counts } = figures.drafter.criteria[criterion].confusion;
    own.forEach((draft, i) => own.forEach((final, j) => counts[i][j] > 0 && values.push({ criterion, draft, final, turns: counts[i][j] })));
    labels = own.length > labels.length ? own : labels;
  }
  if (!values.length) return null;
  const dark = Math.max(...values.map((v) => v.turns)) / 2; // counts written white on the darker cells
  return {
    $schema: SCHEMA,
    description: "Heatmap: for each criterion, the LLM draft’s score (rows) against the reviewer’s final score (columns), in counts of turns.",
    data: { values },
    ...columnBy("criterion", criteriaOf(figures), {
      width: 165,
      height: 165,
      encoding: {
        x: { field: "final", type: "ordinal", title: "human final score", axis: { labelAngle: 0 }, scale: { domain: labels } },
        y: { field: "draft", type: "ordinal", title: "LLM draft score", scale: { domain: [...labels].reverse() } },
      },
      layer: [
        {
          mark: { type: "rect", tooltip: true },
          encoding: { color: { field: "turns", type: "quantitative", title: "turns", scale: { scheme: "blues" } } },
        },
        {
          mark: { type: "text", fontSize: 10, tooltip: true },
          encoding: {
            text: { field: "turns", type: "quantitative" },
            color: { condition: { test: `datum.turns > ${dark}`, value: "#fff" }, value: "#1d2330" },
          },
        },
      ],
    }),
  };
}

// The edit distance histograms of the critique and the refinement (0 = kept as drafted).
export function editsSpec(figures) {
  const values = [];
  for (const text of ["critique", "refinement"]) {
    const { edges, counts } = figures.drafter.text[text].histogram;
    counts.forEach((turns, i) => values.push({ text, from: edges[i], to: edges[i + 1], turns }));
  }
  if (!values.some((v) => v.turns > 0)) return null;
  return {
    $schema: SCHEMA,
    description: "Histograms of the word edit distance from the draft to the final critique and refinement.",
    data: { values },
    ...columnBy("text", ["critique", "refinement"], {
      width: 200,
      height: 160,
      mark: { type: "bar", tooltip: true, color: "#1f5fae" },
      encoding: {
        x: { field: "from", type: "quantitative", bin: { binned: true, step: 0.1 }, title: "word edit distance", scale: { domain: [0, 1] } },
        x2: { field: "to" },
        y: { field: "turns", type: "quantitative", title: "turns" },
      },
    }),
  };
}

// Within ±1 and kappa of each prompt version, week by week (weeks where a figure is undefined are left out).
export function overTimeSpec(figures) {
  const values = [];
  for (const row of figures.drafter.over_time) {
    for (const [metric, key] of [["within ±1", "within_1"], ["weighted κ", "kappa"]]) {
      if (row[key] !== null && row[key] !== undefined) {
        values.push({ prompt_version: row.prompt_version, week: row.week, metric, value: row[key], n: row.n });
      }
    }
  }
  if (!values.length) return null;
  return {
    $schema: SCHEMA,
    description: "Lines: within plus or minus one and weighted kappa of each prompt version, week by week.",
    data: { values },
    ...columnBy("metric", ["within ±1", "weighted κ"], {
      width: 220,
      height: 160,
      mark: { type: "line", point: true, tooltip: true },
      encoding: {
        x: { field: "week", type: "temporal", timeUnit: "utcyearmonthdate", title: "week" },
        y: { field: "value", type: "quantitative", title: null },
        color: { field: "prompt_version", type: "nominal", title: "prompt version" },
      },
    }),
    resolve: { scale: { y: "independent" } },
  };
}

// Mean score of each model's answers, with its interval, side by side per criterion.
export function modelsSpec(figures) {
  const values = [];
  for (const model of figures.models) {
    for (const [criterion, s] of Object.entries(model.scores)) {
      if (s.mean.value === null) continue;
      const [lo, hi] = s.mean.ci || [s.mean.value, s.mean.value];
      values.push({ model: model.model, criterion, mean: s.mean.value, lo, hi, n: s.mean.n, reviewed: s.human, drafts: s.draft });
    }
  }
  if (!values.length) return null;
  const scale = { domain: [figures.scale.min, figures.scale.max] };
  return {
    $schema: SCHEMA,
    description: "Points with intervals: the mean score of each model’s answers, per criterion.",
    data: { values },
    ...columnBy("criterion", criteriaOf(figures), {
      width: 165,
      encoding: { y: { field: "model", type: "nominal", title: null } },
      layer: [
        { mark: { type: "rule", color: "#6b7280" }, encoding: { x: { field: "lo", type: "quantitative", scale, title: "mean score" }, x2: { field: "hi" } } },
        { mark: { type: "point", filled: true, size: 70, tooltip: true }, encoding: { x: { field: "mean", type: "quantitative", scale }, color: { field: "model", type: "nominal", legend: null } } },
      ],
    }),
  };
}

// Round to round: the share of second-round answers that scored higher, the same or lower, per model and criterion.
export function interactionSpec(figures) {
  const values = [];
  for (const model of figures.models) {
    for (const [criterion, change] of Object.entries(model.interaction)) {
      for (const outcome of OUTCOMES) {
        const share = change[outcome];
        if (share && share.value !== null) {
          values.push({ model: model.model, criterion, outcome, share: share.value, n: change.n, order: OUTCOMES.indexOf(outcome) });
        }
      }
    }
  }
  if (!values.length) return null;
  return {
    $schema: SCHEMA,
    description: "Stacked bars: the share of second-round answers that scored higher, the same or lower, per model and criterion.",
    data: { values },
    ...columnBy("criterion", criteriaOf(figures), {
      width: 165,
      mark: { type: "bar", tooltip: true },
      encoding: {
        y: { field: "model", type: "nominal", title: null },
        x: { field: "share", type: "quantitative", stack: "zero", title: "share of rounds", axis: { format: "%" }, scale: { domain: [0, 1] } },
        color: { field: "outcome", type: "nominal", title: null, scale: { domain: OUTCOMES, range: ["#2f8f4e", "#b8bec8", "#c0392b"] } },
        order: { field: "order", type: "quantitative" },
      },
    }),
  };
}

const PLOTS = {
  "plot-scores": scoresSpec,
  "plot-confusion": confusionSpec,
  "plot-edits": editsSpec,
  "plot-over-time": overTimeSpec,
  "plot-models": modelsSpec,
  "plot-interaction": interactionSpec,
};

function say(container, className, text) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  container.replaceChildren(p);
}

async function draw(container, build, figures) {
  const spec = build(figures);
  if (spec === null) {
    say(container, "plot-empty", "Nothing to plot for these filters.");
    container.dataset.state = "empty";
    return;
  }
  spec.config = CONFIG;
  try {
    await window.vegaEmbed(container, spec, EMBED_OPTIONS);
    container.dataset.state = "drawn";
  } catch (error) {
    say(container, "plot-error", `This plot could not be drawn: ${error.message}`);
    container.dataset.state = "error";
    console.error(error);
  }
}

const source = document.getElementById("quality-figures");
if (source) {
  const figures = JSON.parse(source.textContent);
  await Promise.all(
    Object.entries(PLOTS).map(([id, build]) => {
      const container = document.getElementById(id);
      return container ? draw(container, build, figures) : null;
    }),
  );
  document.body.dataset.plots = "done";
}
