"""Gold checks: an admin marks reviewed samples as gold; about one claim in the project's
``gold_every`` serves an annotator a gold sample they never had, which looks like any other; the
check holds none of the sample's review places, opens no adjudication, and is never released."""

from __future__ import annotations

from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.test import Client

from feedback.errors import Conflict, InvalidInput, NotFound
from feedback.models import Project, Role, Sample, Turn
from feedback.review.adjudication import adjudication_save
from feedback.review.claims import lease_end, leases_expire
from feedback.review.gold import gold_due, gold_list, gold_mark, gold_retire, gold_turn
from feedback.review.models import AdjudicationCase, Assignment, Decision, GoldSample, QueueItem, Revision
from feedback.review.revisions import revision_create
from tests.conftest import make_user, token_client
from tests.exports.export_helpers import build, folder, read_jsonl
from tests.factories import SCORES
from tests.feedback.review_helpers import claim_one, configure, make_drafted_samples, make_reviewers

pytestmark = pytest.mark.django_db


def decide(assignment: Assignment, *, decision: str = Decision.EDITED, critique: str = "", **scores: int) -> None:
    record(assignment, decision=decision, critique=critique, scores=scores)


def record(assignment: Assignment, *, decision: str, critique: str, scores: dict[str, int]) -> None:
    """Submits the same revision of every answered turn: ``scores`` over the factory's."""
    reviewer = assignment.reviewer
    for turn in Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False).order_by("index"):
        fields: dict[str, Any] = {
            "critique": critique or f"{reviewer.username} says: names the bus.",
            "scores": {**SCORES, **scores},
        }
        if decision == Decision.REJECTED:
            fields["reason"] = "Misses the colour."
        revision_create(assignment=assignment, turn=turn, author=reviewer, base_version=0, decision=decision, **fields)


def reviewed(project: Project, reviewers, **scores: int) -> Sample:
    """The next sample, reviewed by each of ``reviewers`` the same way."""
    sample = None
    for reviewer in reviewers:
        assignment = claim_one(project, reviewer)
        sample = sample or assignment.sample
        assert assignment.sample == sample
        record(assignment, decision=Decision.EDITED, critique="The answer names the red bus.", scores=scores)
    assert sample is not None
    return sample


@pytest.fixture
def team(project: Project) -> SimpleNamespace:
    configure(project, reviews_required=2)
    ann, bea, cid = make_reviewers(project, "ann", "bea", "cid")
    return SimpleNamespace(
        project=project, ann=ann, bea=bea, cid=cid, lead=make_user("lead", project=project, role=Role.ADMIN)
    )


def test_a_reviewed_sample_becomes_gold_with_its_finals_as_the_answer(team):
    make_drafted_samples(team.project, 2)
    sample = reviewed(team.project, [team.ann, team.bea], helpfulness=5)
    gold = gold_mark(project=team.project, sample=sample, user=team.lead)
    (turn,) = Turn.objects.filter(sample=sample)
    assert gold.expected == {
        str(turn.pk): {
            "decision": "edited",
            "critique": "The answer names the red bus.",
            "refinement": "",
            "scores": {**SCORES, "helpfulness": 5},
            "reason": "",
        }
    }
    with pytest.raises(Conflict):
        gold_mark(project=team.project, sample=sample, user=team.lead)
    assert [g.sample for g in gold_list(team.project)] == [sample]


def test_only_reviewed_settled_unflagged_samples_can_be_gold(team):
    first, _ = make_drafted_samples(team.project, 2)
    with pytest.raises(InvalidInput) as caught:
        gold_mark(project=team.project, sample=first, user=team.lead)
    assert caught.value.field == "sample" and "0 of its 2 reviews" in str(caught.value)
    # Disagreeing reviews wait for adjudication: no answer yet.
    disagreeing = reviewed(team.project, [team.ann], helpfulness=1)
    decide(claim_one(team.project, team.bea), helpfulness=7)
    assert AdjudicationCase.objects.filter(sample=disagreeing).exists()
    with pytest.raises(InvalidInput, match="waits for adjudication"):
        gold_mark(project=team.project, sample=disagreeing, user=team.lead)


def test_retired_gold_is_served_no_more_and_comes_back_with_its_answer(team):
    make_drafted_samples(team.project, 1)
    sample = reviewed(team.project, [team.ann, team.bea])
    gold = gold_mark(project=team.project, sample=sample, user=team.lead)
    gold_retire(project=team.project, sample=sample)
    assert list(gold_list(team.project)) == []
    with pytest.raises(NotFound):
        gold_retire(project=team.project, sample=sample)
    assert gold_mark(project=team.project, sample=sample, user=team.lead).expected == gold.expected


def test_gold_is_served_at_the_rate_in_no_pattern():
    for every in (1, 5, 20):
        served = [gold_turn(3, 7, made, every) for made in range(4000)]
        assert abs(sum(served) - 4000 / every) < 4 * (4000 / every) ** 0.5 + 1
    served = [gold_turn(3, 7, made, 20) for made in range(400)]
    gaps = {
        b - a
        for a, b in zip(
            [i for i, s in enumerate(served) if s], [i for i, s in enumerate(served) if s][1:], strict=False
        )
    }
    assert len(gaps) > 3, "not every twentieth claim"


def gold_sample(team, *, every: int = 1) -> Sample:
    make_drafted_samples(team.project, 3)
    sample = reviewed(team.project, [team.ann, team.bea], helpfulness=5)
    gold_mark(project=team.project, sample=sample, user=team.lead)
    configure(team.project, gold_every=every)
    return sample


def test_a_gold_check_holds_no_place_counts_no_review_and_opens_no_adjudication(team):
    sample = gold_sample(team)
    item = QueueItem.objects.get(sample=sample)
    before = (item.holding, item.reviews_done, item.open)
    check = claim_one(team.project, team.cid)
    assert check.sample == sample and check.gold
    assert 1 <= check.lane <= team.project.reviews_required
    item.refresh_from_db()
    assert (item.holding, item.reviews_done, item.open) == before
    decide(check, helpfulness=1)  # far from the answer: still no adjudication, it is no review of the sample
    check.refresh_from_db()
    assert check.state == Assignment.State.SUBMITTED
    item.refresh_from_db()
    assert (item.holding, item.reviews_done, item.open) == before
    assert not AdjudicationCase.objects.filter(sample=sample).exists()
    # The next claim is not the same gold sample again: none is left for cid, so a sample of the queue.
    assert gold_due(team.project, team.cid)
    following = claim_one(team.project, team.cid)
    assert following.sample != sample and not following.gold
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            project=team.project,
            sample=sample,
            reviewer=team.cid,
            lane=1,
            gold=True,
            claimed_at=check.claimed_at,
            expires_at=check.expires_at,
            state=Assignment.State.SKIPPED,
        )


def test_reviewers_of_the_sample_and_admins_get_no_gold(team):
    sample = gold_sample(team)
    for reviewer in (team.ann, team.bea, team.lead):
        got = claim_one(team.project, reviewer)
        assert got.sample != sample and not got.gold


def test_a_let_go_or_lapsed_check_gives_its_place_back_to_no_one(team):
    sample = gold_sample(team)
    item = QueueItem.objects.get(sample=sample)
    check = claim_one(team.project, team.cid)
    lease_end(assignment=check, user=team.cid, state=Assignment.State.SKIPPED)
    item.refresh_from_db()
    assert item.holding == 2
    dan = make_user("dan", project=team.project, role=Role.ANNOTATOR)
    lapsed = claim_one(team.project, dan)
    assert lapsed.gold
    Assignment.objects.filter(pk=lapsed.pk).update(expires_at=lapsed.claimed_at)
    assert leases_expire(team.project) == 1
    item.refresh_from_db()
    assert item.holding == 2
    # Saving on the lapsed check revives it, as any lease of one's own.
    lapsed.refresh_from_db()
    decide(lapsed)
    lapsed.refresh_from_db()
    assert lapsed.state == Assignment.State.SUBMITTED


def test_no_gold_without_a_rate(team):
    sample = gold_sample(team, every=0)
    assert claim_one(team.project, team.cid).sample != sample
    assert not Assignment.objects.filter(gold=True).exists()
    assert GoldSample.objects.count() == 1


# --- releases ---------------------------------------------------------------------------------


def test_releases_hold_no_gold_sample_and_no_check_review(team):
    sample = gold_sample(team)
    check = claim_one(team.project, team.cid)
    assert check.sample == sample
    decide(check, critique="Cid's check of the gold sample.", helpfulness=2)
    other = reviewed(team.project, [team.ann, team.bea])
    release = build(team.project, ["rich", "dress"])
    rich = {r["id"]: r for r in read_jsonl(folder(release) / "rich.jsonl")}
    assert sample.external_id not in rich and other.external_id in rich
    dress = (folder(release) / "helpfulness_nlf.jsonl").read_text()
    assert "Cid's check" not in dress and "cid" not in str(rich)
    # Retired, the sample is released with its reviewers' finals; the check never is.
    gold_retire(project=team.project, sample=sample)
    rich = {r["id"]: r for r in read_jsonl(folder(build(team.project, ["rich"])) / "rich.jsonl")}
    (turn,) = rich[sample.external_id]["turns"]
    assert sorted(r["reviewer"] for r in turn["reviews"]) == ["ann", "bea"]
    assert "Cid's check" not in str(rich)


def test_a_turn_waiting_for_adjudication_is_not_released_until_settled(team):
    make_drafted_samples(team.project, 2)
    disagreeing = reviewed(team.project, [team.ann], helpfulness=1)
    decide(claim_one(team.project, team.bea), helpfulness=7)
    agreeing = reviewed(team.project, [team.ann, team.bea])
    case = AdjudicationCase.objects.get(sample=disagreeing)
    rich = {r["id"]: r for r in read_jsonl(folder(build(team.project, ["rich"])) / "rich.jsonl")}
    assert disagreeing.external_id not in rich, "its only turn has no final yet"
    assert agreeing.external_id in rich
    (turn,) = Turn.objects.filter(sample=disagreeing)
    ann = Revision.objects.filter(turn=turn, author=team.ann).latest("version")
    adjudication_save(project=team.project, sample=disagreeing, turn=turn, adjudicator=team.lead, revision_id=ann.pk)
    case.refresh_from_db()
    assert case.settled_at is not None
    rich = {r["id"]: r for r in read_jsonl(folder(build(team.project, ["rich"])) / "rich.jsonl")}
    (released,) = rich[disagreeing.external_id]["turns"]
    assert released["final"]["scores"]["helpfulness"] == 1


# --- the three doors --------------------------------------------------------------------------


def test_mark_list_and_retire_through_the_api_admins_only(team):
    make_drafted_samples(team.project, 2)
    sample = reviewed(team.project, [team.ann, team.bea])
    lead = token_client(team.lead)
    url = f"/api/projects/{team.project.slug}/gold/"
    for user, code in ((team.ann, 403), (make_user("rita", project=team.project, role=Role.RESEARCHER), 403)):
        assert token_client(user).get(url).status_code == code
        assert token_client(user).post(url, {"sample": sample.external_id}, format="json").status_code == code
    assert token_client(make_user("otto")).get(url).status_code == 404
    created = lead.post(url, {"sample": sample.external_id}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["external_id"] == sample.external_id and created.json()["marked_by"] == "lead"
    assert lead.post(url, {"sample": str(sample.pk)}, format="json").status_code == 409
    (row,) = lead.get(url).json()
    assert (row["sample"], row["checks"]) == (sample.pk, 0)
    unreviewed = Sample.objects.exclude(pk=sample.pk).get()
    refused = lead.post(url, {"sample": unreviewed.external_id}, format="json")
    assert refused.status_code == 400 and "sample" in refused.json()["errors"]
    too_long = lead.post(url, {"sample": "x" * 201}, format="json")
    assert too_long.status_code == 400 and "sample" in too_long.json()["errors"]
    assert lead.post(url, {"sample": "nope"}, format="json").status_code == 404
    assert token_client(team.ann).delete(f"{url}{sample.pk}/").status_code == 403
    assert lead.delete(f"{url}{sample.pk}/").status_code == 204
    assert lead.get(url).json() == []
    assert lead.delete(f"{url}{sample.pk}/").status_code == 404


def test_the_settings_take_the_gold_rate_within_its_bounds(team):
    lead = token_client(team.lead)
    url = f"/api/projects/{team.project.slug}/"
    assert lead.patch(url, {"gold_every": 20}, format="json").status_code == 200
    team.project.refresh_from_db()
    assert team.project.gold_every == 20
    for bad in (-1, 1001, "often"):
        response = lead.patch(url, {"gold_every": bad}, format="json")
        assert response.status_code == 400 and "gold_every" in response.json()["errors"]
    assert token_client(team.ann).patch(url, {"gold_every": 2}, format="json").status_code == 403


def test_the_gold_page_marks_and_retires_admins_only(team):
    make_drafted_samples(team.project, 1)
    sample = reviewed(team.project, [team.ann, team.bea])
    page = f"/projects/{team.project.slug}/gold/"
    annotator = Client()
    annotator.force_login(team.ann)
    assert annotator.get(page).status_code == 403
    assert annotator.post(page, {"sample": sample.external_id}).status_code == 403
    lead = Client()
    lead.force_login(team.lead)
    response = lead.post(page, {"sample": sample.external_id}, follow=True)
    assert response.status_code == 200
    assert GoldSample.objects.filter(sample=sample, retired_at__isnull=True).exists()
    assert sample.external_id in response.content.decode()
    again = lead.post(page, {"sample": sample.external_id}, follow=True)
    assert "gold already" in again.content.decode()
    lead.post(f"{page}{sample.pk}/retire/")
    assert not GoldSample.objects.filter(sample=sample, retired_at__isnull=True).exists()


def gold_command(*args: str) -> str:
    out = StringIO()
    call_command("gold", *args, stdout=out)
    return out.getvalue()


def test_list_mark_and_retire_on_the_command_line(team):
    make_drafted_samples(team.project, 2)
    sample = reviewed(team.project, [team.ann, team.bea])
    slug = team.project.slug
    assert "s0: gold (1 turns in the answer)" in gold_command(
        "--project", slug, "mark", sample.external_id, "--user", "lead"
    )
    assert "s0  marked by lead" in gold_command("--project", slug, "list")
    with pytest.raises(CommandError, match="not an admin"):
        gold_command("--project", slug, "mark", "s1", "--user", "ann")
    with pytest.raises(CommandError, match="0 of its 2 reviews"):
        gold_command("--project", slug, "mark", "s1", "--user", "lead")
    with pytest.raises(CommandError, match="gold already"):
        gold_command("--project", slug, "mark", "s0", "--user", "lead")
    assert "s0: retired" in gold_command("--project", slug, "retire", "s0")


def test_nothing_an_annotator_sees_tells_a_check_from_a_review(team):
    sample = gold_sample(team)
    check = claim_one(team.project, team.cid)
    assert check.gold and check.sample == sample
    cid = Client()
    cid.force_login(team.cid)
    page = cid.get(f"/projects/{team.project.slug}/review/{check.pk}/").content.decode().lower()
    api = token_client(team.cid).get(f"/api/projects/{team.project.slug}/review/assignments/{check.pk}/").json()
    assert "gold" not in page and "gold" not in str(api).lower()
    assert "names the red bus" not in page, "the expected answer is not shown"
    assert set(api) == {
        "id",
        "state",
        "lane",
        "reviewer",
        "claimed_at",
        "expires_at",
        "flag",
        "flag_note",
        "sample",
        "turns",
    }


# --- a changed threshold ----------------------------------------------------------------------


def test_a_changed_threshold_rechecks_the_waiting_cases(team):
    make_drafted_samples(team.project, 3)
    wide = reviewed(team.project, [team.ann], helpfulness=1)  # 1 vs 7: disagrees under any threshold up to 6
    decide(claim_one(team.project, team.bea), helpfulness=7)
    narrow = reviewed(team.project, [team.ann], helpfulness=3)  # 3 vs 5: only under a threshold of 2
    decide(claim_one(team.project, team.bea), helpfulness=5)
    agreeing = reviewed(team.project, [team.ann, team.bea], helpfulness=4)
    assert set(AdjudicationCase.objects.values_list("sample_id", flat=True)) == {wide.pk, narrow.pk}
    response = token_client(team.lead).patch(
        f"/api/projects/{team.project.slug}/", {"adjudication_threshold": 3}, format="json"
    )
    assert response.status_code == 200, response.json()
    # The narrow disagreement goes straight through; the wide one still waits; no case opens.
    assert set(AdjudicationCase.objects.values_list("sample_id", flat=True)) == {wide.pk}
    assert not AdjudicationCase.objects.filter(sample=agreeing).exists()
    rich = {r["id"]: r for r in read_jsonl(folder(build(team.project, ["rich"])) / "rich.jsonl")}
    assert narrow.external_id in rich and wide.external_id not in rich
    # Lowered again, a waiting case is not reopened for samples that went through.
    token_client(team.lead).patch(f"/api/projects/{team.project.slug}/", {"adjudication_threshold": 2}, format="json")
    assert set(AdjudicationCase.objects.values_list("sample_id", flat=True)) == {wide.pk}
