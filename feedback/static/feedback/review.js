// The review screen: editors for each turn's feedback, live diff against the LLM draft, saves
// with version checks, autosave of typing, an outbox that survives a dropped network, the lease
// renewal, the image viewer and the keyboard. Plain JavaScript; the server renders the page and
// this script talks to the REST API.
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("review-config").textContent);
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const editable = ["leased", "submitted", "expired"].includes(config.state);

  // --- status line -------------------------------------------------------------------------
  const statusEl = $("#status");
  const banner = $("#banner");
  function setStatus(text, kind = "") {
    statusEl.textContent = text;
    statusEl.className = "status " + kind;
  }
  function showBanner(text, kind = "") {
    banner.textContent = text;
    banner.className = "banner " + kind;
    banner.hidden = false;
  }

  // --- the API -----------------------------------------------------------------------------
  class Offline extends Error {}
  async function api(method, url, body) {
    let response;
    try {
      response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf},
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new Offline(String(error));
    }
    if (response.status >= 500) throw new Offline("server error " + response.status);
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (error) { data = null; }
    }
    return {status: response.status, data};
  }
  const assignmentUrl = (path) => config.api + path;
  // A 400's body: each field with its messages ("critique: At most 20,000 characters (got 20,001).").
  const fieldErrors = (data) => Object.entries(data)
    .map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`).join(" ");

  // --- word diff ---------------------------------------------------------------------------
  const tokens = (text) => (text || "").match(/\s+|[^\s]+/g) || [];
  function wordDiff(before, after) {
    const a = tokens(before), b = tokens(after);
    let start = 0;
    while (start < a.length && start < b.length && a[start] === b[start]) start++;
    let endA = a.length, endB = b.length;
    while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
    const out = [];
    const push = (op, text) => {
      if (!text) return;
      const last = out[out.length - 1];
      if (last && last[0] === op) last[1] += text; else out.push([op, text]);
    };
    push("same", a.slice(0, start).join(""));
    const x = a.slice(start, endA), y = b.slice(start, endB);
    if (x.length * y.length > 4e6) {
      push("del", x.join(""));
      push("ins", y.join(""));
    } else {
      const n = x.length, m = y.length, width = m + 1;
      const lcs = new Uint32Array((n + 1) * (m + 1));
      for (let i = n - 1; i >= 0; i--) {
        for (let j = m - 1; j >= 0; j--) {
          lcs[i * width + j] = x[i] === y[j] ? lcs[(i + 1) * width + j + 1] + 1
            : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
        }
      }
      let i = 0, j = 0;
      while (i < n && j < m) {
        if (x[i] === y[j]) { push("same", x[i]); i++; j++; }
        else if (lcs[(i + 1) * width + j] >= lcs[i * width + j + 1]) { push("del", x[i]); i++; }
        else { push("ins", y[j]); j++; }
      }
      while (i < n) push("del", x[i++]);
      while (j < m) push("ins", y[j++]);
    }
    push("same", a.slice(endA).join(""));
    return out;
  }
  function renderDiff(segments) {
    const fragment = document.createDocumentFragment();
    for (const [op, text] of segments) {
      const node = op === "same" ? document.createTextNode(text) : document.createElement(op);
      if (op !== "same") node.textContent = text;
      fragment.appendChild(node);
    }
    return fragment;
  }
  const element = (tag, text, className) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  };

  // --- the outbox: every write waits here until the server has it --------------------------
  const outbox = new Map(); // turn id -> {save, copy}
  let retryDelay = 1000;
  let retryTimer = null;
  let wasOffline = false;
  function scheduleFlush(delay = 0) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, delay);
  }
  let flushing = false;
  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      for (const [turnId, pending] of outbox) {
        const editor = editors.get(turnId);
        if (pending.save) {
          const body = pending.save;
          const result = await api("POST", assignmentUrl(`turns/${turnId}/revisions/`), body);
          if (pending.save === body) pending.save = null;
          editor.saved(body, result);
        }
        if (pending.copy) {
          const body = pending.copy;
          const result = await api("PUT", assignmentUrl(`turns/${turnId}/working-copy/`), body);
          if (pending.copy === body) pending.copy = null;
          if (result.status === 409 && result.data && result.data.lease_lost) leaseLost(result.data.detail);
        }
        if (!pending.save && !pending.copy) outbox.delete(turnId);
      }
      retryDelay = 1000;
      if (wasOffline) {
        wasOffline = false;
        setStatus("Back online: everything you typed is saved.", "ok");
      }
    } catch (error) {
      if (!(error instanceof Offline)) throw error;
      wasOffline = true;
      setStatus(`Offline: your text is kept on this device; retrying in ${Math.round(retryDelay / 1000)} s…`, "warn");
      scheduleFlush(retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    } finally {
      flushing = false;
      if (outbox.size && !wasOffline) scheduleFlush(0);
    }
  }
  window.addEventListener("online", () => scheduleFlush(0));

  // --- one editor per reviewable turn ------------------------------------------------------
  const editors = new Map();
  let current = null;
  let completing = false;

  class TurnEditor {
    constructor(root, turn) {
      this.root = root;
      this.turn = turn;
      this.id = turn.id;
      this.baseVersion = turn.baseVersion;
      this.draft = turn.draft;
      this.decided = turn.decided;
      this.spent = 0;
      this.key = `review:${config.assignment}:${turn.id}`;
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
          const radio = $(`input[data-score="${CSS.escape(criterion)}"][value="${score}"]`, root);
          if (radio) radio.parentElement.classList.add("drafted");
        }
      }
      this.restoreLocal();
      this.refreshDiff();
      root.addEventListener("input", () => this.changed());
      root.addEventListener("change", (event) => { if (event.target.dataset.score) this.changed(); });
      root.addEventListener("focusin", () => setCurrent(this));
      root.addEventListener("click", (event) => {
        const action = event.target.closest("[data-action]");
        if (action) this.act(action.dataset.action);
      });
      if (!editable) for (const input of $$("textarea, input, button[data-action]", root)) input.disabled = true;
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
        radio.checked = values.scores && Number(values.scores[radio.dataset.score]) === Number(radio.value);
      }
      if (values.reason) this.reasonField.hidden = false;
      this.showLevels();
    }

    showLevels() {
      for (const fieldset of $$("fieldset.score", this.root)) {
        const checked = $("input:checked", fieldset);
        $("[data-role=level]", fieldset).textContent = checked ? checked.parentElement.title : "";
      }
    }

    // Local copy: written on every keystroke, so a closed tab or a dead network loses nothing.
    storeLocal(extra = {}) {
      const record = {fields: this.values(), baseVersion: this.baseVersion, at: Date.now(), ...extra};
      try { localStorage.setItem(this.key, JSON.stringify(record)); } catch (error) { /* storage full: server copy still */ }
    }
    readLocal() {
      try { return JSON.parse(localStorage.getItem(this.key) || "null"); } catch (error) { return null; }
    }
    restoreLocal() {
      const local = this.readLocal();
      if (!local || !local.fields) return;
      if (sameFields(local.fields, this.values()) && !local.pendingSave) return;
      if (!sameFields(local.fields, this.values())) {
        this.setValues(local.fields);
        this.baseVersion = local.baseVersion;
        restored += 1;
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
      clearTimeout(this.diffTimer);
      this.diffTimer = setTimeout(() => this.refreshDiff(), 120);
      clearTimeout(this.copyTimer);
      this.copyTimer = setTimeout(() => this.queue({copy: this.copyBody()}), 800);
      this.savedEl.textContent = "Unsaved changes";
    }

    queue(parts) {
      const pending = outbox.get(this.id) || {save: null, copy: null};
      Object.assign(pending, parts);
      outbox.set(this.id, pending);
      if (!wasOffline) scheduleFlush(0);
    }

    refreshDiff() {
      const draft = this.draft || {critique: "", refinement: "", scores: {}};
      const now = this.values();
      const parts = [];
      for (const name of ["critique", "refinement"]) {
        if ((draft[name] || "") === now[name]) continue;
        const row = element("div", undefined, "diff-body");
        row.appendChild(element("strong", name[0].toUpperCase() + name.slice(1) + ": "));
        row.appendChild(renderDiff(wordDiff(draft[name] || "", now[name])));
        parts.push(row);
      }
      const changes = config.criteria
        .filter((c) => (draft.scores || {})[c] !== now.scores[c])
        .map((c) => `${c} ${(draft.scores || {})[c] ?? "–"} → ${now.scores[c] ?? "–"}`);
      if (changes.length) parts.push(element("div", "Scores: " + changes.join(", "), "diff-body score-changes"));
      if (!parts.length) parts.push(element("span", this.draft ? "No changes to the draft." : "No draft to compare with.", "muted"));
      this.diffEl.replaceChildren(...parts);
    }

    act(action) {
      if (!editable) return;
      if (action === "save") return this.save("edited");
      if (action === "accept") return this.save("accepted");
      if (action === "reject") {
        if (this.reasonField.hidden || !this.text.reason.value.trim()) {
          this.reasonField.hidden = false;
          this.text.reason.focus();
          this.errorsEl.textContent = this.text.reason.value.trim() ? "" : "Say why the draft is rejected, then reject again.";
          return;
        }
        return this.save("rejected");
      }
    }

    save(decision) {
      const now = this.values();
      if (decision === "edited" && this.draft && sameFields(now, this.draft)) decision = "accepted";
      if (decision === "accepted" && !this.draft) decision = "edited";
      const body = {
        base_version: this.baseVersion,
        decision,
        critique: now.critique,
        refinement: now.refinement,
        scores: now.scores,
        reason: decision === "rejected" ? now.reason : "",
        time_spent_ms: Math.round(this.spent),
        draft: this.draft ? this.draft.id : null,
      };
      this.errorsEl.textContent = "";
      this.savedEl.textContent = "Saving…";
      this.storeLocal({pendingSave: body});
      clearTimeout(this.copyTimer);
      this.queue({save: body, copy: null});
    }

    saved(body, result) {
      const {status, data} = result;
      const local = this.readLocal();
      if (local && local.pendingSave) { delete local.pendingSave; localStorage.setItem(this.key, JSON.stringify(local)); }
      if (status === 201) {
        const revision = data.revision;
        this.baseVersion = revision.version;
        this.decided = true;
        this.spent = 0;
        this.conflictEl.hidden = true;
        this.stateEl.textContent = `${decisionLabel(revision.decision)} · version ${revision.version}`;
        this.savedEl.textContent = `Saved as version ${revision.version}.`;
        if (sameFields(this.values(), body)) {
          localStorage.removeItem(this.key);
        } else {
          this.storeLocal();
          this.queue({copy: this.copyBody()});
        }
        setStatus(`Turn ${this.turn.index + 1} saved (${decisionLabel(revision.decision).toLowerCase()}).`, "ok");
        if (data.completed) complete();
        else focusNextUndecided(this);
        return;
      }
      if (status === 409 && data && data.conflict) return this.conflict(data.latest, body);
      if (status === 409 && data && data.lease_lost) return leaseLost(data.detail);
      this.savedEl.textContent = "Not saved.";
      if (status === 400 && data) {
        this.errorsEl.textContent = fieldErrors(data);
        return;
      }
      this.errorsEl.textContent = (data && data.detail) || `The server refused the save (${status}).`;
    }

    conflict(latest, body) {
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
        div.appendChild(element("div", "Scores: " + config.criteria.map((c) => `${c} ${(fields.scores || {})[c] ?? "–"}`).join(", ")));
        return div;
      };
      const theirs = column(`Theirs: version ${latest.version} (${decisionLabel(latest.decision).toLowerCase()})`, latest);
      theirs.dataset.role = "theirs";
      const yours = column("Yours (not saved yet)", mine);
      yours.dataset.role = "yours";
      columns.append(theirs, yours);
      box.appendChild(columns);
      const diff = element("div", undefined, "diff-body");
      diff.appendChild(element("strong", "Critique, theirs → yours: "));
      diff.appendChild(renderDiff(wordDiff(latest.critique, mine.critique)));
      box.appendChild(diff);
      const keep = element("button", `Save mine as version ${latest.version + 1}`);
      keep.type = "button";
      keep.dataset.role = "keep-mine";
      keep.addEventListener("click", () => {
        this.baseVersion = latest.version;
        this.save(body.decision === "accepted" ? "edited" : body.decision);
      });
      const take = element("button", "Take theirs into the editor");
      take.type = "button";
      take.addEventListener("click", () => {
        this.baseVersion = latest.version;
        this.setValues(latest);
        this.storeLocal();
        this.refreshDiff();
        take.disabled = true;
        box.appendChild(element("p", "Your text stays above, under \"Yours\", until you leave the page.", "muted"));
      });
      box.append(keep, " ", take);
      box.hidden = false;
      keep.focus();
    }
  }

  const sameFields = (a, b) => (a.critique || "") === (b.critique || "") && (a.refinement || "") === (b.refinement || "")
    && config.criteria.every((c) => Number((a.scores || {})[c] ?? NaN) === Number((b.scores || {})[c] ?? NaN)
      || ((a.scores || {})[c] === undefined && (b.scores || {})[c] === undefined));
  const decisionLabel = (d) => ({accepted: "Accepted", edited: "Edited", rejected: "Rejected"}[d] || d);

  let restored = 0;
  for (const turn of config.turns) {
    const root = document.getElementById(`turn-${turn.id}`);
    if (turn.reviewable && root) editors.set(turn.id, new TurnEditor(root, turn));
  }
  if (restored) setStatus("Restored text you had not saved, kept on this device.", "warn");

  function setCurrent(editor) {
    if (current === editor) return;
    if (current) current.root.classList.remove("current");
    current = editor;
    if (current) current.root.classList.add("current");
  }
  const firstUndecided = () => [...editors.values()].find((e) => !e.decided) || [...editors.values()][0];
  function focusNextUndecided(after) {
    const list = [...editors.values()];
    const next = list.slice(list.indexOf(after) + 1).concat(list).find((e) => !e.decided);
    if (next) { setCurrent(next); next.text.critique.focus(); }
  }
  setCurrent(firstUndecided() || null);

  // Time spent: a second a tick, to the turn in hand, while the page is visible.
  setInterval(() => {
    if (document.visibilityState === "visible" && current) current.spent += 1000;
  }, 1000);

  // --- the sample: complete, next, skip, flag, lease -----------------------------------------
  const nextButton = $("#next");
  async function next() {
    if (outbox.size) {
      setStatus("Saving your changes first…", "warn");
      await flush();
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
      setStatus("Offline: cannot fetch the next sample yet.", "warn");
    }
  }
  function complete() {
    if (completing) return;
    completing = true;
    for (const editor of editors.values()) localStorage.removeItem(editor.key);
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
        for (const editor of editors.values()) localStorage.removeItem(editor.key);
        return next();
      }
      const refused = result.status === 400 && result.data ? fieldErrors(result.data) : result.data && result.data.detail;
      showBanner(refused || `Could not ${kind} (${result.status}).`, "bad");
    } catch (error) {
      setStatus(`Offline: cannot ${kind} yet; try again when the network is back.`, "warn");
    }
  }
  const skip = () => config.mine && config.state === "leased" && endLease("skip");
  function leaseLost(detail) {
    showBanner((detail || "Your lease ran out and another reviewer took this sample.")
      + " Your text is kept on this device; copy what you need.", "bad");
  }
  async function renew() {
    if (!config.mine || !["leased", "expired"].includes(config.state) || completing) return;
    try {
      const result = await api("POST", assignmentUrl("renew/"));
      if (result.status === 409) leaseLost(result.data && result.data.detail);
    } catch (error) { /* the next tick tries again */ }
  }
  if (config.mine && config.state === "leased") {
    setInterval(renew, config.renewSeconds * 1000);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") renew(); });
  }
  if (config.mine && config.state === "expired") renew();
  nextButton.addEventListener("click", next);
  $("#skip")?.addEventListener("click", skip);

  const flagDialog = $("#flag-dialog");
  const openFlag = () => { if (config.mine && config.state === "leased") flagDialog.showModal(); };
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

  // --- panels ------------------------------------------------------------------------------
  const guidelines = $("#guidelines");
  const toggleGuidelines = () => { guidelines.hidden = !guidelines.hidden; };
  $("#guidelines-toggle").addEventListener("click", toggleGuidelines);
  $("[data-close=guidelines]").addEventListener("click", toggleGuidelines);
  const help = $("#help-dialog");
  $("#help-open").addEventListener("click", () => help.showModal());

  // --- the image viewer: fit, zoom at the cursor, drag to pan, boxes on and off --------------
  const viewer = $("#viewer");
  const stage = $("#stage");
  const boxes = $("#boxes");
  const boxesToggle = $("#boxes-toggle");
  let view = {scale: 1, x: 0, y: 0, fit: 1};
  function applyView() {
    stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    boxes.style.setProperty("--label", `${14 / view.scale}px`);
    viewer.dataset.scale = view.scale.toFixed(3);
  }
  function fit() {
    const width = stage.offsetWidth, height = stage.offsetHeight;
    const scale = Math.min(viewer.clientWidth / width, viewer.clientHeight / height);
    view = {scale, fit: scale, x: (viewer.clientWidth - width * scale) / 2, y: (viewer.clientHeight - height * scale) / 2};
    applyView();
  }
  function zoomAt(px, py, factor) {
    const scale = Math.min(Math.max(view.scale * factor, view.fit / 2), 16);
    view.x = px - (px - view.x) * (scale / view.scale);
    view.y = py - (py - view.y) * (scale / view.scale);
    view.scale = scale;
    applyView();
  }
  const zoomCentre = (factor) => zoomAt(viewer.clientWidth / 2, viewer.clientHeight / 2, factor);
  const toggleBoxes = () => {
    if (!boxesToggle) return;
    boxesToggle.checked = !boxesToggle.checked;
    boxes.classList.toggle("off", !boxesToggle.checked);
  };
  if (viewer) {
    fit();
    window.addEventListener("resize", fit);
    viewer.addEventListener("wheel", (event) => {
      event.preventDefault();
      const rect = viewer.getBoundingClientRect();
      zoomAt(event.clientX - rect.left, event.clientY - rect.top, event.deltaY < 0 ? 1.15 : 1 / 1.15);
    }, {passive: false});
    let drag = null;
    viewer.addEventListener("pointerdown", (event) => {
      drag = {x: event.clientX, y: event.clientY};
      viewer.setPointerCapture(event.pointerId);
      viewer.classList.add("dragging");
    });
    viewer.addEventListener("pointermove", (event) => {
      if (!drag) return;
      view.x += event.clientX - drag.x;
      view.y += event.clientY - drag.y;
      drag = {x: event.clientX, y: event.clientY};
      applyView();
    });
    const stop = () => { drag = null; viewer.classList.remove("dragging"); };
    viewer.addEventListener("pointerup", stop);
    viewer.addEventListener("pointercancel", stop);
    for (const button of $$("[data-zoom]")) {
      button.addEventListener("click", () => {
        const how = button.dataset.zoom;
        if (how === "reset") fit(); else zoomCentre(how === "in" ? 1.25 : 0.8);
      });
    }
    boxesToggle.addEventListener("change", () => boxes.classList.toggle("off", !boxesToggle.checked));
  }

  // --- keyboard ----------------------------------------------------------------------------
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
    const radio = target && $(`input[value="${value}"]`, target);
    if (radio && !radio.disabled) {
      radio.checked = true;
      radio.focus();
      radio.dispatchEvent(new Event("change", {bubbles: true}));
    }
  }
  document.addEventListener("keydown", (event) => {
    if (document.querySelector("dialog[open]")) return;
    const editor = current || firstUndecided();
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault();
      if (editor) editor.act("save");
      return;
    }
    if (event.altKey && !event.ctrlKey && !event.metaKey) {
      const digit = /^Digit([1-9])$/.exec(event.code);
      const actions = {
        KeyA: () => editor && editor.act("accept"),
        KeyR: () => editor && editor.act("reject"),
        KeyF: openFlag,
        KeyS: skip,
        KeyN: () => { if (!nextButton.hidden || !config.mine) next(); },
        ArrowDown: () => moveField(1),
        ArrowUp: () => moveField(-1),
        KeyJ: () => moveTurn(1),
        KeyK: () => moveTurn(-1),
      };
      const action = digit ? () => scoreFocused(digit[1]) : actions[event.code];
      if (action) { event.preventDefault(); action(); }
      return;
    }
    if (event.ctrlKey || event.metaKey) return;
    const target = event.target;
    const typing = target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "radio" && target.type !== "checkbox");
    if (event.key === "Escape") {
      guidelines.hidden = true;
      if (typing) target.blur();
      return;
    }
    if (typing) return;
    if (target.type === "radio" && /^[1-9]$/.test(event.key) && target.closest("fieldset.score")) {
      event.preventDefault();
      return scoreFocused(event.key);
    }
    const keys = {
      "?": () => help.showModal(),
      b: toggleBoxes,
      B: toggleBoxes,
      g: toggleGuidelines,
      "+": () => viewer && zoomCentre(1.25),
      "=": () => viewer && zoomCentre(1.25),
      "-": () => viewer && zoomCentre(0.8),
      "0": () => viewer && fit(),
    };
    if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
  });

  const first = current;
  if (first && editable && !first.decided) first.text.critique.focus({preventScroll: true});
})();
