// The review screen: wires the modules together. The server renders the page and its configuration
// (#review-config); editors (editor.js) save through the REST API (api.js) via the outbox (outbox.js);
// diffs are the server's, rendered by diff.js; the image viewer is viewer.js; keys are keyboard.js.
import {$, $$, setStatus, showBanner} from "./dom.js";
import {api, fieldErrors, Offline} from "./api.js";
import {isEditable, readConfig} from "./config.js";
import {Outbox} from "./outbox.js";
import {TurnEditor} from "./editor.js";
import {setupViewer} from "./viewer.js";
import {Keyboard} from "./keyboard.js";

const config = readConfig();
const {LEASED, EXPIRED} = config.states;
const assignmentUrl = (path) => config.api + path;
const editors = new Map();
let current = null;
let completing = false;

// --- the outbox: saves and autosaves, retried while the network is down ---------------------
const outbox = new Outbox({
  async sendSave(turnId, body) {
    const result = await api("POST", assignmentUrl(`turns/${turnId}/revisions/`), body);
    editors.get(turnId).saved(body, result);
  },
  async sendCopy(turnId, body) {
    const result = await api("PUT", assignmentUrl(`turns/${turnId}/working-copy/`), body);
    editors.get(turnId).copied(body, result);
  },
  onOffline(delay) {
    setStatus(`Offline: your text is kept on this device; retrying in ${Math.round(delay / 1000)} s…`, "warn");
  },
  onBackOnline() { setStatus("Back online: everything you typed is saved.", "ok"); },
});
window.addEventListener("online", () => outbox.schedule(0));

// --- the sample: complete, next, skip, flag, lease -------------------------------------------
const nextButton = $("#next");
async function next() {
  if (outbox.size) {
    setStatus("Saving your changes first…", "warn");
    await outbox.flush();
    if (outbox.size) return;
  }
  try {
    const result = await api("POST", config.claim);
    if (result.status === 200 && result.data) {
      location.href = config.page.replace(/0\/$/, `${result.data.id}/`);
    } else if (result.status === 204) {
      location.href = config.home;
    } else {
      showBanner((result.data && result.data.detail) || "Could not claim the next sample.", "bad");
    }
  } catch (error) {
    if (!(error instanceof Offline)) throw error;
    setStatus("Offline: cannot fetch the next sample yet.", "warn");
  }
}
function forgetAll() {
  for (const editor of editors.values()) editor.forgetLocal();
}
function complete() {
  if (completing) return;
  completing = true;
  forgetAll();
  const mine = $("#mine-today");
  if (mine) mine.textContent = String(Number(mine.textContent) + 1);
  setStatus("Sample reviewed. Moving on…", "ok");
  nextButton.hidden = false;
  setTimeout(next, 700);
}
async function endLease(kind, body) {
  try {
    const result = await api("POST", assignmentUrl(`${kind}/`), body);
    if (result.status === 200) {
      forgetAll();
      return next();
    }
    const refused = result.status === 400 && result.data ? fieldErrors(result.data) : result.data && result.data.detail;
    showBanner(refused || `Could not ${kind} (${result.status}).`, "bad");
  } catch (error) {
    if (!(error instanceof Offline)) throw error;
    setStatus(`Offline: cannot ${kind} yet; try again when the network is back.`, "warn");
  }
}
const holding = () => config.mine && config.state === LEASED;
const skip = () => holding() && endLease("skip");
function leaseLost(detail) {
  showBanner((detail || "Your lease ran out and another reviewer took this sample.")
    + " Your text is kept on this device; copy what you need.", "bad");
}
async function renew() {
  if (!config.mine || ![LEASED, EXPIRED].includes(config.state) || completing) return;
  try {
    const result = await api("POST", assignmentUrl("renew/"));
    if (result.status === 409) leaseLost(result.data && result.data.detail);
  } catch (error) { /* the next tick tries again */ }
}
if (holding()) {
  setInterval(renew, config.renewSeconds * 1000);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") renew(); });
}
if (config.mine && config.state === EXPIRED) renew();
nextButton.addEventListener("click", next);
$("#skip")?.addEventListener("click", skip);

const flagDialog = $("#flag-dialog");
const openFlag = () => { if (holding()) flagDialog.showModal(); };
$("#flag-open")?.addEventListener("click", openFlag);
flagDialog.addEventListener("close", () => {
  if (flagDialog.returnValue !== "flag") return;
  const form = $("#flag-form");
  endLease("flag", {flag: form.elements.flag.value, note: form.elements.note.value});
});
flagDialog.addEventListener("keydown", (event) => {
  const radios = $$("input[name=flag]", flagDialog);
  const index = Number(event.key) - 1;
  if (index >= 0 && index < radios.length && event.target.tagName !== "TEXTAREA") {
    radios[index].checked = true;
    event.preventDefault();
  }
});

// --- the editors ---------------------------------------------------------------------------
function setCurrent(editor) {
  if (current === editor) return;
  if (current) current.root.classList.remove("current");
  current = editor;
  if (current) current.root.classList.add("current");
}
const firstUndecided = () => [...editors.values()].find((e) => !e.decided) || [...editors.values()][0];
function focusNextUndecided(after) {
  const list = [...editors.values()];
  const nextOne = list.slice(list.indexOf(after) + 1).concat(list).find((e) => !e.decided);
  if (nextOne) { setCurrent(nextOne); nextOne.text.critique.focus(); }
}
const page = {config, editable: isEditable(config), outbox, setCurrent, leaseLost, complete, focusNextUndecided};
for (const turn of config.turns) {
  const root = document.getElementById(`turn-${turn.id}`);
  if (turn.reviewable && root) editors.set(turn.id, new TurnEditor(root, turn, page));
}
if ([...editors.values()].some((e) => e.restored)) setStatus("Restored text you had not saved, kept on this device.", "warn");
setCurrent(firstUndecided() || null);

// Time spent: a second a tick, to the turn in hand, while the page is visible.
setInterval(() => {
  if (document.visibilityState === "visible" && current) current.spent += 1000;
}, 1000);

// --- panels and the viewer -----------------------------------------------------------------
const guidelines = $("#guidelines");
const toggleGuidelines = () => { guidelines.hidden = !guidelines.hidden; };
$("#guidelines-toggle").addEventListener("click", toggleGuidelines);
$("[data-close=guidelines]").addEventListener("click", toggleGuidelines);
const help = $("#help-dialog");
$("#help-open").addEventListener("click", () => help.showModal());
const viewer = setupViewer({viewer: $("#viewer"), stage: $("#stage"), boxes: $("#boxes"), boxesToggle: $("#boxes-toggle")});

// --- the keyboard --------------------------------------------------------------------------
const fields = () => $$(".turn textarea, .turn fieldset.score").filter((f) => !f.closest("[hidden]"));
function moveField(step) {
  const list = fields();
  const at = list.findIndex((f) => f === document.activeElement || f.contains(document.activeElement));
  const target = list[(at + step + list.length) % list.length];
  if (!target) return;
  if (target.tagName === "FIELDSET") ($("input:checked", target) || $("input", target)).focus();
  else target.focus();
}
function moveTurn(step) {
  const list = [...editors.values()];
  const target = list[(list.indexOf(current) + step + list.length) % list.length];
  if (target) { setCurrent(target); target.text.critique.focus(); target.root.scrollIntoView({block: "nearest"}); }
}
function scoreFocused(value) {
  const fieldset = document.activeElement && document.activeElement.closest("fieldset.score");
  const target = fieldset || (current && $("fieldset.score", current.root));
  const radio = target && $(`input[value="${CSS.escape(String(value))}"]`, target);
  if (radio && !radio.disabled) {
    radio.checked = true;
    radio.focus();
    radio.dispatchEvent(new Event("change", {bubbles: true}));
  }
}
const editorInHand = () => current || firstUndecided();
const keyboard = new Keyboard({
  shortcuts: config.shortcuts,
  actions: {
    save: () => editorInHand()?.act("save"),
    accept: () => editorInHand()?.act("accept"),
    reject: () => editorInHand()?.act("reject"),
    flag: openFlag,
    skip,
    next: () => { if (!nextButton.hidden || !config.mine) next(); },
    "next-field": () => moveField(1),
    "previous-field": () => moveField(-1),
    "next-turn": () => moveTurn(1),
    "previous-turn": () => moveTurn(-1),
    score: (digit) => scoreFocused(digit),
    boxes: () => viewer && viewer.toggleBoxes(),
    "zoom-in": () => viewer && viewer.zoom(1.25),
    "zoom-out": () => viewer && viewer.zoom(0.8),
    fit: () => viewer && viewer.fit(),
    guidelines: toggleGuidelines,
    help: () => help.showModal(),
    close: (detail, event) => {
      guidelines.hidden = true;
      const target = event.target;
      const typing = target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && !["radio", "checkbox"].includes(target.type));
      if (typing) target.blur();
    },
  },
});
const singleKeys = $("#single-keys");
singleKeys.checked = keyboard.singleKeys;
singleKeys.addEventListener("change", () => {
  keyboard.singleKeys = singleKeys.checked;
  setStatus(`Single-key shortcuts ${singleKeys.checked ? "on" : "off"}.`, "");
});
document.addEventListener("keydown", (event) => {
  if (document.querySelector("dialog[open]")) return;
  const target = event.target;
  // Digits on a focused score choose that score: a key of the focused control, not a page shortcut.
  if (!event.ctrlKey && !event.metaKey && !event.altKey && target.type === "radio"
      && /^[1-9]$/.test(event.key) && target.closest("fieldset.score")) {
    event.preventDefault();
    return scoreFocused(event.key);
  }
  keyboard.handle(event);
});

const first = current;
if (first && page.editable && !first.decided) first.text.critique.focus({preventScroll: true});
