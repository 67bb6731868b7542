"""The review page's ES modules (feedback/static/feedback/review/), unit-tested in a real Chromium:
each is imported from the live server's static files into a page of the site and exercised there.

- outbox.js: writes queued while offline stay, are retried, and replay in order (a turn's save
  before its working copy, turns in the order first queued, a newer copy replacing an older one);
- keyboard.js: key matching (Alt letters by position, Ctrl+Alt but not AltGr), the single-key
  toggle kept in localStorage, no single-key shortcut while typing;
- diff.js: the server's segments rendered as text, HTML in them escaped;
- editor.js: the editor's state, the stale live diff until the autosave's answer, and a save that
  sends the decision asked for (the server decides accept vs edit).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

MODULES = "/static/feedback/review/"
MODULE_NAMES = ["api", "config", "diff", "dom", "editor", "keyboard", "outbox", "viewer"]


@pytest.fixture
def site(live_server, page):
    page.goto(f"{live_server.url}/login/")
    return page


def run(page, script: str):
    """Runs an async function body with the review modules imported as ``m.<name>``. The body is part
    of the function Playwright evaluates (the site's CSP allows no eval in the page itself)."""
    return page.evaluate(
        f"""async () => {{
            const m = {{}};
            for (const name of {MODULE_NAMES!r}) m[name] = await import("{MODULES}" + name + ".js");
            {script}
        }}"""
    )


def test_every_module_loads_as_an_es_module(site):
    exported = run(site, "return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Object.keys(v).sort()]));")
    assert "Outbox" in exported["outbox"]
    assert {"Keyboard", "matches", "parseKey"} <= set(exported["keyboard"])
    assert {"renderSegments", "renderLiveDiff"} <= set(exported["diff"])
    assert {"TurnEditor", "sameFields"} <= set(exported["editor"])
    assert "setupViewer" in exported["viewer"]


def test_the_outbox_keeps_writes_while_offline_and_replays_them_in_order(site):
    result = run(
        site,
        """
        const sent = [];
        let offline = true;
        const timers = [];
        const send = (kind) => async (turn, body) => {
            if (offline) throw new m.api.Offline("no network");
            sent.push(`${kind} ${turn} ${body.n}`);
        };
        const offlineDelays = [];
        let backOnline = 0;
        const outbox = new m.outbox.Outbox({
            sendSave: send("save"), sendCopy: send("copy"),
            onOffline: (delay) => offlineDelays.push(delay), onBackOnline: () => { backOnline += 1; },
            setTimer: (f, ms) => { timers.push(ms); return timers.length; }, clearTimer: () => {},
        });
        outbox.queue(2, {copy: {n: 1}});
        outbox.queue(1, {copy: {n: 2}});
        outbox.queue(2, {copy: {n: 3}});           // replaces the first copy of turn 2
        outbox.queue(2, {save: {n: 4}});
        await outbox.flush();
        await outbox.flush();
        await outbox.flush();
        const kept = outbox.size;
        offline = false;
        await outbox.flush();
        return {sent, kept, left: outbox.size, offlineDelays, backOnline};
        """,
    )
    assert result["kept"] == 2
    assert result["sent"] == ["save 2 4", "copy 2 3", "copy 1 2"]
    assert result["left"] == 0
    assert result["offlineDelays"] == [1000, 2000, 4000]  # waiting longer each time, up to 5 s
    assert result["backOnline"] == 1


def test_a_write_queued_while_one_is_in_flight_is_sent_after_it(site):
    sent = run(
        site,
        """
        const sent = [];
        let release;
        const gate = new Promise((resolve) => { release = resolve; });
        const outbox = new m.outbox.Outbox({
            sendSave: async (turn, body) => { sent.push(`save ${body.n}`); },
            sendCopy: async (turn, body) => { sent.push(`copy ${body.n}`); if (body.n === 1) await gate; },
            setTimer: () => 0, clearTimer: () => {},
        });
        outbox.queue(1, {copy: {n: 1}});
        const first = outbox.flush();
        outbox.queue(1, {copy: {n: 2}});
        release();
        await first;
        await outbox.flush();
        return sent;
        """,
    )
    assert sent == ["copy 1", "copy 2"]


def test_keys_match_as_the_server_lists_them(site):
    result = run(
        site,
        """
        const key = (init) => new KeyboardEvent("keydown", init);
        const k = m.keyboard;
        return {
            altA: k.matches(key({key: "å", code: "KeyA", altKey: true}), "Alt+A"),
            altAWithCtrl: k.matches(key({key: "a", code: "KeyA", altKey: true, ctrlKey: true}), "Alt+A"),
            ctrlAltF: k.matches(key({key: "f", code: "KeyF", altKey: true, ctrlKey: true}), "Ctrl+Alt+F"),
            ctrlEnter: k.matches(key({key: "Enter", ctrlKey: true}), "Ctrl+Enter"),
            metaEnter: k.matches(key({key: "Enter", metaKey: true}), "Ctrl+Enter"),
            altDigit: k.matches(key({key: "3", code: "Digit3", altKey: true}), "Alt+1-9"),
            altDown: k.matches(key({key: "ArrowDown", altKey: true}), "Alt+ArrowDown"),
            question: k.matches(key({key: "?", shiftKey: true}), "?"),
            bigB: k.matches(key({key: "B", shiftKey: true}), "B"),
            ctrlB: k.matches(key({key: "b", ctrlKey: true}), "B"),
            plus: k.parseKey("Ctrl++"),
        };
        """,
    )
    assert result["altA"] is True and result["altAWithCtrl"] is False
    assert result["ctrlAltF"] is True
    assert result["ctrlEnter"] is True and result["metaEnter"] is True
    assert result["altDigit"] == "3"
    assert result["altDown"] is True
    assert result["question"] is True and result["bigB"] is True and result["ctrlB"] is False
    assert result["plus"] == {"ctrl": True, "alt": False, "shift": False, "key": "+"}


def test_single_key_shortcuts_can_be_turned_off_and_never_fire_while_typing(site):
    result = run(
        site,
        """
        localStorage.clear();
        const ran = [];
        const keyboard = new m.keyboard.Keyboard({
            shortcuts: [
                {action: "boxes", keys: ["B"], single: true},
                {action: "flag", keys: ["Ctrl+Alt+F", "Alt+F"], single: false},
            ],
            actions: {boxes: () => ran.push("boxes"), flag: () => ran.push("flag")},
        });
        const press = (init, target = document.body) => {
            const event = new KeyboardEvent("keydown", {bubbles: true, cancelable: true, ...init});
            let handled = null;
            target.addEventListener("keydown", (e) => { handled = keyboard.handle(e); }, {once: true});
            target.dispatchEvent(event);
            return handled;
        };
        const out = {};
        out.onByDefault = keyboard.singleKeys;
        out.b = press({key: "b"});
        const area = document.createElement("textarea");
        document.body.appendChild(area);
        out.bTyping = press({key: "b"}, area);
        keyboard.singleKeys = false;
        out.stored = localStorage.getItem(m.keyboard.SINGLE_KEYS_STORAGE);
        out.bOff = press({key: "b"});
        out.flagOff = press({key: "f", code: "KeyF", ctrlKey: true, altKey: true});
        const again = new m.keyboard.Keyboard({shortcuts: [], actions: {}});
        out.keptOff = again.singleKeys;
        keyboard.singleKeys = true;
        out.bOn = press({key: "b"});
        out.ran = ran;
        return out;
        """,
    )
    assert result["onByDefault"] is True
    assert result["b"] is True
    assert result["bTyping"] is False
    assert result["stored"] == "off"
    assert result["bOff"] is False
    assert result["flagOff"] is True  # shortcuts with modifiers stay on
    assert result["keptOff"] is False
    assert result["bOn"] is True
    assert result["ran"] == ["boxes", "flag", "boxes"]


def test_diffs_render_the_servers_segments_as_text_with_html_escaped(site):
    result = run(
        site,
        """
        const holder = document.createElement("div");
        holder.appendChild(m.diff.renderSegments([
            ["same", "Keep <i>this</i> "], ["del", "<b>old</b>"], ["ins", "<img src=x onerror=alert(1)>"],
            ["bogus", "<u>dropped</u>"],
        ]));
        const live = document.createElement("div");
        live.replaceChildren(...m.diff.renderLiveDiff(
            {critique: [["same", "A "], ["ins", "<script>x</script>"]], refinement: [["same", "same"]],
             scores: [["honesty", 4, null]]},
            {hasDraft: true}));
        const none = document.createElement("div");
        none.replaceChildren(...m.diff.renderLiveDiff({critique: [["same", "x"]], refinement: [], scores: []},
            {hasDraft: true}));
        return {
            html: holder.innerHTML, text: holder.textContent, elements: holder.querySelectorAll("*").length,
            liveText: live.textContent,
            liveFields: [...live.querySelectorAll("[data-field]")].map((e) => e.dataset.field),
            liveScripts: live.querySelectorAll("script").length, none: none.textContent,
        };
        """,
    )
    assert result["html"] == (
        "Keep &lt;i&gt;this&lt;/i&gt; <del>&lt;b&gt;old&lt;/b&gt;</del><ins>&lt;img src=x onerror=alert(1)&gt;</ins>"
    )
    assert result["elements"] == 2  # the del and the ins, nothing from the texts
    assert result["liveFields"] == ["critique"]  # an unchanged refinement is not shown
    assert result["liveScripts"] == 0
    assert result["liveText"] == "Critique: A <script>x</script>Scores: honesty 4 → \u2013"
    assert result["none"] == "No changes to the draft."


EDITOR_FIXTURE = """
<span id="status"></span>
<article class="turn" id="turn-7">
  <textarea data-field="critique"></textarea><textarea data-field="refinement"></textarea>
  <fieldset class="score"><label><input type="radio" data-score="honesty" value="1">1</label>
    <label><input type="radio" data-score="honesty" value="2">2</label><span data-role="level"></span></fieldset>
  <label class="field reason" hidden><textarea data-field="reason"></textarea></label>
  <div data-role="diff"></div><div data-role="conflict" hidden></div><div data-role="errors"></div>
  <span data-role="saved"></span><span data-role="turn-state"></span>
</article>
"""


def test_the_editor_keeps_its_state_marks_the_diff_stale_and_sends_the_decision_asked_for(site):
    result = run(
        site,
        """
        localStorage.clear();
        document.body.insertAdjacentHTML("beforeend", FIXTURE);
        const config = {
            assignment: 3, criteria: ["honesty"], levels: {"1": "Fails badly.", "2": "Fine."},
            decisions: {ACCEPTED: "accepted", EDITED: "edited", REJECTED: "rejected"},
            decisionLabels: {accepted: "Accepted as drafted", edited: "Edited", rejected: "Rejected"},
        };
        const queued = [];
        const outbox = {queue: (id, parts) => queued.push([id, JSON.parse(JSON.stringify(parts))])};
        const draft = {id: 11, critique: "Good.", refinement: "Bus.", scores: {honesty: 2}};
        const turn = {id: 7, index: 0, baseVersion: 0, draft, decided: false, diff: null,
            start: {critique: "Good.", refinement: "Bus.", scores: {honesty: 2}, reason: ""}};
        const done = [];
        const page = {config, editable: true, outbox, setCurrent() {}, leaseLost() {},
            complete: () => done.push("complete"), focusNextUndecided: () => done.push("next")};
        const editor = new m.editor.TurnEditor(document.getElementById("turn-7"), turn, page);
        const out = {start: editor.values(), level: document.querySelector("[data-role=level]").textContent,
            diff: editor.diffEl.textContent};
        editor.text.critique.value = "Good. Red.";
        editor.text.critique.dispatchEvent(new Event("input", {bubbles: true}));
        out.stale = editor.diffEl.classList.contains("stale");
        out.local = JSON.parse(localStorage.getItem("review:3:7")).fields.critique;
        await new Promise((resolve) => setTimeout(resolve, m.editor.AUTOSAVE_DELAY_MS + 100));
        out.copyQueued = queued.at(-1);
        editor.copied(out.copyQueued[1].copy,
            {status: 200, data: {diff: {critique: [["same", "Good."], ["ins", " Red."]], refinement: [], scores: []}}});
        out.fresh = !editor.diffEl.classList.contains("stale");
        out.diffHtml = editor.diffEl.innerHTML;
        editor.text.critique.value = "Good.";
        editor.act("save");
        out.saveQueued = queued.at(-1);
        editor.saved(out.saveQueued[1].save, {status: 201, data: {completed: false,
            revision: {version: 1, decision: "accepted"}}});
        out.state = editor.stateEl.textContent;
        out.localAfter = localStorage.getItem("review:3:7");
        out.done = done;
        return out;
        """.replace("FIXTURE", repr(EDITOR_FIXTURE)),
    )
    assert result["start"] == {"critique": "Good.", "refinement": "Bus.", "reason": "", "scores": {"honesty": 2}}
    assert result["level"] == "Fine."  # the level's description as text beside the score
    assert result["diff"] == "No changes to the draft."
    assert result["stale"] is True
    assert result["local"] == "Good. Red."
    assert result["copyQueued"] == [
        7,
        {"copy": {"fields": {**result["start"], "critique": "Good. Red."}, "base_version": 0}},
    ]
    assert result["fresh"] is True
    assert (
        result["diffHtml"]
        == '<div class="diff-body" data-field="critique"><strong>Critique: </strong>Good.<ins> Red.</ins></div>'
    )
    save = result["saveQueued"][1]["save"]
    assert result["saveQueued"][1]["copy"] is None
    assert save["decision"] == "edited"  # sent as asked: the server stores it as accepted
    assert (save["critique"], save["draft"], save["base_version"]) == ("Good.", 11, 0)
    assert result["state"] == "Accepted as drafted · version 1"
    assert result["localAfter"] is None
    assert result["done"] == ["next"]
