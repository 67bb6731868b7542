"""Gold checks in a real Chromium: an admin marks a reviewed sample gold on the Gold page; an
annotator starts reviewing, gets the gold sample on a review page like any other (nothing in it
says gold) and accepts the draft; the admin reads the annotator's accuracy on the Annotators pages.
No page breaks the strict Content-Security-Policy."""

from __future__ import annotations

import re

import pytest

from feedback.models import Role, Turn
from feedback.review.models import Assignment, Decision, GoldSample
from feedback.review.revisions import revision_create
from tests.browser.test_adjudication_in_browser import REVIEW_URL, accept
from tests.browser.test_csp_in_browser import Watch, log_in
from tests.browser.test_review_in_browser import wait_for
from tests.conftest import make_user
from tests.feedback.review_helpers import claim_one, configure, make_drafted_samples

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_annotator_meets_gold_unaware_and_the_admin_sees_the_accuracy(live_server, browser, page, project):
    configure(project, reviews_required=2)
    samples = make_drafted_samples(project, 3)
    ann, bea = (make_user(name, project=project, role=Role.ANNOTATOR) for name in ("ann", "bea"))
    make_user("cid", project=project, role=Role.ANNOTATOR)
    make_user("lead", project=project, role=Role.ADMIN)
    for reviewer in (ann, bea):  # both accept the first sample's draft: it is reviewed
        assignment = claim_one(project, reviewer)
        assert assignment.sample == samples[0]
        for turn in Turn.objects.filter(sample=samples[0]):
            revision_create(
                assignment=assignment, turn=turn, author=reviewer, base_version=0, decision=Decision.ACCEPTED
            )
    base, slug = live_server.url, project.slug

    # The admin marks it gold on the Gold page, reached from the project page.
    watch = Watch(page)
    log_in(page, base, "lead", "pw-lead")
    assert watch.visit(f"{base}/projects/{slug}/") == []
    page.click("#gold-link")
    page.wait_for_url(re.compile(r".*/gold/$"))
    page.fill("#gold-mark input[name=sample]", samples[0].external_id)
    page.click("#gold-mark button[type=submit]")
    page.locator("#gold-list td", has_text=samples[0].external_id).wait_for()
    assert page.evaluate("window.__cspViolations") == []
    assert GoldSample.objects.filter(sample=samples[0]).exists()
    configure(project, gold_every=1)

    # The annotator starts reviewing: the gold sample, on a page like any other.
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    annotator = context.new_page()
    annotator.set_default_timeout(15_000)
    annotator_watch = Watch(annotator)
    try:
        log_in(annotator, base, "cid", "pw-cid")
        annotator.goto(f"{base}/projects/{slug}/review/")
        annotator.click("#start")
        annotator.wait_for_url(REVIEW_URL)
        card = annotator.locator("article.turn").first
        card.locator("textarea[data-field=critique]").wait_for()
        check = Assignment.objects.get(reviewer__username="cid")
        assert check.gold and check.sample == samples[0]
        assert "gold" not in annotator.content().lower()
        accept(annotator, card)
        wait_for(
            lambda: Assignment.objects.filter(pk=check.pk, state=Assignment.State.SUBMITTED).exists(),
            what="the check submitted",
        )
        assert annotator.evaluate("window.__cspViolations") == []
        assert annotator_watch.errors == [] and annotator_watch.console == []
    finally:
        context.close()

    # The admin reads cid's accuracy: every score as the answer, the decision too.
    assert watch.visit(f"{base}/projects/{slug}/annotators/") == []
    page.click("#annotator-list a:has-text('cid')")
    page.wait_for_url(re.compile(r".*/annotators/cid/$"))
    assert page.locator("#annotator-checks").inner_text() == "1"
    accuracy = page.locator("#gold-accuracy").inner_text()
    assert "Scores exact\t1.00" in accuracy and "Decision agrees (accept or reject)\t1.00" in accuracy
    assert page.locator("#gold-over-time tbody tr").count() == 1
    assert page.evaluate("window.__cspViolations") == [] and watch.errors == []
