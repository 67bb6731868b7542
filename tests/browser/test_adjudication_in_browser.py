"""Adjudication in a real Chromium: two annotators review the same sample on the review page and
disagree (one accepts the draft, the other marks helpfulness down); the adjudicator finds the sample
in the queue, reads the two versions side by side with their diffs, saves an edit of one as the
final, and the release carries it. No page breaks the strict Content-Security-Policy."""

from __future__ import annotations

import re

import pytest

from feedback.models import Role, Turn
from feedback.review.models import Adjudication, AdjudicationCase, Revision
from tests.browser.test_csp_in_browser import Watch, log_in
from tests.browser.test_review_in_browser import wait_for
from tests.conftest import make_user
from tests.exports.export_helpers import build, folder, read_jsonl
from tests.factories import SCORES
from tests.feedback.review_helpers import configure, make_drafted_samples

pytestmark = pytest.mark.django_db(transaction=True)

REVIEW_URL = re.compile(r".*/review/\d+/$")


def review_as(browser, base: str, slug: str, username: str, act) -> None:
    """``username`` signs in, starts reviewing, and ``act(page, card)`` decides the one turn."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = Watch(page)
    try:
        log_in(page, base, username, f"pw-{username}")
        page.goto(f"{base}/projects/{slug}/review/")
        page.click("#start")
        page.wait_for_url(REVIEW_URL)
        card = page.locator("article.turn").first
        card.locator("textarea[data-field=critique]").wait_for()
        act(page, card)
        wait_for(lambda: Revision.objects.filter(author__username=username).exists(), what=f"{username}'s review")
        assert page.evaluate("window.__cspViolations") == [], username
        assert watch.errors == [] and watch.console == []
    finally:
        context.close()


def accept(page, card) -> None:
    card.locator("textarea[data-field=critique]").focus()
    page.keyboard.press("Alt+A")


def mark_down(page, card) -> None:
    card.locator("fieldset[data-criterion='helpfulness'] label:has(input[value='1'])").click()
    critique = card.locator("textarea[data-field=critique]")
    critique.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(" It misses the colour entirely.")
    page.keyboard.press("Control+Enter")


def test_two_annotators_disagree_and_the_adjudicator_settles_it(live_server, browser, page, project):
    configure(project, reviews_required=2)
    (sample,) = make_drafted_samples(project, 1)
    for name in ("ann", "bea"):
        make_user(name, project=project, role=Role.ANNOTATOR)
    make_user("judge", project=project, role=Role.ADJUDICATOR)
    base, slug = live_server.url, project.slug

    review_as(browser, base, slug, "ann", accept)
    review_as(browser, base, slug, "bea", mark_down)
    case = wait_for(lambda: AdjudicationCase.objects.filter(sample=sample).first(), what="the case")
    assert list(case.turns.values()) == [["helpfulness: 1 vs 4"]]

    watch = Watch(page)
    log_in(page, base, "judge", "pw-judge")
    problems = watch.visit(f"{base}/projects/{slug}/adjudication/")
    assert problems == []
    assert "helpfulness: 1 vs 4" in page.locator("#adjudication-queue").inner_text()
    page.click(f"#adjudication-queue a:has-text('{sample.external_id}')")
    page.wait_for_url(re.compile(rf".*/adjudication/{sample.pk}/$"))
    assert page.evaluate("window.__cspViolations") == []

    # The two versions side by side, Bea's with its diff against the draft and against Ann's.
    ann, bea = page.locator("section.version[data-reviewer=ann]"), page.locator("section.version[data-reviewer=bea]")
    assert "accepted as drafted" in ann.locator("h3").inner_text()
    assert bea.locator(".against-first ins", has_text="misses the colour").count() == 1
    assert "helpfulness 4 → 1" in bea.locator("details.diff").first.inner_text()
    box_ann, box_bea = ann.bounding_box(), bea.bounding_box()
    assert box_ann and box_bea and box_ann["y"] == box_bea["y"] and box_ann["x"] < box_bea["x"], "side by side"

    # An edit of Bea's version: helpfulness 2, and a shorter critique.
    bea.locator("details.edit summary").click()
    form = bea.locator("form.edit-form")
    form.locator("textarea[name=critique]").fill("Names the bus; misses the colour.")
    form.locator("input[name=score-helpfulness]").fill("2")
    form.locator("button[type=submit]").click()
    page.locator("[data-role=final]").wait_for()
    assert page.locator("[data-role=final] h3").inner_text() == "Final: edited"
    assert "bea's version, edited." in page.locator("[data-role=final]").inner_text()
    assert page.locator("section.version[data-reviewer=bea][data-chosen=true]").count() == 1
    assert page.evaluate("window.__cspViolations") == [] and watch.errors == []

    adjudication = Adjudication.objects.get()
    assert adjudication.adjudicator.username == "judge" and adjudication.edited
    assert adjudication.scores == {**SCORES, "helpfulness": 2}
    case.refresh_from_db()
    assert case.settled_at is not None

    turn = Turn.objects.get(sample=sample)
    (record,) = read_jsonl(folder(build(project, ["rich"])) / "rich.jsonl")
    (released,) = record["turns"]
    assert released["final"]["critique"] == "Names the bus; misses the colour."
    assert released["final"]["scores"]["helpfulness"] == 2 and released["adjudication"]["adjudicator"] == "judge"
    assert [r["adjudicated"] for r in released["reviews"]] == [False, True]
    assert released["adjudication"]["revision_id"] == Revision.objects.get(turn=turn, author__username="bea").pk
