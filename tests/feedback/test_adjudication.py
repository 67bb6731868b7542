"""Adjudication: with several reviews per sample, reviews that disagree (scores of a criterion at
least the project's threshold apart, or accept against reject) send the sample to adjudication
once, agreeing ones go straight through; an adjudicator or admin keeps one reviewer's version or an
edit of it, through the page, the API and the command; releases carry the adjudicated final."""

from __future__ import annotations

import json
from io import StringIO
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from exports.formats.rich import SCHEMA_PATH
from feedback.models import Project, Role, Sample, Turn
from feedback.review.adjudication import adjudication_save
from feedback.review.disagreement import turn_disagreements
from feedback.review.models import Adjudication, AdjudicationCase, Decision, Revision
from feedback.review.revisions import revision_create
from tests.conftest import make_user, token_client
from tests.exports.export_helpers import build, folder, read_jsonl
from tests.factories import SCORES
from tests.feedback.review_helpers import claim_one, configure, make_drafted_samples, make_reviewers

pytestmark = pytest.mark.django_db

CRITERIA = ["helpfulness", "honesty", "harmlessness"]


def version(decision: str = Decision.EDITED, **scores: int) -> SimpleNamespace:
    return SimpleNamespace(decision=decision, scores={**SCORES, **scores})


# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "a", "b", "disagree"),
    [
        (2, 4, 5, False),  # one apart, below the default threshold
        (2, 4, 6, True),  # exactly the threshold
        (2, 7, 4, True),
        (3, 4, 6, False),  # a wider threshold lets two apart through
        (3, 4, 7, True),
        (1, 4, 5, True),
        (1, 4, 4, False),
    ],
)
def test_scores_disagree_at_the_threshold_and_not_below(threshold, a, b, disagree):
    reasons = turn_disagreements([version(helpfulness=a), version(helpfulness=b)], CRITERIA, threshold)
    assert bool(reasons) is disagree
    if disagree:
        assert reasons == [f"helpfulness: {min(a, b)} vs {max(a, b)}"]


def test_accept_against_reject_disagrees_accept_against_edit_does_not():
    accepted, edited, rejected = (version(d) for d in (Decision.ACCEPTED, Decision.EDITED, Decision.REJECTED))
    assert turn_disagreements([accepted, edited], CRITERIA, 2) == []
    assert turn_disagreements([accepted, rejected], CRITERIA, 2) == ["decision: accepted vs rejected"]
    assert turn_disagreements([edited, rejected], CRITERIA, 2) == ["decision: edited vs rejected"]
    assert turn_disagreements([rejected, rejected], CRITERIA, 2) == []


def test_a_score_one_review_left_out_is_not_compared():
    partial = SimpleNamespace(decision=Decision.REJECTED, scores={})
    other = SimpleNamespace(decision=Decision.REJECTED, scores={"helpfulness": 1})
    assert turn_disagreements([partial, other], CRITERIA, 1) == []


# --- set-up -----------------------------------------------------------------------------------


@pytest.fixture
def team(project: Project) -> SimpleNamespace:
    configure(project, reviews_required=2)
    ann, bea = make_reviewers(project, "ann", "bea")
    return SimpleNamespace(
        project=project,
        ann=ann,
        bea=bea,
        judge=make_user("judge", project=project, role=Role.ADJUDICATOR),
        lead=make_user("lead", project=project, role=Role.ADMIN),
        researcher=make_user("rita", project=project, role=Role.RESEARCHER),
        outsider=make_user("otto"),
    )


def review(project: Project, reviewer, *, decision: str = Decision.EDITED, critique: str = "", **scores: int):
    """The reviewer claims the next sample and decides each answered turn the same way."""
    assignment = claim_one(project, reviewer)
    for turn in Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False).order_by("index"):
        fields: dict[str, Any] = {"critique": critique or f"{reviewer.username} says: names the bus.", "scores": {}}
        fields["scores"] = {**SCORES, **scores}
        if decision == Decision.REJECTED:
            fields["reason"] = "Misses the colour."
        revision_create(assignment=assignment, turn=turn, author=reviewer, base_version=0, decision=decision, **fields)
    return assignment.sample


def disagreeing_sample(team) -> Sample:
    make_drafted_samples(team.project, 1)
    sample = review(team.project, team.ann, helpfulness=2, critique="The answer names the red bus well.")
    review(team.project, team.bea, helpfulness=6, critique="The answer names the bus and nothing else.")
    return sample


def latest(sample: Sample, reviewer) -> Revision:
    return Revision.objects.filter(turn__sample=sample, author=reviewer).latest("version")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- the queue --------------------------------------------------------------------------------


def test_disagreeing_reviews_open_one_case_once_all_are_in(team):
    make_drafted_samples(team.project, 1)
    sample = review(team.project, team.ann, helpfulness=2)
    assert not AdjudicationCase.objects.exists(), "one review of two: nothing to compare yet"
    assert review(team.project, team.bea, helpfulness=4) == sample
    case = AdjudicationCase.objects.get()
    assert case.sample == sample and case.settled_at is None
    turn = Turn.objects.get(sample=sample)
    assert case.turns == {str(turn.pk): ["helpfulness: 2 vs 4"]}
    # An admin's later correction of a submitted review opens no second case.
    ann_latest = latest(sample, team.ann)
    revision_create(
        assignment=ann_latest.assignment,
        turn=turn,
        author=team.lead,
        base_version=ann_latest.version,
        decision=Decision.EDITED,
        critique="Corrected.",
        scores={**SCORES, "helpfulness": 1},
    )
    assert AdjudicationCase.objects.count() == 1


@pytest.mark.parametrize(("threshold", "queued"), [(2, False), (1, True)])
def test_agreeing_reviews_go_straight_through(team, threshold, queued):
    configure(team.project, adjudication_threshold=threshold)
    make_drafted_samples(team.project, 1)
    review(team.project, team.ann, helpfulness=4)
    review(team.project, team.bea, helpfulness=5)
    assert AdjudicationCase.objects.exists() is queued


def test_accept_against_reject_opens_a_case(team):
    make_drafted_samples(team.project, 1)
    review(team.project, team.ann, decision=Decision.EDITED)
    review(team.project, team.bea, decision=Decision.REJECTED)
    assert list(AdjudicationCase.objects.get().turns.values()) == [["decision: edited vs rejected"]]


def test_one_review_per_sample_never_adjudicates(project):
    (ann,) = make_reviewers(project, "ann")
    make_drafted_samples(project, 1)
    review(project, ann, helpfulness=1)
    assert not AdjudicationCase.objects.exists()


def test_the_threshold_is_bounded(project):
    from django.core.exceptions import ValidationError

    for bad in (0, 101):
        with pytest.raises(ValidationError) as caught:
            configure(project, adjudication_threshold=bad)
        assert "adjudication_threshold" in str(caught.value)


# --- the page ---------------------------------------------------------------------------------


def test_the_adjudicator_settles_a_sample_on_the_page(team):
    sample = disagreeing_sample(team)
    judge = client_for(team.judge)
    slug = team.project.slug
    queue = judge.get(f"/projects/{slug}/adjudication/")
    assert queue.status_code == 200
    assert sample.external_id in queue.content.decode() and "helpfulness: 2 vs 6" in queue.content.decode()
    page = judge.get(f"/projects/{slug}/adjudication/{sample.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-reviewer="ann"' in html and 'data-reviewer="bea"' in html
    # Bea's version against Ann's, word by word, and each against the draft.
    assert "<del>red </del>bus <del>well.</del><ins>and nothing else.</ins>" in html
    assert "Against the draft" in html and "Against ann" in html

    turn = Turn.objects.get(sample=sample)
    chosen = latest(sample, team.bea)
    answer = judge.post(
        f"/projects/{slug}/adjudication/{sample.pk}/", {"turn": turn.pk, "revision": chosen.pk, "mode": "choose"}
    )
    assert answer.status_code == 302
    adjudication = Adjudication.objects.get(turn=turn)
    assert (adjudication.revision, adjudication.edited, adjudication.adjudicator) == (chosen, False, team.judge)
    assert (adjudication.critique, adjudication.scores) == (chosen.critique, chosen.scores)
    assert AdjudicationCase.objects.get(sample=sample).settled_at is not None
    assert 'data-chosen="true"' in judge.get(f"/projects/{slug}/adjudication/{sample.pk}/").content.decode()

    again = judge.post(
        f"/projects/{slug}/adjudication/{sample.pk}/",
        {"turn": turn.pk, "revision": latest(sample, team.ann).pk, "mode": "choose"},
        follow=True,
    )
    assert f"Turn {turn.index + 1} was settled by judge" in again.content.decode()
    assert Adjudication.objects.count() == 1


def test_an_edit_on_the_page_is_kept_as_edited(team):
    sample = disagreeing_sample(team)
    turn = Turn.objects.get(sample=sample)
    chosen = latest(sample, team.ann)
    client_for(team.lead).post(
        f"/projects/{team.project.slug}/adjudication/{sample.pk}/",
        {
            "turn": turn.pk,
            "revision": chosen.pk,
            "mode": "edit",
            "decision": Decision.EDITED,
            "critique": "Names the red bus; says nothing of the rest.",
            "refinement": "Mention the street.",
            "score-helpfulness": "4",
            "score-honesty": "6",
            "score-harmlessness": "7",
            "reason": "",
        },
    )
    adjudication = Adjudication.objects.get(turn=turn)
    assert adjudication.edited and adjudication.adjudicator == team.lead
    assert adjudication.scores == {"helpfulness": 4, "honesty": 6, "harmlessness": 7}
    assert adjudication.critique == "Names the red bus; says nothing of the rest."


def test_a_bad_form_is_refused_naming_the_field(team):
    sample = disagreeing_sample(team)
    turn = Turn.objects.get(sample=sample)
    url = f"/projects/{team.project.slug}/adjudication/{sample.pk}/"
    judge = client_for(team.judge)
    for data, field in (
        ({"turn": turn.pk, "revision": "x" * 30}, "revision"),
        ({"turn": turn.pk, "revision": 10**9}, "revision"),
        (
            {"turn": turn.pk, "revision": latest(sample, team.ann).pk, "mode": "edit", "score-helpfulness": "99"},
            "scores",
        ),
    ):
        answer = judge.post(url, data, follow=True)
        assert field in answer.content.decode(), data
    assert not Adjudication.objects.exists()


def test_roles_on_the_pages(team):
    sample = disagreeing_sample(team)
    slug = team.project.slug
    for user, status in (
        (team.researcher, 403),
        (team.ann, 403),
        (team.outsider, 404),
        (team.judge, 200),
        (team.lead, 200),
    ):
        client = client_for(user)
        assert client.get(f"/projects/{slug}/adjudication/").status_code == status, user
        assert client.get(f"/projects/{slug}/adjudication/{sample.pk}/").status_code == status, user
    turn = Turn.objects.get(sample=sample)
    refused = client_for(team.researcher).post(
        f"/projects/{slug}/adjudication/{sample.pk}/", {"turn": turn.pk, "revision": latest(sample, team.ann).pk}
    )
    assert refused.status_code == 403
    assert not Adjudication.objects.exists()


def test_a_sample_without_disagreement_has_no_adjudication_page(team):
    make_drafted_samples(team.project, 1)
    sample = review(team.project, team.ann)
    review(team.project, team.bea)
    assert client_for(team.judge).get(f"/projects/{team.project.slug}/adjudication/{sample.pk}/").status_code == 404


# --- the API ----------------------------------------------------------------------------------


def test_list_detail_and_save_through_the_api(team):
    sample = disagreeing_sample(team)
    base = f"/api/projects/{team.project.slug}/adjudication/"
    api = token_client(team.judge)
    listing = api.get(base).json()
    assert (listing["pending"], listing["settled"]) == (1, 0)
    assert [c["external_id"] for c in listing["results"]] == [sample.external_id]
    detail = api.get(f"{base}{sample.pk}/").json()
    (turn,) = detail["turns"]
    assert turn["reasons"] == ["helpfulness: 2 vs 6"]
    assert [r["revision"]["author"] for r in turn["reviews"]] == ["ann", "bea"]
    assert turn["reviews"][0]["against_first"] is None
    assert ["helpfulness", 2, 6] in turn["reviews"][1]["against_first"]["scores"]
    assert ["helpfulness", 4, 6] in turn["reviews"][1]["against_draft"]["scores"]

    ann = latest(sample, team.ann)
    saved = api.post(
        f"{base}{sample.pk}/turns/{turn['id']}/", {"revision": ann.pk, "scores": {"helpfulness": 3}}, format="json"
    )
    assert saved.status_code == 201, saved.json()
    assert saved.json()["edited"] is True
    assert saved.json()["scores"] == {**SCORES, "helpfulness": 3}
    again = api.post(f"{base}{sample.pk}/turns/{turn['id']}/", {"revision": ann.pk}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    after = api.get(base, {"state": "settled"}).json()
    assert (after["pending"], after["settled"], len(after["results"])) == (0, 1, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"revision": "abc"}, "revision"),
        ({"revision": 999_999}, "revision"),
        ({"revision": None, "critique": "x"}, "revision"),
        ({"decision": "maybe"}, "decision"),
        ({"scores": {"helpfulness": 0}}, "scores"),
        ({"scores": {"unknown": 3}}, "scores"),
        ({"critique": "x" * 200_000}, "critique"),
        ({"decision": "rejected", "reason": ""}, "reason"),
    ],
)
def test_a_bad_save_is_refused_naming_the_field(team, body, field):
    sample = disagreeing_sample(team)
    turn = Turn.objects.get(sample=sample)
    payload = {"revision": latest(sample, team.ann).pk, **body}
    answer = token_client(team.judge).post(
        f"/api/projects/{team.project.slug}/adjudication/{sample.pk}/turns/{turn.pk}/", payload, format="json"
    )
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["errors"], answer.json()
    assert not Adjudication.objects.exists()


def test_a_bad_state_is_refused(team):
    answer = token_client(team.judge).get(f"/api/projects/{team.project.slug}/adjudication/", {"state": "x" * 500})
    assert answer.status_code == 400 and "state" in answer.json()["errors"]


def test_roles_in_the_api(team):
    sample = disagreeing_sample(team)
    turn = Turn.objects.get(sample=sample)
    base = f"/api/projects/{team.project.slug}/adjudication/"
    body = {"revision": latest(sample, team.ann).pk}
    for user, status in ((team.researcher, 403), (team.bea, 403), (team.outsider, 404)):
        api = token_client(user)
        assert api.get(base).status_code == status
        assert api.get(f"{base}{sample.pk}/").status_code == status
        answer = api.post(f"{base}{sample.pk}/turns/{turn.pk}/", body, format="json")
        assert answer.status_code == status and answer.json()["code"] in ("not_allowed", "not_found")
    assert not Adjudication.objects.exists()
    assert token_client(team.lead).post(f"{base}{sample.pk}/turns/{turn.pk}/", body, format="json").status_code == 201


# --- the command ------------------------------------------------------------------------------


def adjudicate(*args: str) -> str:
    out = StringIO()
    call_command("adjudicate", *args, stdout=out)
    return out.getvalue()


def test_list_show_and_choose_on_the_command_line(team):
    sample = disagreeing_sample(team)
    slug = team.project.slug
    assert "1 waiting, 0 settled" in adjudicate("--project", slug, "list")
    assert sample.external_id in adjudicate("--project", slug, "list")
    bea = latest(sample, team.bea)
    shown = adjudicate("--project", slug, "show", sample.external_id)
    assert "disagrees: helpfulness: 2 vs 6" in shown and f"revision {bea.pk} by bea" in shown
    with pytest.raises(CommandError, match="neither an adjudicator nor an admin"):
        adjudicate(
            "--project", slug, "choose", sample.external_id, "--turn", "1", "--revision", str(bea.pk), "--user", "rita"
        )
    with pytest.raises(CommandError, match="turn"):
        adjudicate(
            "--project", slug, "choose", sample.external_id, "--turn", "9", "--revision", str(bea.pk), "--user", "judge"
        )
    done = adjudicate(
        "--project", slug, "choose", sample.external_id, "--turn", "1", "--revision", str(bea.pk), "--user", "judge"
    )
    assert f"settled, edited: as it was: revision {bea.pk}" in done
    assert Adjudication.objects.get().revision == bea
    assert "0 waiting, 1 settled" in adjudicate("--project", slug, "list")
    assert "(kept)" in adjudicate("--project", slug, "show", sample.external_id)


# --- releases ---------------------------------------------------------------------------------


def test_the_release_carries_the_adjudicated_final_and_marks_it(team):
    sample = disagreeing_sample(team)
    make_drafted_samples(team.project, 1, prefix="agree")
    review(team.project, team.ann, helpfulness=5)
    review(team.project, team.bea, helpfulness=5, critique="Bea agrees.")
    turn = Turn.objects.get(sample=sample)
    ann = latest(sample, team.ann)
    adjudication_save(
        project=team.project,
        sample=sample,
        turn=turn,
        adjudicator=team.judge,
        revision_id=ann.pk,
        edit={"critique": "The judge's words.", "scores": {"helpfulness": 3}},
    )
    release = build(team.project, ["rich", "dress"])
    records = {r["id"]: r for r in read_jsonl(folder(release) / "rich.jsonl")}
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for record in records.values():
        assert not list(validator.iter_errors(record))

    (settled,) = records[sample.external_id]["turns"]
    # The final is the adjudication's, though Bea's review is the latest.
    assert settled["final"]["critique"] == "The judge's words."
    assert settled["final"]["scores"] == {**SCORES, "helpfulness": 3}
    assert (settled["final"]["reviewer"], settled["final"]["adjudicated"]) == ("judge", True)
    assert settled["final"]["revision_id"] == ann.pk
    assert [(r["reviewer"], r["adjudicated"]) for r in settled["reviews"]] == [("ann", True), ("bea", False)]
    assert settled["adjudication"]["adjudicator"] == "judge" and settled["adjudication"]["edited"] is True
    assert settled["adjudication"]["revision_id"] == ann.pk

    (agreed,) = records["agree0"]["turns"]
    assert agreed["adjudication"] is None and agreed["final"]["critique"] == "Bea agrees."
    assert [r["adjudicated"] for r in agreed["reviews"]] == [False, False]

    dress = read_jsonl(folder(release) / "helpfulness_nlf.jsonl")
    ratings = sorted(item["rating"] for record in dress for item in record["interaction"])
    assert "3" in ratings and "6" not in ratings
