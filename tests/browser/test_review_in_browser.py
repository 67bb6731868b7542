"""Review in a real Chromium: an annotator claims a sample, reads the image with its boxes, edits
the LLM's draft (drafted through the simulator over HTTP), sees the diff and saves with the
keyboard; two windows on one turn meet the conflict view; a dropped network loses nothing.

ANNOTATOR_SCREENSHOT=path saves a picture of the review screen there (docs/review-screen.png).
"""

from __future__ import annotations

import os
import re
import time

import pytest

from demo.setup import demo_setup
from feedback.drafting.models import Draft
from feedback.drafting.service import CallGate, draft_turn, drafter_settings
from feedback.models import Turn
from feedback.review.models import Assignment, Revision, WorkingCopy

pytestmark = pytest.mark.django_db(transaction=True)

REVIEW_URL = re.compile(r".*/review/\d+/$")


@pytest.fixture
def demo(llm_simulator, settings):
    """The demo project with an LLM draft on every answered turn, in the queue's order."""
    settings.LLM_BASE_URL = llm_simulator.url  # the default connection is the simulator
    project, logins, _ = demo_setup()
    settings = drafter_settings(project)
    for turn in Turn.objects.filter(sample__project=project, model_response__isnull=False).select_related("sample"):
        draft_turn(turn=turn, sample=turn.sample, project=project, cs=settings, gate=CallGate())
    return project, logins


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def start_reviewing(page, base: str, project) -> Assignment:
    page.goto(f"{base}/projects/{project.slug}/")
    page.click("text=Review samples →")
    page.click("#start")
    page.wait_for_url(REVIEW_URL)
    return Assignment.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))


def wait_for(predicate, *, timeout: float = 20.0, what: str = "the condition"):
    """Polls the database until the page's background writes arrive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_claim_edit_see_the_diff_save_with_the_keyboard_and_move_on(live_server, page, demo):
    project, logins = demo
    base = live_server.url
    log_in(page, base, "annotator", logins["annotator"])
    assignment = start_reviewing(page, base, project)
    sample = assignment.sample
    assert sample.image is not None
    assert page.locator("h1, .review-bar strong").first.inner_text() == sample.external_id

    # The image, and its boxes drawn over it, toggled with B.
    image = page.locator("#image")
    image.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth", image.element_handle()) == sample.image.width
    labels = [box["label"] for box in sample.image.object_boxes]
    assert labels, "the demo's first sample has annotated objects"
    first_box = page.locator(f"#boxes g.box[data-label='{labels[0]}'] rect")
    assert first_box.is_visible()
    page.locator("#viewer").focus()
    page.keyboard.press("b")
    assert first_box.is_hidden()
    page.keyboard.press("b")
    assert first_box.is_visible()
    page.keyboard.press("+")
    assert float(page.locator("#viewer").get_attribute("data-scale")) > 0

    # The draft is in the editor; edit the critique and one score.
    turns = list(sample.turns.filter(model_response__isnull=False).order_by("index"))
    first = turns[0]
    draft = Draft.objects.filter(turn=first).latest("created_at")
    card = page.locator(f"#turn-{first.pk}")
    critique = card.locator("textarea[data-field=critique]")
    assert critique.input_value() == draft.critique
    critique.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" It should also say that the bus is red.")
    criterion = project.criteria[0]
    new_score = project.score_min if draft.scores[criterion] != project.score_min else project.score_max
    card.locator(f"fieldset[data-criterion='{criterion}'] label:has(input[value='{new_score}'])").click()

    # The live diff shows the insertion and the score change.
    diff = card.locator("[data-role=diff]")
    diff.locator("ins", has_text="red").wait_for()
    assert f"{criterion} {draft.scores[criterion]} → {new_score}" in diff.inner_text()
    if path := os.environ.get("ANNOTATOR_SCREENSHOT"):
        page.set_viewport_size({"width": 1440, "height": 1000})
        page.screenshot(path=path)

    # Save with the keyboard; accept the other turns with Alt+A; the next sample opens.
    critique.focus()
    page.keyboard.press("Control+Enter")
    card.locator("[data-role=turn-state]", has_text="Edited · version 1").wait_for()
    for turn in turns[1:]:
        page.locator(f"#turn-{turn.pk} textarea[data-field=critique]").focus()
        page.keyboard.press("Alt+A")
    page.wait_for_url(lambda url: REVIEW_URL.match(url) and not url.endswith(f"/{assignment.pk}/"))

    revision = Revision.objects.get(assignment=assignment, turn=first)
    assert revision.decision == "edited"
    assert revision.critique.endswith("the bus is red.")
    assert revision.scores[criterion] == new_score
    assert revision.draft_id == draft.pk and revision.author.username == "annotator"
    assert revision.time_spent_ms >= 0
    assert set(Revision.objects.filter(assignment=assignment).values_list("turn_id", flat=True)) == {
        t.pk for t in turns
    }
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.SUBMITTED
    draft.refresh_from_db()
    assert "the bus is red" not in draft.critique  # the draft itself is never modified
    assert page.locator("#mine-today").inner_text() == "1"
    next_assignment = Assignment.objects.get(reviewer__username="annotator", state=Assignment.State.LEASED)
    assert next_assignment.sample_id != sample.pk


def test_a_second_window_saving_the_same_turn_gets_the_conflict_view(live_server, browser, demo):
    project, logins = demo
    base = live_server.url
    windows = [browser.new_context(viewport={"width": 1300, "height": 900}) for _ in range(2)]
    try:
        first, second = (context.new_page() for context in windows)
        for page in (first, second):
            page.set_default_timeout(15_000)
            log_in(page, base, "annotator", logins["annotator"])
        assignment = start_reviewing(first, base, project)
        second.goto(first.url)
        turn = assignment.sample.turns.filter(model_response__isnull=False).order_by("index").first()
        assert turn is not None
        selector = f"#turn-{turn.pk} textarea[data-field=critique]"

        first.fill(selector, "Critique from the first window.")
        first.locator(selector).press("Control+Enter")
        wait_for(lambda: Revision.objects.filter(assignment=assignment, turn=turn).exists(), what="the first save")

        second.fill(selector, "Critique typed in the second window, not to be lost.")
        second.locator(selector).press("Control+Enter")
        conflict = second.locator(f"#turn-{turn.pk} [data-role=conflict]")
        conflict.wait_for()
        assert "Critique from the first window." in conflict.locator("[data-role=theirs]").inner_text()
        assert "not to be lost" in conflict.locator("[data-role=yours]").inner_text()
        assert second.locator(selector).input_value() == "Critique typed in the second window, not to be lost."
        assert Revision.objects.filter(assignment=assignment, turn=turn).count() == 1

        conflict.locator("[data-role=keep-mine]").click()
        wait_for(lambda: Revision.objects.filter(assignment=assignment, turn=turn).count() == 2, what="the second save")
        chain = list(Revision.objects.filter(assignment=assignment, turn=turn).order_by("version"))
        assert [r.critique for r in chain] == [
            "Critique from the first window.",
            "Critique typed in the second window, not to be lost.",
        ]
        assert [r.version for r in chain] == [1, 2]
    finally:
        for context in windows:
            context.close()


def test_a_network_drop_keeps_the_text_and_saves_it_when_the_network_returns(live_server, page, demo):
    project, logins = demo
    base = live_server.url
    log_in(page, base, "annotator", logins["annotator"])
    assignment = start_reviewing(page, base, project)
    turn = assignment.sample.turns.filter(model_response__isnull=False).order_by("index").first()
    assert turn is not None
    selector = f"#turn-{turn.pk} textarea[data-field=critique]"
    text = "Typed while the network was down; it must survive."

    page.route("**/api/**", lambda route: route.abort())
    page.fill(selector, "")
    page.locator(selector).type(text)
    page.locator("#status", has_text="Offline").wait_for()
    assert "kept on this device" in page.locator("#status").inner_text()
    assert not WorkingCopy.objects.filter(assignment=assignment).exists()

    # A reload while still offline brings the text back from the browser's storage.
    page.reload()
    assert page.locator(selector).input_value() == text
    page.locator(selector).press("Control+Enter")
    page.locator("#status", has_text="Offline").wait_for()
    assert not Revision.objects.filter(assignment=assignment).exists()

    page.unroute("**/api/**")
    revision = wait_for(
        lambda: Revision.objects.filter(assignment=assignment, turn=turn).first(), what="the save after reconnecting"
    )
    assert revision.critique == text and revision.decision == "edited"


SEGMENTS_OF = """el => {
    const out = [];
    for (const node of el.childNodes) {
        if (node.nodeName === "STRONG") continue;
        const op = node.nodeName === "INS" ? "ins" : node.nodeName === "DEL" ? "del" : "same";
        const last = out[out.length - 1];
        if (last && last[0] === op) last[1] += node.textContent; else out.push([op, node.textContent]);
    }
    return out;
}"""


def csp_violations(page) -> list[str]:
    """Collects the page's Content-Security-Policy refusals, as Chromium reports them on the console."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


def test_the_live_diff_is_the_servers_and_equals_the_history_of_the_saved_revision(live_server, page, demo):
    project, logins = demo
    base = live_server.url
    violations = csp_violations(page)
    log_in(page, base, "annotator", logins["annotator"])
    assignment = start_reviewing(page, base, project)
    turns = list(assignment.sample.turns.filter(model_response__isnull=False).order_by("index"))
    first, second = turns[0], turns[1]
    card = page.locator(f"#turn-{first.pk}")
    critique = card.locator("textarea[data-field=critique]")
    draft = Draft.objects.filter(turn=first).latest("created_at")
    # Words replaced in the middle, and HTML typed as text: the server's diff, shown as text.
    words = draft.critique.split(" ")
    words[1] = "<b>bold</b>"
    critique.fill(" ".join(words) + " Also & more.")
    live = card.locator("[data-role=diff] [data-field=critique]")
    live.locator("ins", has_text="more.").wait_for()
    page.wait_for_function(
        "el => !el.classList.contains('stale')", arg=card.locator("[data-role=diff]").element_handle()
    )
    live_segments = live.evaluate(SEGMENTS_OF)
    assert ["ins", "<b>bold</b>"] in live_segments
    assert card.locator("[data-role=diff] b").count() == 0  # typed HTML is never markup
    critique.press("Control+Enter")
    card.locator("[data-role=turn-state]", has_text="Edited · version 1").wait_for()

    # The second turn, untouched, saved with Ctrl+Enter: the server stores it as accepted.
    page.locator(f"#turn-{second.pk} textarea[data-field=critique]").focus()
    page.keyboard.press("Control+Enter")
    page.locator(f"#turn-{second.pk} [data-role=turn-state]", has_text="Accepted as drafted · version 1").wait_for()
    assert Revision.objects.get(assignment=assignment, turn=second).decision == "accepted"

    page.goto(f"{base}/projects/{project.slug}/review/{assignment.pk}/")
    history = page.locator(f"#turn-{first.pk} details.history .diff-body[data-field=critique]").first
    assert history.evaluate(SEGMENTS_OF) == live_segments
    assert violations == []


def test_single_key_shortcuts_turn_off_and_menu_keys_have_ctrl_alt_twins(live_server, page, demo):
    project, logins = demo
    base = live_server.url
    violations = csp_violations(page)
    log_in(page, base, "annotator", logins["annotator"])
    assignment = start_reviewing(page, base, project)
    box = page.locator("#boxes g.box rect").first
    page.locator("#viewer").focus()
    page.keyboard.press("b")
    assert box.is_hidden()
    page.keyboard.press("b")
    assert box.is_visible()

    toggle = page.get_by_label("Single-key shortcuts")
    assert toggle.is_checked()
    toggle.uncheck()
    page.locator("#viewer").focus()
    page.keyboard.press("b")
    page.keyboard.press("g")
    assert box.is_visible() and page.locator("#guidelines").is_hidden()
    page.reload()
    assert not page.get_by_label("Single-key shortcuts").is_checked()  # kept on this device
    page.locator("#viewer").focus()
    page.keyboard.press("b")
    assert page.locator("#boxes g.box rect").first.is_visible()

    # Shortcuts with modifiers still work; the flag dialog opens with Ctrl+Alt+F (Alt+F is a browser menu).
    page.keyboard.press("Control+Alt+f")
    page.locator("#flag-dialog[open]").wait_for()
    page.keyboard.press("Escape")

    # The help panel lists the shortcuts with their alternatives.
    page.click("#help-open")
    help_text = page.locator("#help-dialog").inner_text()
    assert "Ctrl+Alt+F or Alt+F" in help_text.replace("\t", " ")
    assert "Single-key shortcuts" in help_text

    # Level descriptions are text beside the scores, and the chosen level's description is shown.
    page.keyboard.press("Escape")
    turn = assignment.sample.turns.filter(model_response__isnull=False).order_by("index").first()
    assert turn is not None
    card = page.locator(f"#turn-{turn.pk}")
    levels = {n: d for n, d in project.level_descriptions.items() if d}
    assert levels, "the demo project describes its levels"
    key = card.locator("[data-role=scale-key]")
    assert key.is_visible()
    for n, description in levels.items():
        assert f"{n}\n{description}" in key.inner_text() or f"{n} {description}" in key.inner_text()
    n, description = next(iter(levels.items()))
    card.locator(f"fieldset.score >> nth=0 >> label:has(input[value='{n}'])").click()
    assert card.locator("fieldset.score >> nth=0 >> [data-role=level]").inner_text() == description
    assert page.locator("#banner").get_attribute("role") == "alert"
    assert page.locator("#status").get_attribute("role") == "status"
    assert violations == []
