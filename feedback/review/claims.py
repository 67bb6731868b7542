"""The review queue: claiming a sample with a lease, renewing, releasing, skipping and expiry.

Safety comes from the database, not from timing. A claim locks the sample's queue row
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's IMMEDIATE transactions serialise writers)
and bumps its ``holding`` count in the same transaction, so a concurrent claimer either skips
the row or re-reads the new count. Behind that, unique constraints on (sample, lane) and
(sample, reviewer) make a double claim impossible even if the locking were wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, Max, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Mod
from django.utils import timezone

from feedback.drafting.models import CallStatus, Draft
from feedback.models import Project, ReviewOrder, Sample, Turn

from ..errors import Conflict
from ..errors import NotAllowed as NotAllowedError
from .gold import gold_due, gold_pick
from .models import Assignment, QueueChange, QueueItem, QueueState, WorkingCopy

# Sample ids stay below this; the order's major key is multiplied by it.
_ID_SPAN = 1e10
# A prime above 2**32: the seeded order is a multiplicative permutation modulo it.
_RANDOM_MODULUS = 4_294_967_311
# The major key of undrafted samples in lowest-score order: above any score, so they come last.
_UNDRAFTED_SCORE = 10**5
# Ids per query when the database names no parameter limit: far below what any backend accepts.
_DEFAULT_QUERY_PARAMS = 5000


class LeaseLost(Conflict):
    """The reviewer's lease ran out and the sample's place went to someone else (409, ``lease_lost``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, lease_lost=True)


class NotAllowed(NotAllowedError):
    """The action does not fit the assignment's state or the user's role (403)."""


def lease_duration(project: Project | None = None) -> timedelta:
    """The project's lease time (its settings page), else ``ANNOTATOR_REVIEW_LEASE``."""
    seconds = project.review_lease_seconds if project is not None else None
    return timedelta(seconds=seconds or settings.REVIEW_LEASE_SECONDS)


# --- keeping the queue in step with the project -------------------------------------------


def _order_signature(project: Project) -> str:
    return f"{project.review_order}:{project.review_criterion}:{project.review_seed}:{project.reviews_required}"


def queue_sync(project: Project) -> None:
    """Takes new and newly drafted samples into the queue, and re-sorts it when the order changed.

    What is new is known from the notes (``QueueChange``) that triggers write in the transaction
    that inserts a sample or a draft, so a transaction committing out of id order is seen like
    any other. Cheap when nothing changed: one query reads the order signature and whether any
    note waits (an index lookup on an all but empty table).
    """
    signature = _order_signature(project)
    seen = (
        QueueState.objects.filter(project=project)
        .annotate(waiting=Exists(QueueChange.objects.filter(project=project)))
        .values_list("order_signature", "waiting")
        .first()
    )
    if seen == (signature, False):
        return
    with transaction.atomic():
        state, _ = QueueState.objects.select_for_update().get_or_create(project=project)
        # Read under the state's lock; only the notes read are deleted, so a note committed
        # meanwhile stays for the next sync.
        notes = list(QueueChange.objects.filter(project=project).values_list("id", "sample_id"))
        changed = sorted({sample_id for _, sample_id in notes})
        added = _add_samples(project, changed)
        items = QueueItem.objects.filter(project=project)
        if signature != state.order_signature:
            _set_sort_keys(project, items)
            _reopen(project, items)
        else:
            # A draft moves its sample only in the lowest-score order; new samples need keys in any.
            resort = changed if project.review_order == ReviewOrder.LOWEST_SCORE else added
            for ids in _chunks(resort):
                _set_sort_keys(project, items.filter(sample_id__in=ids))
        for ids in _chunks([note_id for note_id, _ in notes]):
            QueueChange.objects.filter(id__in=ids).delete()
        state.order_signature = signature
        state.synced_at = timezone.now()
        # Not the counts: the triggers changed them since the row was read.
        state.save(update_fields=["order_signature", "synced_at"])


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    """``ids`` in lists short enough for one query's parameters."""
    size = connection.features.max_query_params or _DEFAULT_QUERY_PARAMS
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _add_samples(project: Project, sample_ids: list[int]) -> list[int]:
    """Gives each of ``sample_ids`` that has none a queue item; returns the samples added."""
    added: list[int] = []
    for ids in _chunks(sample_ids):
        missing = list(
            Sample.objects.filter(project=project, id__in=ids)
            .exclude(Exists(QueueItem.objects.filter(sample=OuterRef("pk"))))
            .values_list("id", flat=True)
        )
        QueueItem.objects.bulk_create(
            [QueueItem(project=project, sample_id=sample_id) for sample_id in missing], ignore_conflicts=True
        )
        added.extend(missing)
    return added


def _set_sort_keys(project: Project, items) -> None:
    order = project.review_order
    if order == ReviewOrder.CRITERION:
        first = items.filter(sample__target_criterion=project.review_criterion)
        first.update(sort_key=F("sample_id"))
        items.exclude(sample__target_criterion=project.review_criterion).update(sort_key=F("sample_id") + _ID_SPAN)
    elif order == ReviewOrder.LOWEST_SCORE:
        lowest = (
            Draft.objects.filter(turn__sample_id=OuterRef("sample_id"))
            .exclude(status=CallStatus.FAILED)
            .order_by()
            .values("turn__sample_id")
            .annotate(low=Min("overall"))
            .values("low")
        )
        # Samples without a draft come after every drafted one.
        items.update(sort_key=Coalesce(Subquery(lowest), Value(_UNDRAFTED_SCORE)) * _ID_SPAN + F("sample_id"))
    elif order == ReviewOrder.RANDOM:
        multiplier = _random_multiplier(project.review_seed)
        items.update(sort_key=Mod(F("sample_id") * multiplier + abs(project.review_seed), _RANDOM_MODULUS))
    else:
        items.update(sort_key=F("sample_id"))


def _random_multiplier(seed: int) -> int:
    """A multiplier in [1, modulus) drawn from the seed: each seed gives its own permutation."""
    digest = hashlib.sha256(str(seed).encode()).digest()
    return 1 + int.from_bytes(digest[:4], "big") % (_RANDOM_MODULUS - 1)


def _reopen(project: Project, items) -> None:
    """A changed number of required reviews opens or closes samples accordingly."""
    needed = project.reviews_required
    items.filter(reviews_done__lt=needed, open=False).update(open=True)
    items.filter(reviews_done__gte=needed, open=True).update(open=False)


# --- leases ------------------------------------------------------------------------------


def leases_expire(project: Project) -> int:
    """Returns expired leases to the queue. Cheap when none ran out (a partial index)."""
    now = timezone.now()
    expired = 0
    with transaction.atomic():
        stale = list(
            Assignment.objects.select_for_update(skip_locked=True)
            .filter(project=project, state=Assignment.State.LEASED, expires_at__lt=now)
            .values_list("id", "sample_id", "gold")
        )
        for assignment_id, sample_id, gold in stale:
            Assignment.objects.filter(pk=assignment_id).update(state=Assignment.State.EXPIRED, finished_at=now)
            if not gold:  # a gold check holds none of the sample's places
                QueueItem.objects.filter(sample_id=sample_id).update(holding=F("holding") - 1)
            expired += 1
    return expired


def sample_claim(*, project: Project, reviewer) -> Assignment | None:
    """The reviewer's current lease in the project, or a new one on the next sample; None when
    nothing is left for them."""
    queue_sync(project)
    leases_expire(project)
    current = (
        Assignment.objects.filter(project=project, reviewer=reviewer, state=Assignment.State.LEASED)
        .order_by("claimed_at")
        .first()
    )
    if current is not None:
        return current
    if gold_due(project, reviewer):
        check = _gold_lease(project, reviewer)
        if check is not None:
            return check
    for _attempt in range(5):
        try:
            with transaction.atomic():
                item = _next_fresh(project, reviewer)
                fresh = item is not None
                item = item or _next_skipped(project, reviewer)
                if item is None:
                    return None
                return _lease(project, item, reviewer, fresh=fresh)
        except IntegrityError:
            continue  # another claimer won this sample between our read and our write: go on
    return None


def _claimable(project: Project):
    answered = Turn.objects.filter(sample=OuterRef("sample_id"), model_response__isnull=False)
    return (
        QueueItem.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(project=project, open=True, holding__lt=project.reviews_required)
        .filter(Exists(answered))
    )


def _next_fresh(project: Project, reviewer) -> QueueItem | None:
    touched = Assignment.objects.filter(sample=OuterRef("sample_id"), reviewer=reviewer)
    return _claimable(project).filter(~Exists(touched)).order_by("sort_key", "sample_id").first()


def _next_skipped(project: Project, reviewer) -> QueueItem | None:
    """The back of the reviewer's queue: samples they skipped (or let go), oldest first.

    One query however many samples the reviewer let go: it starts from the reviewer's let-go
    assignments (an index on project, reviewer and state), not from the project's queue.
    """
    mine = Assignment.objects.filter(project=project, reviewer=reviewer)
    let_go = mine.filter(state__in=_LET_GO)
    last_let_go = (
        let_go.filter(sample=OuterRef("sample_id"))
        .order_by()
        .values("sample_id")
        .annotate(last=Max("finished_at"))
        .values("last")
    )
    return (
        _claimable(project)
        .filter(sample_id__in=let_go.values("sample_id"))
        .exclude(Exists(mine.filter(sample=OuterRef("sample_id"), state__in=Assignment.HOLDING)))
        .annotate(let_go_at=Subquery(last_let_go))
        .order_by(F("let_go_at").asc(nulls_first=True), "sample_id")
        .first()
    )


def _lease(project: Project, item: QueueItem, reviewer, *, fresh: bool = False) -> Assignment:
    """``fresh``: the item came from ``_next_fresh``, so the reviewer never had the sample and no
    earlier typing of theirs can follow (their assignments to it come only from leases, which
    wait for the item locked here)."""
    taken = set(
        Assignment.objects.filter(sample_id=item.sample_id, state__in=Assignment.HOLDING).values_list("lane", flat=True)
    )
    lane = next(n for n in range(1, project.reviews_required + len(taken) + 1) if n not in taken)
    now = timezone.now()
    assignment = Assignment.objects.create(
        project=project,
        sample_id=item.sample_id,
        reviewer=reviewer,
        lane=lane,
        claimed_at=now,
        expires_at=now + lease_duration(project),
    )
    QueueItem.objects.filter(pk=item.pk).update(holding=F("holding") + 1)
    if not fresh:
        _working_copies_follow(assignment)
    return assignment


def _working_copies_follow(assignment: Assignment) -> None:
    """Typing kept from the reviewer's earlier, unfinished turns at this sample moves to the new
    assignment: per sample turn the latest autosave, since a working copy is one per assignment
    and turn. Older ones (a stale tab may autosave on an assignment already let go, next to the
    copy that had moved on) are superseded typing of the same turn and are dropped."""
    kept = WorkingCopy.objects.filter(
        assignment__sample_id=assignment.sample_id,
        assignment__reviewer_id=assignment.reviewer_id,
        assignment__state__in=_LET_GO,
    )
    newer = kept.filter(turn=OuterRef("turn")).filter(
        Q(updated_at__gt=OuterRef("updated_at")) | Q(updated_at=OuterRef("updated_at"), pk__gt=OuterRef("pk"))
    )
    kept.filter(Exists(newer)).delete()
    kept.update(assignment=assignment)


_LET_GO = (Assignment.State.SKIPPED, Assignment.State.RELEASED, Assignment.State.EXPIRED)


def lease_renew(*, assignment: Assignment, user) -> Assignment:
    """Extends the lease while the page is open; revives a lapsed one if its place is still free."""
    if assignment.reviewer_id != user.pk:
        raise NotAllowed("Only the reviewer holding this sample can renew its lease.")
    with transaction.atomic():
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if locked.state == Assignment.State.LEASED:
            locked.expires_at = timezone.now() + lease_duration(assignment.project)
            locked.save(update_fields=["expires_at"])
            return locked
        if locked.state == Assignment.State.EXPIRED:
            return lease_revive(locked)
        return locked


def lease_revive(assignment: Assignment) -> Assignment:
    project = assignment.project
    if assignment.gold:
        return _gold_revive(assignment)
    item = QueueItem.objects.select_for_update().get(sample_id=assignment.sample_id)
    others = Assignment.objects.filter(sample_id=assignment.sample_id, state__in=Assignment.HOLDING)
    if item.holding >= project.reviews_required or others.filter(reviewer_id=assignment.reviewer_id).exists():
        raise LeaseLost("Your lease on this sample ran out and another reviewer took it. Your text is kept.")
    taken = set(others.values_list("lane", flat=True))
    if assignment.lane in taken:
        assignment.lane = next(n for n in range(1, project.reviews_required + 1) if n not in taken)
    now = timezone.now()
    assignment.state = Assignment.State.LEASED
    assignment.expires_at = now + lease_duration(project)
    assignment.finished_at = None
    try:
        with transaction.atomic():
            assignment.save(update_fields=["state", "lane", "expires_at", "finished_at"])
    except IntegrityError:
        raise LeaseLost("Your lease on this sample ran out and another reviewer took it. Your text is kept.") from None
    QueueItem.objects.filter(pk=item.pk).update(holding=F("holding") + 1)
    return assignment


def _gold_lease(project: Project, reviewer) -> Assignment | None:
    """A lease on a gold sample the reviewer never had, in a lane like any other review's: the check
    looks like a sample of the queue. None when no gold is left for them."""
    sample_id = gold_pick(project, reviewer)
    if sample_id is None:
        return None
    digest = hashlib.sha256(f"{project.pk}:{reviewer.pk}:{sample_id}".encode()).digest()
    now = timezone.now()
    try:
        with transaction.atomic():
            return Assignment.objects.create(
                project=project,
                sample_id=sample_id,
                reviewer=reviewer,
                lane=1 + digest[0] % project.reviews_required,
                gold=True,
                claimed_at=now,
                expires_at=now + lease_duration(project),
            )
    except IntegrityError:
        return None  # the same reviewer's concurrent claim took it


def _gold_revive(assignment: Assignment) -> Assignment:
    """A lapsed gold check is the reviewer's alone (no place of the sample is at stake): it comes back."""
    assignment.state = Assignment.State.LEASED
    assignment.expires_at = timezone.now() + lease_duration(assignment.project)
    assignment.finished_at = None
    assignment.save(update_fields=["state", "expires_at", "finished_at"])
    return assignment


def lease_end(*, assignment: Assignment, user, state: str, by_admin: bool = False) -> Assignment:
    """Skip (back of the reviewer's queue) or release (back to the queue, e.g. by an admin)."""
    if state not in (Assignment.State.SKIPPED, Assignment.State.RELEASED):
        raise ValueError(state)
    if assignment.reviewer_id != user.pk and not by_admin:
        raise NotAllowed("Only the reviewer or an admin can let this sample go.")
    with transaction.atomic():
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if locked.state != Assignment.State.LEASED:
            raise NotAllowed(f"This sample is not leased any more ({locked.get_state_display().lower()}).")
        locked.state = state
        locked.finished_at = timezone.now()
        locked.released_by = user if locked.reviewer_id != user.pk else None
        locked.save(update_fields=["state", "finished_at", "released_by"])
        if not locked.gold:
            QueueItem.objects.filter(sample_id=locked.sample_id).update(holding=F("holding") - 1)
    return locked


def assignment_submit(assignment: Assignment, *, flag: str = "", note: str = "") -> Assignment:
    """Counts the review as done; called with the assignment locked, inside a transaction.

    The queue state's row is locked before the sample's queue item: closing the item makes a
    trigger count it there, and ``queue_sync`` takes the two in that order too. A gold check counts
    toward none of the sample's reviews.
    """
    if assignment.gold:
        assignment.state = Assignment.State.SUBMITTED
        assignment.flag = flag
        assignment.flag_note = note
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["state", "flag", "flag_note", "finished_at"])
        return assignment
    list(QueueState.objects.select_for_update().filter(project_id=assignment.project_id).values_list("pk"))
    assignment.state = Assignment.State.SUBMITTED
    assignment.flag = flag
    assignment.flag_note = note
    assignment.finished_at = timezone.now()
    assignment.save(update_fields=["state", "flag", "flag_note", "finished_at"])
    needed = assignment.project.reviews_required
    QueueItem.objects.filter(sample_id=assignment.sample_id).update(
        reviews_done=F("reviews_done") + 1,
        open=ExpressionWrapper(Q(reviews_done__lt=needed - 1), output_field=BooleanField()),
    )
    return assignment
