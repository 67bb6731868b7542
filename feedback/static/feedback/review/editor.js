// One editor per reviewable turn: its fields, the local copy kept on every keystroke, autosave of
// the typing (whose answer carries the server's live diff), saves with version checks, and the
// conflict view. Whether a save is an acceptance or an edit is the server's to decide: the editor
// sends what the reviewer asked for and shows the decision stored.
import {$, $$, element, setStatus} from "./dom.js";
import {fieldErrors} from "./api.js";
import {renderLiveDiff, renderSegments} from "./diff.js";
import {decisionLabel, levelDescription} from "./config.js";

export const AUTOSAVE_DELAY_MS = 500;

// Two editor states hold the same critique, refinement and scores (on the given criteria).
export function sameFields(a, b, criteria) {
  const score = (x, c) => (x.scores || {})[c];
  return (a.critique || "") === (b.critique || "") && (a.refinement || "") === (b.refinement || "")
    && criteria.every((c) => (score(a, c) === undefined && score(b, c) === undefined)
      || Number(score(a, c) ?? NaN) === Number(score(b, c) ?? NaN));
}

export class TurnEditor {
  // page: {config, editable, outbox, storage, setCurrent, leaseLost, complete, focusNextUndecided}
  constructor(root, turn, page) {
    this.root = root;
    this.turn = turn;
    this.page = page;
    this.config = page.config;
    this.storage = page.storage || globalThis.localStorage;
    this.id = turn.id;
    this.baseVersion = turn.baseVersion;
    this.draft = turn.draft;
    this.decided = turn.decided;
    this.spent = 0;
    this.restored = false;
    this.key = `review:${this.config.assignment}:${turn.id}`;
    this.text = Object.fromEntries($$("textarea[data-field]", root).map((t) => [t.dataset.field, t]));
    this.reasonField = $(".field.reason", root);
    this.diffEl = $("[data-role=diff]", root);
    this.errorsEl = $("[data-role=errors]", root);
    this.conflictEl = $("[data-role=conflict]", root);
    this.savedEl = $("[data-role=saved]", root);
    this.stateEl = $("[data-role=turn-state]", root);
    this.setValues(turn.start);
    if (this.draft) {
      for (const [criterion, score] of Object.entries(this.draft.scores || {})) {
        const radio = $(`input[data-score="${CSS.escape(criterion)}"][value="${CSS.escape(String(score))}"]`, root);
        if (radio) radio.parentElement.classList.add("drafted");
      }
    }
    this.showDiff(turn.diff, {fresh: true});
    this.restoreLocal();
    root.addEventListener("input", () => this.changed());
    root.addEventListener("change", (event) => { if (event.target.dataset.score) this.changed(); });
    root.addEventListener("focusin", () => page.setCurrent && page.setCurrent(this));
    root.addEventListener("click", (event) => {
      const action = event.target.closest("[data-action]");
      if (action) this.act(action.dataset.action);
    });
    if (!page.editable) for (const input of $$("textarea, input, button[data-action]", root)) input.disabled = true;
  }

  values() {
    const scores = {};
    for (const radio of $$("input[data-score]:checked", this.root)) scores[radio.dataset.score] = Number(radio.value);
    return {
      critique: this.text.critique.value,
      refinement: this.text.refinement.value,
      reason: this.text.reason.value,
      scores,
    };
  }

  setValues(values) {
    this.text.critique.value = values.critique || "";
    this.text.refinement.value = values.refinement || "";
    this.text.reason.value = values.reason || "";
    for (const radio of $$("input[data-score]", this.root)) {
      radio.checked = Boolean(values.scores) && Number(values.scores[radio.dataset.score]) === Number(radio.value);
    }
    if (values.reason) this.reasonField.hidden = false;
    this.showLevels();
  }

  // Beside each criterion, the description of the level chosen, as text.
  showLevels() {
    for (const fieldset of $$("fieldset.score", this.root)) {
      const checked = $("input:checked", fieldset);
      const level = $("[data-role=level]", fieldset);
      level.textContent = checked ? levelDescription(this.config, checked.value) : "";
    }
  }

  // The server's live diff of the typing against the draft; "stale" while newer typing is on its way.
  showDiff(diff, {fresh}) {
    this.diffEl.replaceChildren(...renderLiveDiff(diff, {hasDraft: Boolean(this.draft)}));
    this.diffEl.classList.toggle("stale", !fresh);
    this.diffEl.setAttribute("aria-busy", fresh ? "false" : "true");
  }

  markDiffStale() {
    this.diffEl.classList.add("stale");
    this.diffEl.setAttribute("aria-busy", "true");
  }

  // Local copy: written on every keystroke, so a closed tab or a dead network loses nothing.
  storeLocal(extra = {}) {
    const record = {fields: this.values(), baseVersion: this.baseVersion, at: Date.now(), ...extra};
    try { this.storage.setItem(this.key, JSON.stringify(record)); } catch (error) { /* full: the server copy still */ }
  }

  readLocal() {
    try { return JSON.parse(this.storage.getItem(this.key) || "null"); } catch (error) { return null; }
  }

  forgetLocal() {
    try { this.storage.removeItem(this.key); } catch (error) { /* nothing kept */ }
  }

  restoreLocal() {
    const local = this.readLocal();
    if (!local || !local.fields) return;
    const same = sameFields(local.fields, this.values(), this.config.criteria);
    if (same && !local.pendingSave) return;
    if (!same) {
      this.setValues(local.fields);
      this.baseVersion = local.baseVersion;
      this.restored = true;
      this.markDiffStale();
    }
    if (local.pendingSave) this.queue({save: local.pendingSave});
    else this.queue({copy: this.copyBody()});
  }

  copyBody() {
    return {fields: this.values(), base_version: this.baseVersion};
  }

  changed() {
    this.showLevels();
    this.storeLocal();
    this.markDiffStale();
    clearTimeout(this.copyTimer);
    this.copyTimer = setTimeout(() => this.queue({copy: this.copyBody()}), AUTOSAVE_DELAY_MS);
    this.savedEl.textContent = "Unsaved changes";
  }

  queue(parts) {
    this.page.outbox.queue(this.id, parts);
  }

  act(action) {
    if (!this.page.editable) return;
    const {ACCEPTED, EDITED, REJECTED} = this.config.decisions;
    if (action === "save") return this.save(EDITED);
    if (action === "accept") return this.save(ACCEPTED);
    if (action === "reject") {
      if (this.reasonField.hidden || !this.text.reason.value.trim()) {
        this.reasonField.hidden = false;
        this.text.reason.focus();
        this.errorsEl.textContent = this.text.reason.value.trim() ? "" : "Say why the draft is rejected, then reject again.";
        return;
      }
      return this.save(REJECTED);
    }
  }

  // Sends the decision asked for; the server stores an edit that changes nothing as an acceptance.
  save(decision) {
    const now = this.values();
    const body = {
      base_version: this.baseVersion,
      decision,
      critique: now.critique,
      refinement: now.refinement,
      scores: now.scores,
      reason: decision === this.config.decisions.REJECTED ? now.reason : "",
      time_spent_ms: Math.round(this.spent),
      draft: this.draft ? this.draft.id : null,
    };
    this.errorsEl.textContent = "";
    this.savedEl.textContent = "Saving…";
    this.storeLocal({pendingSave: body});
    clearTimeout(this.copyTimer);
    this.queue({save: body, copy: null});
  }

  // The autosave's answer: its live diff, current if nothing was typed since it was sent.
  copied(body, result) {
    const {status, data} = result;
    if (status === 200 && data && data.diff) {
      this.showDiff(data.diff, {fresh: sameFields(this.values(), body.fields, this.config.criteria)});
    } else if (status === 409 && data && data.lease_lost) {
      this.page.leaseLost(data.detail);
    } else if (status === 400 && data) {
      this.errorsEl.textContent = fieldErrors(data);
    }
  }

  saved(body, result) {
    const {status, data} = result;
    const local = this.readLocal();
    if (local && local.pendingSave) {
      delete local.pendingSave;
      try { this.storage.setItem(this.key, JSON.stringify(local)); } catch (error) { /* nothing kept */ }
    }
    if (status === 201) {
      const revision = data.revision;
      const label = decisionLabel(this.config, revision.decision);
      this.baseVersion = revision.version;
      this.decided = true;
      this.spent = 0;
      this.conflictEl.hidden = true;
      this.stateEl.textContent = `${label} · version ${revision.version}`;
      this.stateEl.dataset.decision = revision.decision;
      this.savedEl.textContent = `Saved as version ${revision.version} (${label.toLowerCase()}).`;
      if (sameFields(this.values(), body, this.config.criteria)) {
        this.forgetLocal();
      } else {
        this.storeLocal();
        this.queue({copy: this.copyBody()});
      }
      setStatus(`Turn ${this.turn.index + 1} saved (${label.toLowerCase()}).`, "ok");
      if (data.completed) this.page.complete();
      else this.page.focusNextUndecided(this);
      return;
    }
    if (status === 409 && data && data.conflict) return this.conflict(data.latest, data.diff || {}, body);
    if (status === 409 && data && data.lease_lost) return this.page.leaseLost(data.detail);
    this.savedEl.textContent = "Not saved.";
    if (status === 400 && data) {
      this.errorsEl.textContent = fieldErrors(data);
      return;
    }
    this.errorsEl.textContent = (data && data.detail) || `The server refused the save (${status}).`;
  }

  conflict(latest, diff, body) {
    const criteria = this.config.criteria;
    const latestLabel = decisionLabel(this.config, latest.decision).toLowerCase();
    this.savedEl.textContent = "Not saved: someone saved first.";
    setStatus("Conflict: a newer revision exists. Your text is kept.", "bad");
    const mine = this.values();
    const box = this.conflictEl;
    box.replaceChildren();
    box.appendChild(element("p", `Version ${latest.version} was saved by ${latest.author} at ${new Date(latest.created_at).toLocaleTimeString()} while you were editing. Your text is still in the editor; nothing you typed is lost. Compare, then keep yours or take theirs.`));
    const columns = element("div", undefined, "columns");
    const column = (title, fields) => {
      const div = element("div", undefined, "conflict-side");
      div.appendChild(element("h4", title));
      div.appendChild(element("strong", "Critique"));
      div.appendChild(element("pre", fields.critique));
      div.appendChild(element("strong", "Refinement"));
      div.appendChild(element("pre", fields.refinement));
      div.appendChild(element("div", "Scores: " + criteria.map((c) => `${c} ${(fields.scores || {})[c] ?? "–"}`).join(", ")));
      return div;
    };
    const theirs = column(`Theirs: version ${latest.version} (${latestLabel})`, latest);
    theirs.dataset.role = "theirs";
    const yours = column("Yours (not saved yet)", mine);
    yours.dataset.role = "yours";
    columns.append(theirs, yours);
    box.appendChild(columns);
    if (diff.critique) {
      const row = element("div", undefined, "diff-body");
      row.dataset.role = "conflict-diff";
      row.appendChild(element("strong", "Critique, theirs → yours: "));
      row.appendChild(renderSegments(diff.critique));
      box.appendChild(row);
    }
    const keep = element("button", `Save mine as version ${latest.version + 1}`);
    keep.type = "button";
    keep.dataset.role = "keep-mine";
    keep.addEventListener("click", () => {
      this.baseVersion = latest.version;
      this.save(body.decision);
    });
    const take = element("button", "Take theirs into the editor");
    take.type = "button";
    take.addEventListener("click", () => {
      this.baseVersion = latest.version;
      this.setValues(latest);
      this.changed();
      take.disabled = true;
      box.appendChild(element("p", "Your text stays above, under \"Yours\", until you leave the page.", "muted"));
    });
    box.append(keep, " ", take);
    box.hidden = false;
    keep.focus();
  }
}
