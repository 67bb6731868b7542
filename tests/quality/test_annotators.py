"""The Annotators pages and API: each annotator's accuracy on gold checks (against hand counts),
throughput and median time per review, for the project's admins only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client

from feedback.models import Project, Role, Turn
from feedback.review.gold import gold_mark
from feedback.review.models import Assignment, Decision
from feedback.review.revisions import revision_create
from quality.annotators import annotator_detail, annotator_list
from tests.conftest import make_user, token_client
from tests.factories import SCORES
from tests.feedback.review_helpers import claim_one, configure, make_drafted_samples, make_reviewers

pytestmark = pytest.mark.django_db


def detail(project: Project, username: str) -> dict:
    """The annotator's figures, who must have some."""
    figures = annotator_detail(project, username)
    assert figures is not None
    return figures


def decide(assignment, *, decision=Decision.EDITED, critique="The answer names the red bus.", ms=0, **scores):
    for turn in Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False).order_by("index"):
        reason = "Wrong colour." if decision == Decision.REJECTED else ""
        revision_create(
            assignment=assignment,
            turn=turn,
            author=assignment.reviewer,
            base_version=0,
            decision=decision,
            critique=critique,
            scores={**SCORES, **scores},
            time_spent_ms=ms,
            reason=reason,
        )


@pytest.fixture
def team(project: Project) -> SimpleNamespace:
    """Two gold samples (answer: SCORES with helpfulness 5, edited), then cid checked against both."""
    configure(project, reviews_required=2)
    ann, bea, cid = make_reviewers(project, "ann", "bea", "cid")
    lead = make_user("lead", project=project, role=Role.ADMIN)
    make_drafted_samples(project, 4)
    golds = []
    for _ in range(2):
        first = claim_one(project, ann)
        decide(first, helpfulness=5, ms=1000)
        second = claim_one(project, bea)
        assert second.sample == first.sample
        decide(second, helpfulness=5, ms=3000)
        golds.append(gold_mark(project=project, sample=first.sample, user=lead))
    configure(project, gold_every=1)
    one = claim_one(project, cid)
    assert one.gold
    decide(one, helpfulness=5, ms=4000)  # exact on every criterion, decision agrees
    two = claim_one(project, cid)
    assert two.gold
    decide(two, helpfulness=3, ms=8000, critique="Something else entirely.")  # helpfulness 2 off
    return SimpleNamespace(project=project, ann=ann, bea=bea, cid=cid, lead=lead)


def test_gold_figures_match_hand_counts(team):
    figures = annotator_detail(team.project, "cid")
    assert figures is not None
    assert (figures["reviews"], figures["gold_checks"]) == (0, 2)
    gold = figures["gold"]
    criteria = len(team.project.criteria)
    assert gold["turns"] == 2
    assert gold["decision_agreement"]["value"] == 1.0
    # 2 checks x 3 criteria pairs; only helpfulness of the second is off, by 2.
    assert gold["exact"]["n"] == 2 * criteria
    assert gold["exact"]["value"] == round((2 * criteria - 1) / (2 * criteria), 4)
    assert gold["within_1"]["value"] == gold["exact"]["value"]
    assert gold["by_criterion"]["helpfulness"]["exact"]["value"] == 0.5
    assert gold["by_criterion"]["honesty"]["exact"]["value"] == 1.0
    assert gold["critique_distance"]["n"] == 2 and 0 < gold["critique_distance"]["value"] < 1
    assert figures["median_time_ms"] == {"value": 6000, "n": 2}
    (week,) = figures["over_time"]
    assert week["turns"] == 2 and week["exact"]["value"] == gold["exact"]["value"]
    assert [(w["reviews"], w["gold_checks"]) for w in figures["throughput"]] == [(0, 2)]


def test_a_rejection_against_an_accepted_answer_disagrees(team):
    dan = make_user("dan", project=team.project, role=Role.ANNOTATOR)
    check = claim_one(team.project, dan)
    assert check.gold
    decide(check, decision=Decision.REJECTED, helpfulness=5)
    gold = detail(team.project, "dan")["gold"]
    assert gold["decision_agreement"]["value"] == 0.0 and gold["exact"]["value"] == 1.0


def test_the_list_counts_reviews_and_checks_apart(team):
    rows = {row["annotator"]: row for row in annotator_list(team.project)}
    assert (rows["ann"]["reviews"], rows["ann"]["gold_checks"], rows["ann"]["gold"]) == (2, 0, None)
    assert rows["ann"]["median_time_ms"] == {"value": 1000, "n": 2}
    assert rows["cid"]["gold_checks"] == 2 and rows["cid"]["gold"]["turns"] == 2


def test_the_page_and_api_are_the_admins_and_agree(team):
    slug = team.project.slug
    api = token_client(team.lead).get(f"/api/projects/{slug}/annotators/cid/")
    assert api.status_code == 200
    assert api.json()["gold"]["exact"] == detail(team.project, "cid")["gold"]["exact"]
    listing = token_client(team.lead).get(f"/api/projects/{slug}/annotators/").json()
    assert {row["annotator"] for row in listing} == {"ann", "bea", "cid"}
    client = Client()
    client.force_login(team.lead)
    page = client.get(f"/projects/{slug}/annotators/cid/").content.decode()
    exact = detail(team.project, "cid")["gold"]["exact"]["value"]
    assert f"{exact:.2f}" in page and "6000 ms" in page
    assert "cid" in client.get(f"/projects/{slug}/annotators/").content.decode()
    assert token_client(team.lead).get(f"/api/projects/{slug}/annotators/nobody/").status_code == 404
    researcher = make_user("rita", project=team.project, role=Role.RESEARCHER)
    for user, code in ((team.cid, 403), (researcher, 403), (make_user("otto"), 404)):
        assert token_client(user).get(f"/api/projects/{slug}/annotators/").status_code == code
        assert token_client(user).get(f"/api/projects/{slug}/annotators/cid/").status_code == code
        other = Client()
        other.force_login(user)
        assert other.get(f"/projects/{slug}/annotators/cid/").status_code == code


def test_gold_checks_stay_out_of_the_quality_summary(team):
    from quality.models import ReviewedTurn
    from quality.summary import rebuild_project

    checks = set(Assignment.objects.filter(gold=True).values_list("id", flat=True))
    assert len(checks) == 2
    rows = ReviewedTurn.objects.filter(project=team.project)
    assert rows.count() == 4 and not rows.filter(assignment_id__in=checks).exists()
    assert rows.filter(shared=True).count() == 4, "the gold samples' two reviews, not three"
    rebuild_project(team.project)
    assert rows.count() == 4 and not rows.filter(assignment_id__in=checks).exists()
