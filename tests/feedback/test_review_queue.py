"""The review queue: claims with leases, skips, releases, expiry, renewal and the order settings,
checked on the rows the services leave behind."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback.models import Project, ReviewOrder
from feedback.review.claims import (
    LeaseLost,
    NotAllowed,
    lease_duration,
    lease_end,
    lease_renew,
    leases_expire,
    queue_sync,
    sample_claim,
)
from feedback.review.models import Assignment, QueueChange, QueueItem, QueueState
from feedback.review.revisions import sample_flag
from tests.factories import DraftFactory
from tests.feedback.review_helpers import (
    assert_holding_consistent,
    configure,
    decide_all,
    expire,
    item_of,
    make_drafted_samples,
    make_reviewers,
    submitted_per_sample,
)

pytestmark = pytest.mark.django_db


def claim(project: Project, reviewer: User) -> Assignment | None:
    return sample_claim(project=project, reviewer=reviewer)


def claimed(project: Project, reviewer: User) -> Assignment:
    """A claim the test expects to give a sample."""
    assignment = claim(project, reviewer)
    assert assignment is not None, f"{reviewer} got no sample"
    return assignment


def review_order(project: Project, reviewer) -> list[int]:
    """The samples ``reviewer`` is given, in order, when they accept each one until none is left."""
    order = []
    while (assignment := claim(project, reviewer)) is not None:
        assert assignment.sample_id not in order, f"sample {assignment.sample_id} given twice"
        order.append(assignment.sample_id)
        assert decide_all(assignment)[-1].completed
    return order


def queue_order(project: Project) -> list[int]:
    """The open samples in the order of their sort keys, after bringing the queue up to date."""
    queue_sync(project)
    return list(
        QueueItem.objects.filter(project=project, open=True)
        .order_by("sort_key", "sample_id")
        .values_list("sample_id", flat=True)
    )


def need_postgresql(what: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip(f"{what} is tested on PostgreSQL only (SQLite serialises every writer)")


@contextmanager
def committed_later(make: Callable[[], list]) -> Iterator[list]:
    """Runs ``make`` on another connection and keeps its transaction open for the block: the rows
    it made have their ids (yielded) but become visible only after rows made inside the block."""
    made: list = []
    errors: list[BaseException] = []
    inserted, release = threading.Event(), threading.Event()

    def run() -> None:
        try:
            with transaction.atomic():
                made.extend(make())
                inserted.set()
                release.wait(30)
        except BaseException as exc:
            errors.append(exc)
            inserted.set()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert inserted.wait(30), "the other transaction never got going"
    try:
        yield made
    finally:
        release.set()
        thread.join(30)
    assert not errors, errors


# --- claiming ------------------------------------------------------------------------------


def test_a_claim_gives_the_first_sample_in_import_order_with_a_lease(project):
    samples = make_drafted_samples(project, 3)
    (ann,) = make_reviewers(project, "ann")
    before = timezone.now()
    assignment = claimed(project, ann)
    assert assignment.sample_id == samples[0].pk
    assert (assignment.state, assignment.lane, assignment.reviewer_id) == (Assignment.State.LEASED, 1, ann.pk)
    assert assignment.expires_at >= before + lease_duration()
    assert QueueItem.objects.filter(project=project).count() == 3
    assert item_of(samples[0].pk).holding == 1
    assert_holding_consistent(project)


def test_a_second_claim_returns_the_current_lease(project):
    make_drafted_samples(project, 3)
    (ann,) = make_reviewers(project, "ann")
    first = claimed(project, ann)
    again = claimed(project, ann)
    assert again.pk == first.pk
    assert Assignment.objects.filter(reviewer=ann).count() == 1
    assert item_of(first.sample_id).holding == 1


def test_two_reviewers_get_different_samples(project):
    samples = make_drafted_samples(project, 3)
    ann, bob = make_reviewers(project, "ann", "bob")
    assert claimed(project, ann).sample_id == samples[0].pk
    assert claimed(project, bob).sample_id == samples[1].pk
    assert_holding_consistent(project)


def test_with_two_reviews_required_two_reviewers_share_a_sample_in_two_lanes(project):
    configure(project, reviews_required=2)
    samples = make_drafted_samples(project, 2)
    ann, bob, cat = make_reviewers(project, "ann", "bob", "cat")
    first, second = claimed(project, ann), claimed(project, bob)
    assert (first.sample_id, first.lane) == (samples[0].pk, 1)
    assert (second.sample_id, second.lane) == (samples[0].pk, 2)
    third = claimed(project, cat)
    assert third.sample_id == samples[1].pk  # both places of the first sample are taken
    assert item_of(samples[0].pk).holding == 2
    assert_holding_consistent(project)


def test_a_reviewer_never_gets_a_sample_they_submitted(project):
    configure(project, reviews_required=2)
    samples = make_drafted_samples(project, 2)
    (ann,) = make_reviewers(project, "ann")
    assert review_order(project, ann) == [s.pk for s in samples]
    # Both samples still need a second review, but not from ann.
    assert claim(project, ann) is None
    assert all(item_of(s.pk).open and item_of(s.pk).reviews_done == 1 for s in samples)
    assert_holding_consistent(project)


def test_samples_without_a_response_are_never_claimed(project):
    make_drafted_samples(project, 2, awaiting=True, prefix="bare")
    answered = make_drafted_samples(project, 1, turns=2, awaiting=True, prefix="half")
    (ann,) = make_reviewers(project, "ann")
    # The two bare prompts come first in import order, yet only the half-answered sample is given.
    assert review_order(project, ann) == [answered[0].pk]
    assert not Assignment.objects.exclude(sample=answered[0]).exists()


def test_undrafted_samples_are_claimed_too(project):
    samples = make_drafted_samples(project, 2, drafted=False)
    (ann,) = make_reviewers(project, "ann")
    assert claimed(project, ann).sample_id == samples[0].pk


# --- skip, release, expiry -----------------------------------------------------------------


def test_a_skipped_sample_goes_to_the_back_of_the_reviewers_queue(project):
    samples = make_drafted_samples(project, 3)
    (ann,) = make_reviewers(project, "ann")
    skipped = lease_end(assignment=claimed(project, ann), user=ann, state=Assignment.State.SKIPPED)
    assert skipped.state == Assignment.State.SKIPPED and skipped.finished_at is not None
    assert skipped.released_by is None
    assert item_of(samples[0].pk).holding == 0
    assert review_order(project, ann) == [samples[1].pk, samples[2].pk, samples[0].pk]
    assert submitted_per_sample(project) == {s.pk: 1 for s in samples}
    assert_holding_consistent(project)


def test_a_skipped_sample_goes_to_another_reviewer_at_once(project):
    samples = make_drafted_samples(project, 3)
    ann, bob = make_reviewers(project, "ann", "bob")
    lease_end(assignment=claimed(project, ann), user=ann, state=Assignment.State.SKIPPED)
    assert claimed(project, bob).sample_id == samples[0].pk
    assert claimed(project, ann).sample_id == samples[1].pk
    assert_holding_consistent(project)


def test_skipping_twice_keeps_the_oldest_skip_first(project):
    samples = make_drafted_samples(project, 3)
    (ann,) = make_reviewers(project, "ann")
    lease_end(assignment=claimed(project, ann), user=ann, state=Assignment.State.SKIPPED)
    lease_end(assignment=claimed(project, ann), user=ann, state=Assignment.State.SKIPPED)
    assert review_order(project, ann) == [samples[2].pk, samples[0].pk, samples[1].pk]


def test_an_admin_release_returns_the_sample_to_the_queue(project, admin_user):
    samples = make_drafted_samples(project, 2)
    ann, bob = make_reviewers(project, "ann", "bob")
    leased = claimed(project, ann)
    with pytest.raises(NotAllowed):
        lease_end(assignment=leased, user=bob, state=Assignment.State.RELEASED)
    released = lease_end(assignment=leased, user=admin_user, state=Assignment.State.RELEASED, by_admin=True)
    assert (released.state, released.released_by_id) == (Assignment.State.RELEASED, admin_user.pk)
    assert item_of(samples[0].pk).holding == 0
    assert claimed(project, bob).sample_id == samples[0].pk
    # For ann the released sample is at the back: she gets the other one first.
    assert claimed(project, ann).sample_id == samples[1].pk
    with pytest.raises(NotAllowed):  # only a lease can be let go
        lease_end(assignment=released, user=admin_user, state=Assignment.State.RELEASED, by_admin=True)
    with pytest.raises(ValueError):
        lease_end(assignment=claimed(project, bob), user=bob, state=Assignment.State.SUBMITTED)
    assert_holding_consistent(project)


def test_an_expired_lease_goes_to_the_next_claimer(project):
    samples = make_drafted_samples(project, 2)
    ann, bob = make_reviewers(project, "ann", "bob")
    lapsed = claimed(project, ann)
    expire(lapsed)
    taken = claimed(project, bob)
    assert taken.sample_id == samples[0].pk and taken.lane == 1
    lapsed.refresh_from_db()
    assert lapsed.state == Assignment.State.EXPIRED and lapsed.finished_at is not None
    assert item_of(samples[0].pk).holding == 1
    assert_holding_consistent(project)
    # Expiry runs once per lease: nothing left to expire, the count does not drift.
    assert leases_expire(project) == 0
    assert item_of(samples[0].pk).holding == 1


def test_a_reviewer_whose_lease_expired_gets_a_new_one(project):
    samples = make_drafted_samples(project, 2)
    (ann,) = make_reviewers(project, "ann")
    lapsed = claimed(project, ann)
    expire(lapsed)
    fresh = claimed(project, ann)
    assert fresh.pk != lapsed.pk and fresh.state == Assignment.State.LEASED
    assert fresh.sample_id == samples[1].pk  # the lapsed sample is at the back of ann's queue
    assert_holding_consistent(project)


# --- renewal -------------------------------------------------------------------------------


def test_renewing_extends_the_lease(project):
    make_drafted_samples(project, 1)
    ann, bob = make_reviewers(project, "ann", "bob")
    leased = claimed(project, ann)
    Assignment.objects.filter(pk=leased.pk).update(expires_at=timezone.now() + timedelta(seconds=5))
    before = timezone.now()
    renewed = lease_renew(assignment=leased, user=ann)
    assert renewed.expires_at >= before + lease_duration()
    leased.refresh_from_db()
    assert leased.expires_at == renewed.expires_at and leased.state == Assignment.State.LEASED
    with pytest.raises(NotAllowed):
        lease_renew(assignment=leased, user=bob)


def test_renewing_an_expired_lease_revives_it_when_its_place_is_free(project):
    samples = make_drafted_samples(project, 1)
    (ann,) = make_reviewers(project, "ann")
    lapsed = claimed(project, ann)
    expire(lapsed)
    assert leases_expire(project) == 1
    assert item_of(samples[0].pk).holding == 0
    revived = lease_renew(assignment=lapsed, user=ann)
    assert revived.pk == lapsed.pk
    lapsed.refresh_from_db()
    assert lapsed.state == Assignment.State.LEASED and lapsed.finished_at is None
    assert lapsed.expires_at > timezone.now()
    assert item_of(samples[0].pk).holding == 1
    assert_holding_consistent(project)


def test_renewing_an_expired_lease_taken_by_another_reviewer_raises_lease_lost(project):
    samples = make_drafted_samples(project, 1)
    ann, bob = make_reviewers(project, "ann", "bob")
    lapsed = claimed(project, ann)
    expire(lapsed)
    assert claimed(project, bob).sample_id == samples[0].pk
    with pytest.raises(LeaseLost):
        lease_renew(assignment=lapsed, user=ann)
    lapsed.refresh_from_db()
    assert lapsed.state == Assignment.State.EXPIRED
    assert item_of(samples[0].pk).holding == 1
    assert_holding_consistent(project)


def test_a_revived_lease_moves_to_a_free_lane_when_its_own_was_taken(project):
    configure(project, reviews_required=2)
    samples = make_drafted_samples(project, 1)
    ann, bob = make_reviewers(project, "ann", "bob")
    lapsed = claimed(project, ann)
    expire(lapsed)
    assert claimed(project, bob).lane == 1  # the lowest free lane: ann's
    revived = lease_renew(assignment=lapsed, user=ann)
    assert (revived.state, revived.lane) == (Assignment.State.LEASED, 2)
    assert item_of(samples[0].pk).holding == 2
    assert_holding_consistent(project)


# --- order ---------------------------------------------------------------------------------


def test_lowest_score_order_puts_low_drafts_first_and_undrafted_last(project):
    configure(project, review_order=ReviewOrder.LOWEST_SCORE)
    samples = make_drafted_samples(project, 5, turns=2, drafted=False)
    overall = {0: (6, 6), 1: (5, 2), 3: (4, 7), 4: (3, 3)}  # sample 2 stays undrafted
    for position, scores in overall.items():
        for turn, score in zip(samples[position].turns.order_by("index"), scores, strict=True):
            DraftFactory.create(turn=turn, overall=score)
    # A failed draft does not count, however low.
    DraftFactory.create(turn=samples[0].turns.first(), status="failed", error="timeout", critique="", overall=None)
    expected = [samples[i].pk for i in (1, 4, 3, 0, 2)]
    assert queue_order(project) == expected
    (ann,) = make_reviewers(project, "ann")
    assert review_order(project, ann) == expected


def test_lowest_score_order_follows_new_drafts(project):
    configure(project, review_order=ReviewOrder.LOWEST_SCORE)
    samples = make_drafted_samples(project, 3, overall=5)
    ann, bob = make_reviewers(project, "ann", "bob")
    assert claimed(project, ann).sample_id == samples[0].pk
    DraftFactory.create(turn=samples[2].turns.get(), overall=1)
    assert claimed(project, bob).sample_id == samples[2].pk


def test_criterion_order_puts_the_chosen_criterion_first(project):
    configure(project, review_order=ReviewOrder.CRITERION, review_criterion="honesty")
    helpful = make_drafted_samples(project, 2, criterion="helpfulness", prefix="help")
    honest = make_drafted_samples(project, 2, criterion="honesty", prefix="hon")
    general = make_drafted_samples(project, 1, criterion="", prefix="all")
    expected = [s.pk for s in (*honest, *helpful, *general)]
    assert queue_order(project) == expected
    (ann,) = make_reviewers(project, "ann")
    assert review_order(project, ann) == expected


def test_random_order_is_a_permutation_fixed_by_its_seed(project):
    samples = make_drafted_samples(project, 12)
    ids = [s.pk for s in samples]
    configure(project, review_order=ReviewOrder.RANDOM, review_seed=1)
    first = queue_order(project)
    configure(project, review_seed=2)
    second = queue_order(project)
    configure(project, review_seed=1)
    again = queue_order(project)
    assert sorted(first) == sorted(second) == ids
    assert first != second
    assert first != ids  # shuffled
    assert again == first
    (ann,) = make_reviewers(project, "ann")
    assert review_order(project, ann) == first


def test_changing_the_order_setting_recomputes_the_order(project):
    samples = make_drafted_samples(project, 3, drafted=False)
    for sample, score in zip(samples, (6, 5, 1), strict=True):
        DraftFactory.create(turn=sample.turns.get(), overall=score)
    ann, bob = make_reviewers(project, "ann", "bob")
    assert claimed(project, ann).sample_id == samples[0].pk
    configure(project, review_order=ReviewOrder.LOWEST_SCORE)
    assert claimed(project, bob).sample_id == samples[2].pk
    assert queue_order(project) == [s.pk for s in (samples[2], samples[1], samples[0])]


def test_samples_imported_after_the_first_claim_join_the_queue(project):
    first = make_drafted_samples(project, 1)
    ann, bob = make_reviewers(project, "ann", "bob")
    assert claimed(project, ann).sample_id == first[0].pk
    later = make_drafted_samples(project, 2, prefix="late")
    assert claimed(project, bob).sample_id == later[0].pk
    assert set(QueueItem.objects.filter(project=project).values_list("sample_id", flat=True)) == {
        s.pk for s in (*first, *later)
    }


def test_samples_of_another_project_stay_out_of_the_queue(project):
    other = Project.objects.create(name="Other", slug="other")
    make_drafted_samples(other, 2, prefix="o")
    mine = make_drafted_samples(project, 1)
    (ann,) = make_reviewers(project, "ann")
    assert review_order(project, ann) == [mine[0].pk]
    assert not QueueItem.objects.filter(project=project).exclude(sample__project=project).exists()


def test_raising_reviews_required_reopens_submitted_samples(project):
    samples = make_drafted_samples(project, 1)
    ann, bob = make_reviewers(project, "ann", "bob")
    assert decide_all(claimed(project, ann))[-1].completed
    item = item_of(samples[0].pk)
    assert (item.open, item.reviews_done, item.holding) == (False, 1, 1)
    assert claim(project, bob) is None
    configure(project, reviews_required=2)
    second = claimed(project, bob)
    assert (second.sample_id, second.lane) == (samples[0].pk, 2)
    assert item_of(samples[0].pk).open
    assert decide_all(second)[-1].completed
    item = item_of(samples[0].pk)
    assert (item.open, item.reviews_done, item.holding) == (False, 2, 2)
    assert_holding_consistent(project)


def test_lowering_reviews_required_closes_samples_that_have_enough(project):
    configure(project, reviews_required=2)
    samples = make_drafted_samples(project, 2)
    ann, bob = make_reviewers(project, "ann", "bob")
    assert decide_all(claimed(project, ann))[-1].completed
    assert item_of(samples[0].pk).open
    configure(project, reviews_required=1)
    assert claimed(project, bob).sample_id == samples[1].pk
    assert not item_of(samples[0].pk).open


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_share_a_place_and_finish_every_sample():
    need_postgresql("concurrent claiming")
    project = Project.objects.create(name="Busy project", slug="busy", reviews_required=2)
    samples = make_drafted_samples(project, 30, turns=2)
    reviewers = make_reviewers(project, *(f"rev{n}" for n in range(8)))
    claims: list[tuple[int, int, int, int]] = []  # (assignment, sample, lane, reviewer)
    lock = threading.Lock()

    def work(reviewer, seed: int) -> int:
        rng = random.Random(seed)
        skipped: set[int] = set()
        steps = 0
        try:
            project_here = Project.objects.get(pk=project.pk)
            while (assignment := sample_claim(project=project_here, reviewer=reviewer)) is not None:
                steps += 1
                assert steps < 200, "a reviewer kept claiming without finishing"
                with lock:
                    claims.append((assignment.pk, assignment.sample_id, assignment.lane, reviewer.pk))
                roll = rng.random()
                if assignment.sample_id not in skipped and roll < 0.25:
                    skipped.add(assignment.sample_id)
                    lease_end(assignment=assignment, user=reviewer, state=Assignment.State.SKIPPED)
                elif roll < 0.45:
                    sample_flag(assignment=assignment, user=reviewer, flag="unanswerable", note="race")
                else:
                    assert decide_all(assignment)[-1].completed
            return steps
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(reviewers)) as pool:
        futures = [pool.submit(work, reviewer, n) for n, reviewer in enumerate(reviewers)]
        steps = [future.result(timeout=300) for future in futures]

    assert sum(steps) == len(claims) >= len(samples) * 2
    # Every claim was a new lease: no assignment was handed out twice.
    assert len({c[0] for c in claims}) == len(claims)
    submitted = Assignment.objects.filter(project=project, state=Assignment.State.SUBMITTED)
    lanes = list(submitted.values_list("sample_id", "lane"))
    assert len(lanes) == len(set(lanes)), "a sample lane was submitted twice"
    assert submitted_per_sample(project) == {s.pk: 2 for s in samples}
    for sample in samples:
        item = item_of(sample.pk)
        assert (item.reviews_done, item.holding, item.open) == (2, 2, False)
        reviewers_of = submitted.filter(sample=sample).values_list("reviewer_id", flat=True)
        assert len(set(reviewers_of)) == 2
        assert set(submitted.filter(sample=sample).values_list("lane", flat=True)) == {1, 2}
    assert not Assignment.objects.filter(project=project, state=Assignment.State.LEASED).exists()
    assert_holding_consistent(project)
    assert queue_counts(project) == (len(samples), len(samples))


# --- the queue's counts of samples and reviewed samples -------------------------------------


def queue_counts(project: Project) -> tuple[int, int]:
    """The counts the triggers keep, after checking them against the queue items themselves."""
    items = QueueItem.objects.filter(project=project)
    kept = QueueState.objects.filter(project=project).values_list("items", "closed").first() or (0, 0)
    assert kept == (items.count(), items.filter(open=False).count())
    return kept


def test_the_queue_counts_follow_new_samples_reviews_order_changes_and_deletions(project):
    make_drafted_samples(project, 3)
    other = Project.objects.create(name="Other", slug="other")
    make_drafted_samples(other, 2, prefix="o")
    ann, bob = make_reviewers(project, "ann", "bob")
    first = claimed(project, ann)
    assert queue_counts(project) == (3, 0)
    assert decide_all(first)[-1].completed
    assert queue_counts(project) == (3, 1)
    lease_end(assignment=claimed(project, ann), user=ann, state=Assignment.State.SKIPPED)
    assert queue_counts(project) == (3, 1)
    sample_flag(assignment=claimed(project, bob), user=bob, flag="unanswerable")
    assert queue_counts(project) == (3, 2)
    configure(project, reviews_required=2)
    queue_sync(project)
    assert queue_counts(project) == (3, 0)
    configure(project, reviews_required=1)
    queue_sync(project)
    assert queue_counts(project) == (3, 2)
    late = make_drafted_samples(project, 2, prefix="late")
    queue_sync(project)
    assert queue_counts(project) == (5, 2)
    late[0].delete()
    assert queue_counts(project) == (4, 2)
    queue_sync(other)
    assert queue_counts(other) == (2, 0)
    assert queue_counts(project) == (4, 2)


# --- how new samples and drafts reach the queue --------------------------------------------


def test_a_sync_with_nothing_new_is_one_query_and_keeps_no_notes(project):
    make_drafted_samples(project, 3)
    assert QueueChange.objects.filter(project=project).count() == 6  # a sample and a draft each
    queue_sync(project)
    assert not QueueChange.objects.exists()
    with CaptureQueriesContext(connection) as queries:
        queue_sync(project)
    assert len(queries) == 1


def test_a_sample_deleted_before_the_sync_leaves_the_rest_of_the_queue(project):
    kept, deleted = make_drafted_samples(project, 2)
    deleted.delete()
    assert queue_order(project) == [kept.pk]
    assert not QueueChange.objects.exists()


# --- once open bugs ------------------------------------------------------------------------


def test_a_sample_skipped_after_200_others_still_comes_back(project):
    samples = make_drafted_samples(project, 201)
    ann, bob = make_reviewers(project, "ann", "bob")
    queue_sync(project)
    # ann skipped every sample, oldest first; bob then reviewed all but the last one.
    start = timezone.now() - timedelta(days=1)
    Assignment.objects.bulk_create(
        [
            Assignment(
                project=project,
                sample=sample,
                reviewer=reviewer,
                lane=1,
                state=state,
                claimed_at=start + timedelta(seconds=n),
                expires_at=start + timedelta(seconds=n + 900),
                finished_at=start + timedelta(seconds=n + 1),
            )
            for n, sample in enumerate(samples)
            for reviewer, state in ((ann, Assignment.State.SKIPPED), (bob, Assignment.State.SUBMITTED))
            if reviewer == ann or sample != samples[-1]
        ]
    )
    QueueItem.objects.filter(project=project).exclude(sample=samples[-1]).update(holding=1, reviews_done=1, open=False)
    assert_holding_consistent(project)
    again = claim(project, ann)
    assert again is not None and again.sample_id == samples[-1].pk


def test_a_claim_runs_as_many_queries_however_many_let_go_samples_it_passes(project):
    """The back of the reviewer's queue is found in one query, not by trying the samples they let
    go one by one."""
    ann, bob = make_reviewers(project, "ann", "bob")

    def queries_of_the_claim_after(target: Project, count: int) -> int:
        samples = make_drafted_samples(target, count)
        for _ in samples:  # ann skips every sample, in order
            lease_end(assignment=claimed(target, ann), user=ann, state=Assignment.State.SKIPPED)
        for _ in samples[:-1]:  # bob then reviews all but the last one
            assert decide_all(claimed(target, bob))[-1].completed
        with CaptureQueriesContext(connection) as queries:
            again = claim(target, ann)
        assert again is not None and again.sample_id == samples[-1].pk
        return len(queries)

    larger = Project.objects.create(name="Larger", slug="larger")
    assert queries_of_the_claim_after(project, 2) == queries_of_the_claim_after(larger, 20)
    assert_holding_consistent(larger)


@pytest.mark.django_db(transaction=True)
def test_a_sample_committed_after_a_newer_one_still_joins_the_queue():
    need_postgresql("a sample committed out of id order")
    project = Project.objects.create(name="Import target", slug="target")
    other = Project.objects.create(name="Other", slug="other")
    make_drafted_samples(project, 1)
    ann, bob = make_reviewers(project, "ann", "bob")
    claimed(project, ann)
    with committed_later(lambda: make_drafted_samples(project, 1, prefix="slow")) as (slow,):
        make_drafted_samples(other, 1, prefix="fast")  # a higher id, committed first
        assert claim(project, bob) is None  # the slow sample is not visible yet
    assert claimed(project, bob).sample_id == slow.pk


@pytest.mark.django_db(transaction=True)
def test_a_draft_committed_after_a_newer_one_still_reorders_the_queue():
    need_postgresql("a draft committed out of id order")
    project = Project.objects.create(name="Scored", slug="scored", review_order=ReviewOrder.LOWEST_SCORE)
    samples = make_drafted_samples(project, 3, overall=5)
    (late,) = make_drafted_samples(project, 1, drafted=False, prefix="late")
    ann, bob = make_reviewers(project, "ann", "bob")
    assert claimed(project, ann).sample_id == samples[0].pk
    with committed_later(lambda: [DraftFactory.create(turn=late.turns.get(), overall=1)]):
        DraftFactory.create(turn=samples[2].turns.get(), overall=4)  # a higher id, committed first
        assert claimed(project, bob).sample_id == samples[2].pk
    assert queue_order(project)[0] == late.pk
