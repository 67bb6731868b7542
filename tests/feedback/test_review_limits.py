"""Bounds on review input and review work: text lengths per field, working copies and scores, word
diffs computed once per save with bounded work (never per page view or history request), and the
leases page's answer to a form that names no lease."""

from __future__ import annotations

import importlib
import itertools
import random

import pytest
from django.apps import apps as django_apps

from feedback.errors import InvalidInput
from feedback.limits import TEXT_MAX_CHARS
from feedback.review import selectors
from feedback.review.diff import DIFF_MAX_STEPS, word_diff
from feedback.review.models import Revision, WorkingCopy
from feedback.review.revisions import revision_create
from tests.conftest import token_client
from tests.feedback.test_review_api import (
    SCORES,
    ReviewSampleFactory,
    add_revisions,
    assignment_url,
    make_assignment,
    save,
)

pytestmark = pytest.mark.django_db

REPETITIVE_OLD = "the cat sat on the mat. " * 680  # 16 KB each: the two critiques of the report
REPETITIVE_NEW = "the dog sat on the mat. " * 680


@pytest.fixture
def review(project, annotator_user):
    sample = ReviewSampleFactory.create(project=project, external_id="s1", turns=1)
    assignment = make_assignment(sample, annotator_user)
    return assignment, sample.turns.get(), token_client(annotator_user)


def history_url(turn_id: int) -> str:
    return f"/api/projects/test/turns/{turn_id}/revisions/"


# --- the diff itself -----------------------------------------------------------------------


def test_a_diff_of_two_repetitive_16_kb_texts_is_one_deletion_and_one_insertion():
    segments = word_diff(REPETITIVE_OLD, REPETITIVE_NEW)
    # The shared start ("the ") and end (" sat on the mat. ") stay; the middle is replaced whole.
    assert [op for op, _ in segments] == ["same", "del", "ins", "same"]
    assert segments[0] == ("same", "the ")
    assert segments[-1] == ("same", " sat on the mat. ")
    assert "".join(text for op, text in segments if op != "ins") == REPETITIVE_OLD
    assert "".join(text for op, text in segments if op != "del") == REPETITIVE_NEW


def test_a_diff_within_the_bound_is_a_shortest_one_and_reads_as_words_replaced():
    rng = random.Random(11)
    for _ in range(500):
        before = " ".join(rng.choice("abcd") for _ in range(rng.randint(0, 10)))
        after = " ".join(rng.choice("abcd") for _ in range(rng.randint(0, 10)))
        segments = word_diff(before, after)
        assert "".join(text for op, text in segments if op != "ins") == before
        assert "".join(text for op, text in segments if op != "del") == after
        assert all(text for _, text in segments)
        assert all(
            (a, b) not in {("same", "same"), ("del", "del"), ("ins", "ins"), ("ins", "del")}
            for (a, _), (b, _) in itertools.pairwise(segments)
        )
    assert word_diff(
        "Draft 1: the answer names the bus but not its colour.", "The answer names the bus but misses its colour."
    ) == [
        ("del", "Draft 1: the"),
        ("ins", "The"),
        ("same", " answer names the bus but "),
        ("del", "not"),
        ("ins", "misses"),
        ("same", " its colour."),
    ]
    # An ordinary edit of a long text stays a word diff, far within the bound.
    long_text = " ".join(f"word{i}" for i in range(3000))
    edited = long_text.replace("word1500 ", "changed ")
    assert ("del", "word1500") in word_diff(long_text, edited) and ("ins", "changed") in word_diff(long_text, edited)
    assert DIFF_MAX_STEPS == 100_000


# --- stored once, read ever after ------------------------------------------------------------


def test_the_diff_is_stored_when_saved_and_read_never_recomputed(review, admin_user, client, monkeypatch):
    assignment, turn, ann = review
    first = save(
        ann,
        assignment.pk,
        turn.pk,
        base_version=0,
        decision="edited",
        critique="Names the bus only.",
        refinement="A bus.",
        scores=SCORES,
    )
    assert first.status_code == 201, first.json()
    second = save(
        ann,
        assignment.pk,
        turn.pk,
        base_version=1,
        decision="edited",
        critique="Names the red bus only.",
        refinement="A bus.",
        scores=SCORES,
    )
    assert second.status_code == 201, second.json()
    stored = Revision.objects.get(pk=second.json()["revision"]["id"]).diff
    assert stored is not None and stored["critique"] == [["same", "Names the "], ["ins", "red "], ["same", "bus only."]]

    # What the history shows is what was stored: overwrite it, and the overwrite is what comes back.
    Revision.objects.filter(pk=second.json()["revision"]["id"]).update(
        diff={"critique": [["ins", "stored"]], "refinement": [["same", "kept"]]}
    )
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a diff was computed while reading")

    monkeypatch.setattr(selectors, "revision_diff", counting)
    entries = ann.get(history_url(turn.pk)).json()
    assert entries[1]["critique_diff"] == [["ins", "stored"]]
    assert entries[1]["refinement_diff"] == [["same", "kept"]]
    assert ann.get(assignment_url(assignment.pk)).status_code == 200
    client.force_login(admin_user)
    page = client.get(f"/projects/test/review/{assignment.pk}/")
    assert page.status_code == 200
    assert "<ins>stored</ins>" in page.content.decode()
    assert calls == []


def test_revisions_written_around_the_service_get_their_diff_once(review, monkeypatch):
    assignment, turn, ann = review
    add_revisions(assignment, turn, 2)
    assert list(Revision.objects.values_list("diff", flat=True)) == [None, None]
    entries = ann.get(history_url(turn.pk)).json()
    assert ["del", "1"] in entries[1]["critique_diff"] and ["ins", "2"] in entries[1]["critique_diff"]
    assert all(diff is not None for diff in Revision.objects.values_list("diff", flat=True))
    monkeypatch.setattr(selectors, "revision_diff", lambda *a, **k: pytest.fail("computed again"))
    assert ann.get(history_url(turn.pk)).json() == entries


def test_the_migration_backfills_what_the_history_showed(review):
    assignment, turn, _ = review
    add_revisions(assignment, turn, 3)
    draft_critique = turn.drafts.exclude(status="failed").last().critique
    migration = importlib.import_module("feedback.migrations.0009_revision_stored_diff")
    migration.backfill(django_apps, None)
    diffs = list(Revision.objects.order_by("version").values_list("diff", flat=True))
    first, third = diffs[0], diffs[2]
    assert first is not None and third is not None
    assert first["critique"] == [list(s) for s in word_diff(draft_critique, "Version 1 of ann.")]
    assert third["critique"] == [["same", "Version "], ["del", "2"], ["ins", "3"], ["same", " of ann."]]


def test_two_16_kb_repetitive_critiques_save_and_read_with_the_bounded_diff(review):
    assignment, turn, ann = review
    turn.drafts.exclude(status="failed").update(critique=REPETITIVE_OLD)
    saved = save(ann, assignment.pk, turn.pk, base_version=0, decision="edited", critique=REPETITIVE_NEW, scores=SCORES)
    assert saved.status_code == 201, saved.json()
    entry = ann.get(history_url(turn.pk)).json()[0]
    assert [op for op, _ in entry["critique_diff"]] == ["same", "del", "ins", "same"]


# --- text and score bounds ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["critique", "refinement", "reason"])
def test_a_save_past_a_text_bound_is_refused_naming_the_field(review, field):
    assignment, turn, ann = review
    limit = TEXT_MAX_CHARS[field]
    body = {"base_version": 0, "decision": "rejected", "critique": "c", "reason": "Wrong.", "scores": SCORES}
    response = save(ann, assignment.pk, turn.pk, **{**body, field: "x" * (limit + 1)})
    assert response.status_code == 400
    message = " ".join(response.json()["errors"][field])
    assert message == f"At most {limit:,} characters (got {limit + 1:,})."  # under the field's name
    assert response.json()["detail"] == f"{field}: {message}"
    assert not Revision.objects.exists()
    assert save(ann, assignment.pk, turn.pk, **{**body, field: "x" * limit}).status_code == 201


def test_the_service_refuses_a_text_past_its_bound_whoever_calls_it(review, annotator_user):
    assignment, turn, _ = review
    with pytest.raises(InvalidInput) as refused:
        revision_create(
            assignment=assignment,
            turn=turn,
            author=annotator_user,
            base_version=0,
            decision="edited",
            critique="x" * (TEXT_MAX_CHARS["critique"] + 1),
            scores=SCORES,
        )
    assert "critique" in refused.value.errors


def test_a_flag_note_past_its_bound_is_refused(review):
    assignment, _, ann = review
    limit = TEXT_MAX_CHARS["flag_note"]
    response = ann.post(
        assignment_url(assignment.pk, "flag/"), {"flag": "bad_image", "note": "n" * (limit + 1)}, format="json"
    )
    assert response.status_code == 400
    assert f"{limit:,}" in " ".join(response.json()["errors"]["note"])
    assignment.refresh_from_db()
    assert (assignment.state, assignment.flag_note) == ("leased", "")


def test_working_copies_are_bounded_like_saves(review):
    assignment, turn, ann = review
    url = assignment_url(assignment.pk, f"turns/{turn.pk}/working-copy/")

    def put(fields):
        return ann.put(url, {"fields": fields, "base_version": 0}, format="json")

    too_long = put({"critique": "x" * (TEXT_MAX_CHARS["critique"] + 1)})
    assert too_long.status_code == 400 and "fields.critique" in too_long.json()["errors"]
    assert put({"reason": "r" * (TEXT_MAX_CHARS["reason"] + 1)}).status_code == 400
    stray = put({"scores": {f"criterion-{i}-{'z' * 100}": 1 for i in range(1000)}})
    assert stray.status_code == 400
    assert len(stray.json()["errors"]["scores"][0]) < 500 and "995 more" in stray.json()["errors"]["scores"][0]
    assert put({"scores": {"honesty": 99}}).status_code == 400
    assert put({"scores": {"honesty": "lots"}}).status_code == 400
    assert not WorkingCopy.objects.exists()
    kept = put({"critique": "Half", "scores": {"honesty": 3}, "other": "x" * 10_000})
    assert kept.status_code == 200
    assert WorkingCopy.objects.get().fields == {"critique": "Half", "scores": {"honesty": 3}}


def test_a_save_with_scores_of_unknown_criteria_names_a_few_of_them(review):
    assignment, turn, ann = review
    scores = {**SCORES, **{f"c{i}": 1 for i in range(10_000)}}
    response = save(ann, assignment.pk, turn.pk, base_version=0, decision="edited", critique="c", scores=scores)
    assert response.status_code == 400
    assert len(response.json()["errors"]["scores"][0]) < 300


# --- the leases page ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["abc", "", "1.5", "-1", "\uff11", "9" * 40])
def test_the_leases_page_answers_a_form_naming_no_lease_with_a_message(
    project, admin_user, annotator_user, client, value
):
    held = make_assignment(ReviewSampleFactory.create(project=project, external_id="s1"), annotator_user)
    client.force_login(admin_user)
    response = client.post("/projects/test/review/leases/", {"assignment": value}, follow=True)
    assert response.status_code == 200
    assert "Nothing released: the form must name a lease by its number." in response.content.decode()
    held.refresh_from_db()
    assert held.state == "leased"
