"""Saving review work: revisions (decisions, validation, version chain, conflicts), completion of
a review, working copies, flags and saves after a lapsed lease."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.drafting.models import Draft
from feedback.errors import InvalidInput
from feedback.models import Role
from feedback.review.claims import LeaseLost, NotAllowed, lease_end, leases_expire
from feedback.review.models import Assignment, Decision, Flag, Revision, WorkingCopy
from feedback.review.revisions import (
    MAX_TIME_SPENT_MS,
    Conflict,
    revision_create,
    sample_flag,
    working_copy_save,
)
from tests.factories import DraftFactory
from tests.feedback.review_helpers import (
    SCORES,
    answered_turns,
    assert_holding_consistent,
    claim_one,
    configure,
    expire,
    item_of,
    make_drafted_samples,
    make_reviewers,
)

pytestmark = pytest.mark.django_db

OWN: dict[str, Any] = {
    "critique": "It misses the colour.",
    "refinement": "Say it is red.",
    "scores": {**SCORES, "honesty": 2},
}


@pytest.fixture
def ann(project):
    return make_reviewers(project, "ann")[0]


def claimed(project, reviewer, *, turns: int = 1, **options) -> Assignment:
    """A lease of ``reviewer`` on a new sample of ``turns`` turns (``options`` as for
    ``make_drafted_samples``)."""
    make_drafted_samples(project, 1, turns=turns, **options)
    assignment = claim_one(project, reviewer)
    assert assignment is not None
    return assignment


def save(assignment: Assignment, turn, *, author=None, base_version: int = 0, decision=Decision.EDITED, **fields):
    return revision_create(
        assignment=assignment,
        turn=turn,
        author=author or assignment.reviewer,
        base_version=base_version,
        decision=decision,
        **fields,
    )


def assert_error_on(field: str, excinfo) -> None:
    assert field in excinfo.value.errors, excinfo.value.errors


# --- decisions -----------------------------------------------------------------------------


def test_accepting_copies_the_draft_and_ignores_the_fields_sent(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    draft = turn.drafts.get()
    result = save(assignment, turn, decision=Decision.ACCEPTED, critique="ignored", scores={"helpfulness": 1})
    revision = Revision.objects.get(pk=result.revision.pk)
    assert revision.draft_id == draft.pk
    assert (revision.decision, revision.version, revision.author_id) == (Decision.ACCEPTED, 1, ann.pk)
    assert (revision.critique, revision.refinement, revision.scores) == (draft.critique, draft.refinement, draft.scores)
    assert revision.reason == ""


def test_accepting_takes_the_latest_successful_draft_or_the_one_named(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    older = turn.drafts.get()
    newer = DraftFactory.create(turn=turn, critique="A newer critique.", overall=3)
    DraftFactory.create(turn=turn, status="failed", error="timeout", critique="", overall=None)
    assert save(assignment, turn, decision=Decision.ACCEPTED).revision.draft_id == newer.pk
    chosen = save(assignment, turn, base_version=1, decision=Decision.ACCEPTED, draft_id=older.pk).revision
    assert (chosen.draft_id, chosen.critique) == (older.pk, older.critique)
    other = make_drafted_samples(project, 1, prefix="other")[0].turns.get().drafts.get()
    with pytest.raises(InvalidInput) as excinfo:
        save(assignment, turn, base_version=2, decision=Decision.ACCEPTED, draft_id=other.pk)
    assert_error_on("draft", excinfo)


def test_accepting_a_turn_without_a_draft_is_refused(project, ann):
    assignment = claimed(project, ann, drafted=False)
    (turn,) = answered_turns(assignment)
    with pytest.raises(InvalidInput) as excinfo:
        save(assignment, turn, decision=Decision.ACCEPTED)
    assert_error_on("decision", excinfo)
    assert not Revision.objects.exists()
    # Feedback of one's own is fine without a draft.
    revision = save(assignment, turn, **OWN).revision
    assert revision.draft is None and revision.scores == OWN["scores"]


def test_an_edit_keeps_what_was_typed_and_records_the_draft(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    revision = Revision.objects.get(pk=save(assignment, turn, time_spent_ms=4200, **OWN).revision.pk)
    assert (revision.decision, revision.draft_id) == (Decision.EDITED, turn.drafts.get().pk)
    assert (revision.critique, revision.refinement, revision.scores) == (
        OWN["critique"],
        OWN["refinement"],
        OWN["scores"],
    )
    assert revision.time_spent_ms == 4200


def test_scores_sent_as_text_are_stored_as_numbers(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    scores = {name: str(value) for name, value in SCORES.items()}
    assert save(assignment, turn, critique="Fine.", scores=scores).revision.scores == SCORES


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"critique": "", "scores": SCORES}, "critique"),
        ({"critique": "   ", "scores": SCORES}, "critique"),
        ({"critique": "Fine.", "scores": {**SCORES, "honesty": 8}}, "scores"),
        ({"critique": "Fine.", "scores": {**SCORES, "honesty": 0}}, "scores"),
        ({"critique": "Fine.", "scores": {"helpfulness": 4, "honesty": 5}}, "scores"),
        ({"critique": "Fine.", "scores": {**SCORES, "style": 3}}, "scores"),
        ({"critique": "Fine.", "scores": {**SCORES, "honesty": 4.5}}, "scores"),
        ({"critique": "Fine.", "scores": {**SCORES, "honesty": "four"}}, "scores"),
        ({"critique": "Fine.", "scores": {**SCORES, "honesty": True}}, "scores"),
        ({"critique": "Fine.", "scores": [4, 6, 7]}, "scores"),
        ({"critique": "Fine."}, "scores"),
    ],
)
def test_an_edit_needs_a_critique_and_every_score_within_the_scale(project, ann, fields, field):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    with pytest.raises(InvalidInput) as excinfo:
        save(assignment, turn, **fields)
    assert_error_on(field, excinfo)
    assert not Revision.objects.exists()


def test_the_scale_is_the_projects(project, ann):
    configure(project, score_min=0, score_max=10, level_descriptions={})
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    scores = {**SCORES, "helpfulness": 0, "honesty": 10}
    assert save(assignment, turn, critique="Fine.", scores=scores).revision.scores == scores
    with pytest.raises(InvalidInput) as excinfo:
        save(assignment, turn, base_version=1, critique="Fine.", scores={**scores, "honesty": 11})
    assert_error_on("scores", excinfo)


def test_rejecting_needs_a_reason(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    for reason in ("", "  "):
        with pytest.raises(InvalidInput) as excinfo:
            save(assignment, turn, decision=Decision.REJECTED, reason=reason)
        assert_error_on("reason", excinfo)
    assert not Revision.objects.exists()
    revision = save(assignment, turn, decision=Decision.REJECTED, reason="  Describes another image. ").revision
    assert (revision.decision, revision.reason, revision.scores) == (Decision.REJECTED, "Describes another image.", {})


def test_an_unknown_decision_is_refused(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    with pytest.raises(InvalidInput) as excinfo:
        save(assignment, turn, decision="maybe", **OWN)
    assert_error_on("decision", excinfo)


def test_a_turn_of_another_sample_or_without_a_response_is_refused(project, ann):
    assignment = claimed(project, ann)
    other = make_drafted_samples(project, 1, turns=2, awaiting=True, prefix="other")[0]
    for turn in other.turns.all():
        with pytest.raises(InvalidInput) as excinfo:
            save(assignment, turn, **OWN)
        assert_error_on("turn", excinfo)
    assert not Revision.objects.exists()


def test_time_spent_is_clamped(project, ann):
    assignment = claimed(project, ann, turns=3)
    turns = answered_turns(assignment)
    spent = [
        save(assignment, turn, time_spent_ms=ms, **OWN).revision.time_spent_ms
        for turn, ms in zip(turns, (-500, 10**12, None), strict=True)
    ]
    assert spent == [0, MAX_TIME_SPENT_MS, 0]


# --- the version chain ---------------------------------------------------------------------


def test_saves_form_a_chain_of_versions(project, ann):
    assignment = claimed(project, ann, turns=2)
    first, second = answered_turns(assignment)
    versions = [save(assignment, first, base_version=n, **OWN).revision.version for n in range(3)]
    assert versions == [1, 2, 3]
    assert save(assignment, second, **OWN).revision.version == 1  # a chain per turn
    assert list(Revision.objects.filter(turn=first).values_list("version", flat=True)) == [1, 2, 3]


def test_a_save_on_a_stale_version_raises_a_conflict_with_the_latest(project, ann, admin_user):
    assignment = claimed(project, ann, turns=2)
    turn = answered_turns(assignment)[0]
    save(assignment, turn, **OWN)
    latest = save(assignment, turn, author=admin_user, base_version=1, critique="The admin's.", scores=SCORES).revision
    for stale in (0, 1, 5):
        with pytest.raises(Conflict) as excinfo:
            save(assignment, turn, base_version=stale, critique="Mine, typed meanwhile.", scores=SCORES)
        assert excinfo.value.latest.pk == latest.pk
        assert excinfo.value.latest.version == 2
    assert Revision.objects.count() == 2
    assert not Revision.objects.filter(critique="Mine, typed meanwhile.").exists()


def test_a_first_save_must_be_based_on_version_zero(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    with pytest.raises(InvalidInput) as excinfo:
        save(assignment, turn, base_version=1, **OWN)
    assert_error_on("base_version", excinfo)
    assert not Revision.objects.exists()


def test_no_save_modifies_the_draft(project, ann):
    assignment = claimed(project, ann, turns=3)
    turns = answered_turns(assignment)
    before = list(Draft.objects.order_by("pk").values())
    save(assignment, turns[0], decision=Decision.ACCEPTED)
    save(assignment, turns[0], base_version=1, **OWN)
    save(assignment, turns[1], decision=Decision.REJECTED, reason="Wrong image.", critique="x", scores={"honesty": 1})
    save(assignment, turns[2], **OWN)
    save(assignment, turns[2], base_version=1, decision=Decision.ACCEPTED)
    assert list(Draft.objects.order_by("pk").values()) == before
    assert Revision.objects.exclude(draft=None).count() == 5


# --- completing a review -------------------------------------------------------------------


def test_the_last_decided_turn_submits_the_assignment(project, ann):
    assignment = claimed(project, ann, turns=3)
    first, second, third = answered_turns(assignment)
    assert not save(assignment, first, decision=Decision.ACCEPTED).completed
    assert not save(assignment, first, base_version=1, **OWN).completed  # a turn counts once
    assert not save(assignment, second, decision=Decision.REJECTED, reason="Off.").completed
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.LEASED
    assert item_of(assignment.sample_id).reviews_done == 0
    assert save(assignment, third, **OWN).completed
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.SUBMITTED and assignment.finished_at is not None
    assert assignment.flag == ""
    item = item_of(assignment.sample_id)
    assert (item.reviews_done, item.open, item.holding) == (1, False, 1)
    # A later correction is a new version; it does not count the review again.
    later = save(assignment, third, base_version=1, decision=Decision.ACCEPTED)
    assert (later.revision.version, later.completed) == (2, False)
    assert item_of(assignment.sample_id).reviews_done == 1
    assert_holding_consistent(project)


def test_turns_awaiting_a_response_do_not_hold_back_the_submission(project, ann):
    assignment = claimed(project, ann, turns=2, awaiting=True)
    (turn,) = answered_turns(assignment)
    assert turn.index == 0
    assert save(assignment, turn, decision=Decision.ACCEPTED).completed


def test_a_sample_stays_open_until_it_has_the_reviews_required(project):
    configure(project, reviews_required=2)
    ann, bob = make_reviewers(project, "ann", "bob")
    first = claimed(project, ann)
    second = claim_one(project, bob)
    assert second.sample_id == first.sample_id
    (turn,) = answered_turns(first)
    assert save(first, turn, decision=Decision.ACCEPTED).completed
    item = item_of(first.sample_id)
    assert (item.reviews_done, item.open) == (1, True)
    assert save(second, turn, **OWN).completed
    item = item_of(first.sample_id)
    assert (item.reviews_done, item.open, item.holding) == (2, False, 2)
    # Each review keeps its own chain.
    assert sorted(Revision.objects.values_list("assignment_id", "version")) == sorted([(first.pk, 1), (second.pk, 1)])


# --- who may save --------------------------------------------------------------------------


def test_only_the_reviewer_or_a_project_admin_may_save(project, ann, admin_user):
    bob, rex = make_reviewers(project, "bob", "rex")
    rex.memberships.update(role=Role.RESEARCHER)
    assignment = claimed(project, ann, turns=2)
    first, second = answered_turns(assignment)
    for intruder in (bob, rex):
        with pytest.raises(NotAllowed):
            save(assignment, first, author=intruder, **OWN)
        with pytest.raises(NotAllowed):
            working_copy_save(assignment=assignment, turn=first, user=intruder, fields=OWN, base_version=0)
    assert not Revision.objects.exists() and not WorkingCopy.objects.exists()
    revision = save(assignment, first, author=admin_user, **OWN).revision
    assert (revision.author_id, revision.assignment_id) == (admin_user.pk, assignment.pk)
    assert working_copy_save(assignment=assignment, turn=second, user=admin_user, fields=OWN, base_version=0)


def test_no_save_on_a_review_that_was_let_go(project, ann, admin_user):
    assignment = claimed(project, ann)
    lease_end(assignment=assignment, user=ann, state=Assignment.State.SKIPPED)
    (turn,) = answered_turns(assignment)
    for author in (ann, admin_user):
        with pytest.raises(NotAllowed):
            save(assignment, turn, author=author, **OWN)
    assert not Revision.objects.exists()


# --- working copies ------------------------------------------------------------------------


def test_a_working_copy_is_one_row_per_turn_until_a_save_removes_it(project, ann):
    assignment = claimed(project, ann, turns=2)
    first, second = answered_turns(assignment)
    working_copy_save(assignment=assignment, turn=first, user=ann, fields={"critique": "It mis"}, base_version=0)
    copy = working_copy_save(
        assignment=assignment,
        turn=first,
        user=ann,
        fields={"critique": "It misses the colour.", "scores": {"honesty": 2}, "stray": "dropped"},
        base_version=0,
    )
    working_copy_save(assignment=assignment, turn=second, user=ann, fields={"reason": "Wrong"}, base_version=0)
    stored = WorkingCopy.objects.get(assignment=assignment, turn=first)
    assert stored.pk == copy.pk
    assert stored.fields == {"critique": "It misses the colour.", "scores": {"honesty": 2}}
    assert WorkingCopy.objects.count() == 2
    save(assignment, first, **OWN)
    assert list(WorkingCopy.objects.values_list("turn_id", flat=True)) == [second.pk]


@pytest.mark.parametrize(
    ("fields", "field"), [({"scores": [1, 2]}, "scores"), ({"critique": 5}, "critique"), ({"reason": None}, "reason")]
)
def test_a_working_copy_checks_the_shape_of_its_fields(project, ann, fields, field):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    with pytest.raises(InvalidInput) as excinfo:
        working_copy_save(assignment=assignment, turn=turn, user=ann, fields=fields, base_version=0)
    assert_error_on(field, excinfo)
    assert not WorkingCopy.objects.exists()


def test_a_working_copy_follows_the_reviewer_to_a_new_lease_of_the_sample(project, ann):
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    working_copy_save(assignment=assignment, turn=turn, user=ann, fields={"critique": "Half"}, base_version=0)
    lease_end(assignment=assignment, user=ann, state=Assignment.State.SKIPPED)
    again = claim_one(project, ann)
    assert again.sample_id == assignment.sample_id and again.pk != assignment.pk
    assert WorkingCopy.objects.get().assignment_id == again.pk


def test_a_stale_tab_autosaving_on_a_skipped_review_does_not_block_the_next_claim(project, ann):
    first = claimed(project, ann)
    (turn,) = answered_turns(first)
    working_copy_save(assignment=first, turn=turn, user=ann, fields={"critique": "Typed first"}, base_version=0)
    lease_end(assignment=first, user=ann, state=Assignment.State.SKIPPED)
    second = claim_one(project, ann)
    assert second.sample_id == first.sample_id
    # The first tab, still open, autosaves on the skipped review; then the second is skipped too.
    working_copy_save(assignment=first, turn=turn, user=ann, fields={"critique": "Typed later"}, base_version=0)
    lease_end(assignment=second, user=ann, state=Assignment.State.SKIPPED)
    third = claim_one(project, ann)
    assert third is not None and third.sample_id == first.sample_id
    kept = WorkingCopy.objects.get(turn=turn)  # the latest typing, now on the third claim
    assert (kept.assignment_id, kept.fields["critique"]) == (third.pk, "Typed later")


# --- flags ---------------------------------------------------------------------------------


def test_a_flag_must_be_one_of_the_known_flags(project, ann):
    assignment = claimed(project, ann)
    with pytest.raises(InvalidInput) as excinfo:
        sample_flag(assignment=assignment, user=ann, flag="boring")
    assert_error_on("flag", excinfo)
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.LEASED and assignment.flag == ""


def test_flagging_submits_the_review_with_the_flag(project, ann):
    bob, *_ = make_reviewers(project, "bob")
    assignment = claimed(project, ann, turns=2)
    with pytest.raises(NotAllowed):
        sample_flag(assignment=assignment, user=bob, flag=Flag.BAD_IMAGE)
    flagged = sample_flag(assignment=assignment, user=ann, flag=Flag.BAD_IMAGE, note="  Black image.  ")
    assignment.refresh_from_db()
    assert (assignment.state, assignment.flag, assignment.flag_note) == (
        Assignment.State.SUBMITTED,
        Flag.BAD_IMAGE,
        "Black image.",
    )
    assert flagged.pk == assignment.pk
    item = item_of(assignment.sample_id)
    assert (item.reviews_done, item.open, item.holding) == (1, False, 1)
    with pytest.raises(NotAllowed):  # only once
        sample_flag(assignment=assignment, user=ann, flag=Flag.OFF_TOPIC)
    assert item_of(assignment.sample_id).reviews_done == 1
    assert_holding_consistent(project)


# --- saving after the lease ran out --------------------------------------------------------


def test_saving_on_an_expired_assignment_revives_it(project, ann):
    assignment = claimed(project, ann, turns=2)
    first, second = answered_turns(assignment)
    expire(assignment)
    assert leases_expire(project) == 1
    result = save(assignment, first, **OWN)
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.LEASED and assignment.expires_at > result.revision.created_at
    assert item_of(assignment.sample_id).holding == 1
    assert_holding_consistent(project)
    assert save(assignment, second, **OWN).completed


def test_saving_on_an_expired_assignment_taken_by_another_raises_lease_lost(project, ann):
    (bob,) = make_reviewers(project, "bob")
    assignment = claimed(project, ann)
    (turn,) = answered_turns(assignment)
    expire(assignment)
    assert claim_one(project, bob).sample_id == assignment.sample_id
    with pytest.raises(LeaseLost):
        save(assignment, turn, **OWN)
    assert not Revision.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.EXPIRED
    assert_holding_consistent(project)


def test_flagging_an_expired_assignment_revives_and_submits_it(project, ann):
    assignment = claimed(project, ann)
    expire(assignment)
    assert leases_expire(project) == 1
    sample_flag(assignment=assignment, user=ann, flag=Flag.UNANSWERABLE)
    assignment.refresh_from_db()
    assert (assignment.state, assignment.flag) == (Assignment.State.SUBMITTED, Flag.UNANSWERABLE)
    item = item_of(assignment.sample_id)
    assert (item.reviews_done, item.holding, item.open) == (1, 1, False)
    assert_holding_consistent(project)
