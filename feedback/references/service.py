"""Images by reference: registered by an import at once, fetched later by a worker.

``ReferenceRegistrar`` is the import's side: for every image of a chunk still without a file it
records the image's reference (pending; or failed at once, with the reason, when the reference is
not allowed) in the chunk's transaction and, once the chunk commits, sends one message for it: a
worker then queues the fetch tasks, a few references each. ``reference_fetch`` is the worker's
side (the ``default`` queue): it claims the reference (one attempt wins; a duplicate message does
nothing), fetches the bytes, checks and
stores them as any imported file (``feedback.images.apply_file``: Pillow's checks, sha256 name)
and records the image's dimensions. A transient failure is retried with backoff up to
``IMAGE_FETCH_MAX_ATTEMPTS``; any other failure ends the reference with its reason, which the
import's report and the sample's pages show. Nothing else of the import depends on a fetch.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .. import attempts
from ..errors import InvalidInput
from ..images import ImageRefused, apply_file
from ..models import Image, ImportBatch
from ..sending import IMAGE_FETCH, IMAGE_FETCH_DISPATCH, send, send_each
from .fetch import FetchFailed, fetch
from .models import ImageReference
from .refs import RefRefused, check_base, join_reference, parse_reference

log = logging.getLogger(__name__)
State = ImageReference.State
MAX_LISTED_FAILURES = 200
# Pending references the sweep sends again in one round, at most.
RESEND_PER_SWEEP = 5000
# References per fetch task: a message costs the sender about as much as a small fetch costs a
# worker, so a 118,287-image import queues 14,786 messages, not one per image.
FETCH_GROUP = 8


def send_fetches(pks: list[int]) -> None:
    """Queues fetch tasks for these references, FETCH_GROUP to a task, after the commit."""
    send_each(IMAGE_FETCH, ((pks[i : i + FETCH_GROUP],) for i in range(0, len(pks), FETCH_GROUP)))


def images_base_checked(base: str) -> str:
    """An import's images base (``--images-base``), refused naming the option when not allowed."""
    base = base.strip()
    if not base:
        return ""
    try:
        check_base(base)
    except RefRefused as exc:
        raise InvalidInput("images_base", str(exc)) from None
    return base


class ReferenceRegistrar:
    """Registers the references of one import's images, a chunk at a time (inside its transaction)."""

    def __init__(self, batch: ImportBatch, base: str, warn) -> None:
        self.batch = batch
        self.base = base
        self.warn = warn
        self.registered = 0

    def uri_for(self, image: Image, explicit: str) -> str:
        if explicit:
            return explicit
        return join_reference(self.base, image.file_name) if self.base else ""

    def register(self, items: list[tuple[int, Image, str]]) -> None:
        """``items``: (line, image without a file, the record's own reference or "")."""
        wanted: dict[int, tuple[int, str]] = {}
        for line, image, explicit in items:
            uri = self.uri_for(image, explicit)
            if uri and image.pk is not None and image.is_missing and image.pk not in wanted:
                wanted[image.pk] = (line, uri)
        if not wanted:
            return
        now = timezone.now()
        existing = {r.image_id: r for r in ImageReference.objects.filter(image_id__in=list(wanted))}
        new, again = [], []
        for image_id, (line, uri) in wanted.items():
            state, reason = State.PENDING, ""
            try:
                parse_reference(uri)
            except RefRefused as exc:
                state, reason = State.FAILED, str(exc)
            ref = existing.get(image_id)
            if ref is None:
                ref = ImageReference(image_id=image_id, uri=uri)
                new.append(ref)
            elif ref.state in (State.PENDING, State.FETCHING, State.FETCHED) and ref.uri == uri:
                continue  # on its way already (or fetched: the file is there)
            else:
                again.append(ref)  # failed before, or named differently now: this import tries it anew
            ref.uri, ref.state, ref.reason = uri, state, reason
            ref.attempts, ref.attempt, ref.next_attempt_at = 0, "", None
            ref.import_batch, ref.import_line, ref.heartbeat_at = self.batch, line, now
            if state == State.FAILED:
                self.warn(
                    line,
                    "image",
                    f"image reference {uri[:300]} refused: {reason}; the sample is kept, its image missing",
                )
        ImageReference.objects.bulk_create(new, ignore_conflicts=True)
        ImageReference.objects.bulk_update(
            again,
            [
                "uri",
                "state",
                "reason",
                "attempts",
                "attempt",
                "next_attempt_at",
                "import_batch",
                "import_line",
                "heartbeat_at",
            ],
        )
        pending = list(
            ImageReference.objects.filter(
                image_id__in=list(wanted), state=State.PENDING, import_batch=self.batch, heartbeat_at=now
            ).values_list("pk", flat=True)
        )
        self.registered += len(new) + len(again)
        if pending:
            # One message for the chunk: a worker queues its fetch tasks (a message costs the sender
            # milliseconds; 118,287 images would spend minutes of the import on them).
            send(IMAGE_FETCH_DISPATCH, pending)


# --------------------------------------------------------------------------------------------
# The worker's side


def backoff(attempt: int) -> float:
    delay = min(settings.IMAGE_FETCH_BACKOFF_MAX, settings.IMAGE_FETCH_BACKOFF_BASE * 2 ** max(0, attempt - 1))
    return delay * random.uniform(0.5, 1.0)


def reference_claim(reference_id: int) -> tuple[ImageReference, str] | None:
    token, now = attempts.new_token(), timezone.now()
    claimed = (
        ImageReference.objects.filter(pk=reference_id, state=State.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(state=State.FETCHING, attempt=token, heartbeat_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return ImageReference.objects.select_related("image").get(pk=reference_id), token


def reference_fetch(*, reference_id: int) -> str | None:
    """Fetches one reference; returns its state afterwards (None: not ours to fetch)."""
    claim = reference_claim(reference_id)
    if claim is None:
        return None
    ref, token = claim
    mine = ImageReference.objects.filter(pk=ref.pk, attempt=token, state=State.FETCHING)
    image = ref.image
    if not image.is_missing:  # a file came another way meanwhile
        mine.update(state=State.FETCHED, reason="", fetched_at=timezone.now(), attempt="")
        return State.FETCHED
    try:
        data = fetch(parse_reference(ref.uri))
        apply_file(image, data)  # Pillow's checks, stored under its sha256
    except (RefRefused, ImageRefused) as exc:
        return _fail(mine, str(exc))
    except FetchFailed as exc:
        if not exc.transient:
            return _fail(mine, exc.message)
        if ref.attempts >= settings.IMAGE_FETCH_MAX_ATTEMPTS:
            return _fail(mine, f"{exc.message}; gave up after {ref.attempts} attempts")
        delay = backoff(ref.attempts)
        now = timezone.now()
        if mine.update(
            state=State.PENDING,
            reason=f"{exc.message}; attempt {ref.attempts} of {settings.IMAGE_FETCH_MAX_ATTEMPTS}, retrying",
            attempt="",
            heartbeat_at=now,
            next_attempt_at=now + timedelta(seconds=delay),
        ):
            send(IMAGE_FETCH, [ref.pk], countdown=delay)
        return State.PENDING
    with transaction.atomic():
        if not mine.update(state=State.FETCHED, reason="", fetched_at=timezone.now(), attempt=""):
            return None  # the sweep gave it to another attempt meanwhile; that one records it
        Image.objects.filter(pk=image.pk, file="").update(
            file=image.file.name,
            sha256=image.sha256,
            width=image.width,
            height=image.height,
            format=image.format,
            byte_size=image.byte_size,
            updated_at=timezone.now(),
        )
    return State.FETCHED


def _fail(mine, reason: str) -> str:
    mine.update(state=State.FAILED, reason=reason[:2000], attempt="", next_attempt_at=None)
    return State.FAILED


def lease() -> timedelta:
    """How long a fetch may hold its reference: its whole-body deadline and then some."""
    return timedelta(seconds=max(settings.WORK_LEASE, settings.IMAGE_FETCH_TOTAL_TIMEOUT + 60))


def image_references_recover(now: datetime) -> dict[str, int]:
    """The sweep's part: a fetch whose worker was lost goes back to pending and is sent again; a
    pending reference sent long ago (its message lost) is sent again, a bounded number per round
    (a duplicate is refused by the claim)."""
    done = {"fetches_requeued": 0, "fetches_resent": 0}
    stuck = ImageReference.objects.filter(state=State.FETCHING, heartbeat_at__lt=now - lease())
    for pk, token in stuck.values_list("pk", "attempt")[:RESEND_PER_SWEEP]:
        if ImageReference.objects.filter(pk=pk, state=State.FETCHING, attempt=token).update(
            state=State.PENDING, attempt="", heartbeat_at=now, next_attempt_at=None
        ):
            send(IMAGE_FETCH, [pk])
            done["fetches_requeued"] += 1
    resend_after = timedelta(seconds=settings.IMAGE_FETCH_RESEND_AFTER)
    late = (
        ImageReference.objects.filter(state=State.PENDING, heartbeat_at__lt=now - resend_after)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - resend_after))
        .order_by("heartbeat_at")
        .values_list("pk", flat=True)[:RESEND_PER_SWEEP]
    )
    pks = list(late)
    if pks:
        ImageReference.objects.filter(pk__in=pks, state=State.PENDING).update(heartbeat_at=now)
        send_fetches(pks)
        done["fetches_resent"] = len(pks)
    return done


# --------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class ReferenceReport:
    total: int
    pending: int
    fetched: int
    failed: int
    failures: list[dict[str, object]]

    @property
    def done(self) -> bool:
        return self.pending == 0


def batch_references(batch: ImportBatch) -> ReferenceReport:
    """What became of the references an import registered: counts, and the failures with reasons."""
    return batches_references([batch.pk])[batch.pk]


def batches_references(batch_ids: list[int]) -> dict[int, ReferenceReport]:
    """The same for several imports, in two queries whatever their number."""
    counts = {
        row["import_batch"]: row
        for row in ImageReference.objects.filter(import_batch__in=batch_ids)
        .values("import_batch")
        .annotate(
            total=Count("id"),
            pending=Count("id", filter=Q(state__in=(State.PENDING, State.FETCHING))),
            fetched=Count("id", filter=Q(state=State.FETCHED)),
            failed=Count("id", filter=Q(state=State.FAILED)),
        )
        .order_by()
    }
    failures: dict[int, list[dict[str, object]]] = {pk: [] for pk in batch_ids}
    if any(row["failed"] for row in counts.values()):
        rank = Window(RowNumber(), partition_by=[F("import_batch")], order_by=[F("import_line"), F("pk")])
        rows = (
            ImageReference.objects.filter(import_batch__in=batch_ids, state=State.FAILED)
            .annotate(rank=rank)
            .filter(rank__lte=MAX_LISTED_FAILURES)
            .order_by("import_batch", "rank")
            .values_list("import_batch", "import_line", "image__file_name", "uri", "reason")
        )
        for batch_id, line, name, uri, reason in rows:
            failures[batch_id].append({"line": line, "file_name": name, "uri": uri, "reason": reason})
    empty = {"total": 0, "pending": 0, "fetched": 0, "failed": 0}
    return {
        pk: ReferenceReport(
            failures=failures[pk],
            **{k: (counts.get(pk) or empty)[k] for k in ("total", "pending", "fetched", "failed")},
        )
        for pk in batch_ids
    }
