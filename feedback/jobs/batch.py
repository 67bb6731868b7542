"""Batch mode: a job's requests go through the provider's Batch API instead of one live call each.

A poller (JOB_BATCH, on the ``default`` queue, sent again every JOB_BATCH_POLL_INTERVAL seconds
while the job has work) writes pending items as JSONL parts (``custom_id`` the JobItem id, the
body the live path would send) under the requests and bytes limits, uploads each, creates its
batch, polls it, and reads its output and error files as streams: each answer is parsed, repaired
and stored as the live path stores it, at the batch price; a line that cannot be used, failed or
never came goes to the live path (``llm_item_run``), which asks again with its own retries.

Crash safety: every remote id is recorded on the BatchPart before the next remote step, each
step runs under the part's lease, and items are written under the part's token, so a worker lost
anywhere leaves a part the next poll resumes: written and uploaded again (``writing``), its batch
found by its input file or created (``uploaded``), polled (``submitted``) or read again, items
already stored skipped (``reading``). A successful draft is unique per turn and job besides.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from feedback.drafting import batch_client as remote
from feedback.drafting import connections
from feedback.drafting.batch_client import LineTooLong
from feedback.drafting.client import SIMULATOR_FINGERPRINT, ChatResult, LLMError, request_body
from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.drafting.pricing import cost_of
from feedback.drafting.prompts import estimate_tokens, image_data_url, response_messages, template_for
from feedback.drafting.service import CallSettings, answered_draft, call_target, feedback_request
from feedback.jobs.models import BatchPart, Job, JobItem
from feedback.limits import loads_bounded
from feedback.models import Turn
from feedback.sending import JOB_BATCH, LLM_ITEM_RUN, send, send_each

from . import service

log = logging.getLogger(__name__)

# Items read per query while writing a part, and answers stored per transaction while reading one.
_WRITE_CHUNK = 500
_READ_CHUNK = 500
# Characters of a remote error kept on a part or an item.
_ERROR_MAX = 500
# The poller's own chain is fresh for this share of its interval; a second chain stops at once.
_FRESH_SHARE = 0.8
# Custom ids are JobItem ids: digits, bounded.
_CUSTOM_ID_MAX = 20
DRAFT, RESPOND = "draft", "respond"


class _Superseded(Exception):
    """Another poller took the job over (this one was presumed lost): stop at once."""


class _Beat:
    """The poller's mark on its job (batch_ticked_at), renewed while a long step runs (writing
    50,000 requests, reading their answers), so that the watcher never starts a second poller
    beside a live one; a poller whose mark was taken over stops."""

    def __init__(self, job_id: int, stamp: Any) -> None:
        self.job_id, self.stamp = job_id, stamp
        self.every = timedelta(seconds=settings.JOB_BATCH_POLL_INTERVAL / 4)

    def __call__(self) -> None:
        now = timezone.now()
        if now - self.stamp < self.every:
            return
        if not Job.objects.filter(pk=self.job_id, batch_ticked_at=self.stamp).update(batch_ticked_at=now):
            raise _Superseded
        self.stamp = now


_beat: contextvars.ContextVar[_Beat | None] = contextvars.ContextVar("batch_beat", default=None)


def _alive() -> None:
    """Renew the running poller's mark (a one-off look has none)."""
    beat = _beat.get()
    if beat is not None:
        beat()


def part_token(part_id: int) -> str:
    """The token of the items a part holds: a live message never carries it."""
    return f"batch-{part_id}"


def batch_price(model: str, tokens_in: int, tokens_out: int) -> Decimal:
    return cost_of(model, tokens_in, tokens_out) * Decimal(str(settings.LLM_BATCH_PRICE))


# --- the poller ----------------------------------------------------------------------------------


def job_batch_tick(*, job_id: int, chain: bool = True) -> None:
    """One look at a batch-mode job: advance each open part one or more steps, start new parts
    while items wait, finish the job when nothing is left. ``chain``: this is the job's poller,
    sent again after the interval while there is work (one chain per job: a second one finds the
    job freshly polled and stops); a one-off look (cancel) is not."""
    now = timezone.now()
    interval = settings.JOB_BATCH_POLL_INTERVAL
    if chain:
        fresh = Q(batch_ticked_at__isnull=True) | Q(
            batch_ticked_at__lt=now - timedelta(seconds=_FRESH_SHARE * interval)
        )
        if not Job.objects.filter(fresh, pk=job_id, mode=Job.Mode.BATCH).update(batch_ticked_at=now):
            return
    job = Job.objects.select_related("project").filter(pk=job_id, mode=Job.Mode.BATCH).first()
    if job is None:
        return
    beat = _Beat(job_id, now) if chain else None
    token = _beat.set(beat)
    try:
        _tick(job)
    except _Superseded:
        log.warning("job %s: another poller took over; this one stops", job_id)
        return
    finally:
        _beat.reset(token)
    # The next look, unless another poller took the job over meanwhile.
    renewed = Q(pk=job_id, batch_ticked_at=beat.stamp) if beat is not None else None
    if renewed is not None and _has_work(job_id) and Job.objects.filter(renewed).update(batch_ticked_at=timezone.now()):
        send(JOB_BATCH, job_id, countdown=interval)


def _has_work(job_id: int) -> bool:
    """Parts to poll or read, or, while the job runs, parts to send and items to put in parts; a
    paused job's poller stops once only unsent parts are left (resuming starts it again)."""
    state = Job.objects.filter(pk=job_id).values_list("state", flat=True).first()
    if state is None:
        return False
    parts = BatchPart.objects.filter(job_id=job_id)
    if state != Job.State.RUNNING:
        remote_work = (BatchPart.State.SUBMITTED, BatchPart.State.READING)
        return parts.filter(state__in=BatchPart.OPEN if state == Job.State.CANCELLING else remote_work).exists() or (
            state == Job.State.CANCELLED and parts.filter(state__in=BatchPart.OPEN).exists()
        )
    if parts.filter(state__in=BatchPart.OPEN).exists():
        return True
    return JobItem.objects.filter(job_id=job_id, state=JobItem.State.PENDING).exists()


def _tick(job: Job) -> None:
    if job.state in (Job.State.CANCELLING, Job.State.CANCELLED, Job.State.FAILED):
        _cancel_parts(job)
        service._finish_if_done(job)
        return
    if job.state not in (Job.State.RUNNING, Job.State.PAUSED):
        return
    running = job.state == Job.State.RUNNING
    for part in BatchPart.objects.filter(job=job, state__in=BatchPart.OPEN).order_by("number"):
        if not running and part.state in (BatchPart.State.WRITING, BatchPart.State.UPLOADED):
            continue  # paused: nothing new is sent; what runs remotely is still read
        _step(job, part)
    while (
        running and BatchPart.objects.filter(job=job, state__in=BatchPart.OPEN).count() < settings.JOB_BATCH_OPEN_PARTS
    ):
        made = _new_part(job)
        if made is None:
            break
        part, written = made
        try:
            _step(job, part, claimed=True, written=written)
        finally:
            written.remove()
        job.refresh_from_db(fields=["state"])
        running = job.state == Job.State.RUNNING
    service._finish_if_done(job)


def _claim(part: BatchPart) -> str | None:
    """Take the part's lease for one step; None when another worker holds it."""
    now = timezone.now()
    token = uuid.uuid4().hex
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    lease = now + timedelta(seconds=settings.JOB_BATCH_LEASE)
    if BatchPart.objects.filter(free, pk=part.pk, state__in=BatchPart.OPEN).update(token=token, lease_until=lease):
        return token
    return None


def _held(part: BatchPart, token: str, **values: Any) -> bool:
    """Update the part while this step still holds its lease."""
    return bool(BatchPart.objects.filter(pk=part.pk, token=token).update(**values))


def _step(job: Job, part: BatchPart, *, claimed: bool = False, written: _Written | None = None) -> None:
    token = part.token if claimed else _claim(part)
    if token is None:
        return
    part.refresh_from_db()
    try:
        _advance(job, part, token, written)
    except _Superseded:
        _held(part, token, lease_until=None)
        raise
    except LLMError as exc:
        message = exc.message[:_ERROR_MAX]
        if exc.retryable:
            log.warning("job %s part %s: %s; tried again at the next poll", job.pk, part.number, message)
            _held(part, token, error=message, lease_until=None)
            return
        log.warning("job %s part %s: %s; its items go to the live path", job.pk, part.number, message)
        _give_up(job, part, token, message)
        return
    except Exception as exc:  # a bug or a database hiccup: the next poll tries the step again
        log.exception("job %s part %s failed unexpectedly", job.pk, part.number)
        _held(part, token, error=f"internal error: {type(exc).__name__}: {exc}"[:_ERROR_MAX], lease_until=None)
        return
    _held(part, token, lease_until=None)


@dataclass(frozen=True)
class _Target:
    """Where the part's calls go: the role's settings as they are now (the connection's URL, its key)."""

    cs: CallSettings

    @classmethod
    def of(cls, job: Job, call: str) -> _Target:
        return cls(call_target(CallSettings.from_dict(job.llm_settings["responder" if call == RESPOND else "drafter"])))

    def kwargs(self) -> dict[str, Any]:
        return {"base_url": self.cs.base_url, "api_key": self.cs.api_key, "timeout": settings.JOB_BATCH_TIMEOUT}


def _advance(job: Job, part: BatchPart, token: str, written: _Written | None = None) -> None:
    target = _Target.of(job, part.call)
    if part.state == BatchPart.State.WRITING:
        if written is None or not written.whole:
            written = _rewrite(job, part)  # a part whose upload was lost: its file again
        try:
            requests, size = len(written.ids), written.size
            if not requests:
                _finish_part(job, part, token)
                return
            name = f"job-{job.pk}-part-{part.number}.jsonl"
            file_id = remote.upload(path=written.path, filename=name, **target.kwargs())
        finally:
            written.remove()
        if not _held(part, token, state=BatchPart.State.UPLOADED, input_file_id=file_id, requests=requests, bytes=size):
            return
        part.state, part.input_file_id = BatchPart.State.UPLOADED, file_id
    if part.state == BatchPart.State.UPLOADED:
        if job.state != Job.State.RUNNING:
            return
        # A batch made from this file before a worker was lost is found, not made twice.
        batch = remote.find(input_file_id=part.input_file_id, **target.kwargs()) or remote.create(
            input_file_id=part.input_file_id,
            metadata={"job": str(job.pk), "part": str(part.number)},
            **target.kwargs(),
        )
        if not _held(
            part,
            token,
            state=BatchPart.State.SUBMITTED,
            remote_id=batch.id,
            remote_status=batch.status,
            submitted_at=timezone.now(),
        ):
            return
        part.state, part.remote_id = BatchPart.State.SUBMITTED, batch.id
    if part.state == BatchPart.State.SUBMITTED:
        batch = remote.retrieve(batch_id=part.remote_id, **target.kwargs())
        if not batch.ended:
            _held(part, token, remote_status=batch.status, completed=batch.completed, failed=batch.failed)
            return
        if not _held(
            part,
            token,
            state=BatchPart.State.READING,
            remote_status=batch.status,
            completed=batch.completed,
            failed=batch.failed,
            output_file_id=batch.output_file_id,
            error_file_id=batch.error_file_id,
            ended_at=timezone.now(),
            error=batch.errors[:_ERROR_MAX],
        ):
            return
        part.refresh_from_db()
    if part.state == BatchPart.State.READING:
        _read(job, part, token, target)
        _finish_part(job, part, token)
        for file_id in (part.input_file_id, part.output_file_id, part.error_file_id):
            if file_id:
                remote.delete_file(file_id=file_id, **target.kwargs())


def _finish_part(job: Job, part: BatchPart, token: str) -> None:
    """Whatever the part still holds goes to the live path; then the part is done and its budget
    reservation released."""
    leftover = JobItem.objects.filter(part=part, token=part_token(part.pk), state=JobItem.State.QUEUED)
    reason = f"no answer in the batch ({part.remote_status or 'not sent'}); asked live"
    _to_live(job, part, list(leftover.values_list("pk", flat=True)), reason)
    with transaction.atomic():
        if not _held(
            part, token, state=BatchPart.State.DONE, finished_at=timezone.now(), lease_until=None, reserved_cost=0
        ):
            return
        if part.reserved_cost:
            Job.objects.filter(pk=job.pk).update(reserved_cost=F("reserved_cost") - part.reserved_cost)


def _give_up(job: Job, part: BatchPart, token: str, message: str) -> None:
    """A step the provider refuses for good (no Batch API, a file it will not take): the part's
    items go to the live path, the reason stays on the part."""
    _held(part, token, error=message, remote_status=part.remote_status or "refused")
    part.remote_status = part.remote_status or "refused"
    _finish_part(job, part, token)


def _to_live(job: Job, part: BatchPart, item_ids: list[int], reason: str) -> int:
    """Send items of the part to the live path (llm_item_run), each once: only those still held
    under the part's token move."""
    if not item_ids:
        return 0
    token = uuid.uuid4().hex
    now = timezone.now()
    with transaction.atomic():
        moved = list(
            JobItem.objects.filter(pk__in=item_ids, token=part_token(part.pk), state=JobItem.State.QUEUED).values_list(
                "pk", flat=True
            )
        )
        JobItem.objects.filter(pk__in=moved, token=part_token(part.pk)).update(
            token=token,
            lease_until=now + timedelta(seconds=settings.JOB_LEASE),
            error=reason[:_ERROR_MAX],
            updated_at=now,
        )
        BatchPart.objects.filter(pk=part.pk).update(to_live=F("to_live") + len(moved))
        send_each(LLM_ITEM_RUN, ((item_id, token) for item_id in moved))
    return len(moved)


# --- cancel ---------------------------------------------------------------------------------------


def _cancel_parts(job: Job) -> None:
    """Cancel the remote batches of a cancelled job; what its parts still hold is cancelled."""
    for part in BatchPart.objects.filter(job=job, state__in=BatchPart.OPEN):
        token = _claim(part)
        if token is None:
            continue
        part.refresh_from_db()
        try:
            target = _Target.of(job, part.call)
            batch_id = part.remote_id
            if not batch_id and part.input_file_id:
                found = remote.find(input_file_id=part.input_file_id, **target.kwargs())
                batch_id = found.id if found else ""
            status = part.remote_status
            if batch_id:
                status = _cancel_remote(target, batch_id)
            if part.input_file_id and not batch_id:
                remote.delete_file(file_id=part.input_file_id, **target.kwargs())
        except LLMError as exc:
            _held(part, token, error=exc.message[:_ERROR_MAX], lease_until=None)
            continue  # the next look tries again
        now = timezone.now()
        with transaction.atomic():
            JobItem.objects.filter(part=part, token=part_token(part.pk), state=JobItem.State.QUEUED).update(
                state=JobItem.State.CANCELLED, token="", updated_at=now
            )
            if (
                _held(
                    part,
                    token,
                    state=BatchPart.State.CANCELLED,
                    remote_status=status,
                    remote_id=batch_id,
                    finished_at=now,
                    lease_until=None,
                    reserved_cost=0,
                )
                and part.reserved_cost
            ):
                Job.objects.filter(pk=job.pk).update(reserved_cost=F("reserved_cost") - part.reserved_cost)


def _cancel_remote(target: _Target, batch_id: str) -> str:
    """Cancel the batch unless it has ended already; its status after."""
    batch = remote.retrieve(batch_id=batch_id, **target.kwargs())
    if batch.ended or batch.status == "cancelling":
        return batch.status
    return remote.cancel(batch_id=batch_id, **target.kwargs()).status


# --- writing a part -------------------------------------------------------------------------------


def _new_part(job: Job) -> tuple[BatchPart, _Written] | None:
    """Choose pending items and write them into a new part's file (under the limits and the
    budget), claiming them under the part's token; the caller holds the part's lease and removes
    the file."""
    pending = JobItem.objects.filter(job=job, state=JobItem.State.PENDING)
    unanswerable = pending.filter(turn__model_response__isnull=True)
    call = DRAFT
    if job.kind == Job.Kind.RESPOND:
        if unanswerable.exists():
            call = RESPOND
    elif unanswerable.exists():
        # Nothing to review: the live path fails these items with its own reason.
        _live_pending(job, list(unanswerable.values_list("pk", flat=True)[:_WRITE_CHUNK]))
    chosen = pending.filter(turn__model_response__isnull=(call == RESPOND))
    if not chosen.exists():
        return None
    room = _budget_room(job)
    written = _write_file(job, call, _Target.of(job, call).cs, chosen, room)
    if not written.ids:
        written.remove()
        if room is not None:
            service._pause_for_budget(job)
        return None
    now = timezone.now()
    with transaction.atomic():
        number = (BatchPart.objects.filter(job=job).aggregate(n=Max("number"))["n"] or 0) + 1
        part = BatchPart.objects.create(
            job=job,
            number=number,
            call=call,
            token=uuid.uuid4().hex,
            lease_until=now + timedelta(seconds=settings.JOB_BATCH_LEASE),
            reserved_cost=written.worst,
            requests=len(written.ids),
            bytes=written.size,
        )
        claimed = JobItem.objects.filter(pk__in=written.ids, state=JobItem.State.PENDING).update(
            state=JobItem.State.QUEUED, token=part_token(part.pk), part=part, lease_until=None, updated_at=now
        )
        if written.worst and not Job.objects.filter(
            pk=job.pk, budget__gte=F("cost") + F("reserved_cost") + written.worst
        ).update(reserved_cost=F("reserved_cost") + written.worst):
            transaction.set_rollback(True)
            written.remove()
            service._pause_for_budget(job)
            return None
    # Some items moved meanwhile (a cancel, say): the file is written again from what the part holds.
    written.whole = claimed == len(written.ids)
    return part, written


def _live_pending(job: Job, item_ids: list[int]) -> None:
    token = uuid.uuid4().hex
    now = timezone.now()
    with transaction.atomic():
        moved = list(JobItem.objects.filter(pk__in=item_ids, state=JobItem.State.PENDING).values_list("pk", flat=True))
        JobItem.objects.filter(pk__in=moved).update(
            state=JobItem.State.QUEUED,
            token=token,
            lease_until=now + timedelta(seconds=settings.JOB_LEASE),
            updated_at=now,
        )
        send_each(LLM_ITEM_RUN, ((item_id, token) for item_id in moved))


def _budget_room(job: Job) -> Decimal | None:
    row = Job.objects.filter(pk=job.pk).values("budget", "cost", "reserved_cost").get()
    if row["budget"] is None:
        return None
    return row["budget"] - row["cost"] - row["reserved_cost"]


def _chunks(items: Any) -> Iterator[list[JobItem]]:
    """Items with their turn and sample, a chunk at a time."""
    last = 0
    while True:
        chunk = list(items.filter(pk__gt=last).select_related("turn__sample__image")[:_WRITE_CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


@dataclass
class _Written:
    """A part's file on this worker's disk (removed once uploaded): the items it asks for, its
    bytes and, under a budget, its worst-case cost. ``whole``: it holds exactly the part's items."""

    path: str
    ids: list[int]
    size: int
    worst: Decimal
    whole: bool = True

    def remove(self) -> None:
        if self.path and os.path.exists(self.path):
            os.remove(self.path)


def _write_file(job: Job, call: str, cs: CallSettings, items: Any, room: Decimal | None) -> _Written:
    fd, path = tempfile.mkstemp(prefix=f"annotator-job-{job.pk}-", suffix=".jsonl")
    written = _Written(path, [], 0, Decimal(0))
    try:
        with os.fdopen(fd, "wb") as out:
            _write_lines(job, call, cs, _chunks(items.order_by("pk")), out, room, written)
    except BaseException:
        written.remove()
        raise
    return written


def _rewrite(job: Job, part: BatchPart) -> _Written:
    """The part's file written again from the items it holds (after its upload was lost)."""
    held = JobItem.objects.filter(part=part, token=part_token(part.pk), state=JobItem.State.QUEUED)
    return _write_file(job, part.call, _Target.of(job, part.call).cs, held, None)


def _write_lines(
    job: Job,
    call: str,
    cs: CallSettings,
    chunks: Iterable[list[JobItem]],
    out: Any,
    room: Decimal | None,
    written: _Written,
) -> None:
    """Write one JSONL line per item until a limit (requests, bytes, the budget's room) is reached."""
    max_requests, max_bytes = settings.JOB_BATCH_MAX_REQUESTS, settings.JOB_BATCH_MAX_BYTES
    for chunk in chunks:
        _alive()
        earlier = _earlier_turns(chunk)
        for item in chunk:
            body = _body(job, call, cs, item, earlier)
            line = json.dumps(
                {"custom_id": str(item.pk), "method": "POST", "url": remote.ENDPOINT, "body": body},
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode("utf-8")
            line += b"\n"
            if written.size + len(line) > max_bytes:
                if not written.ids:
                    raise LLMError(
                        f"one request is {len(line)} bytes, past the file limit of {max_bytes}", retryable=False
                    )
                return
            worst = Decimal(0)
            if room is not None:
                worst = batch_price(cs.model, estimate_tokens(body["messages"]), cs.max_tokens)
                if written.worst + worst > room:
                    return
            out.write(line)
            written.ids.append(item.pk)
            written.size += len(line)
            written.worst += worst
            if len(written.ids) >= max_requests:
                return


def _earlier_turns(chunk: list[JobItem]) -> dict[int, list[Turn]]:
    """The turns before each item's turn, by sample, in one query for the chunk."""
    later = [item.turn for item in chunk if item.turn.index > 0]
    if not later:
        return {}
    found: dict[int, list[Turn]] = {}
    top = max(t.index for t in later)
    for turn in Turn.objects.filter(sample_id__in={t.sample_id for t in later}, index__lt=top).order_by(
        "sample_id", "index"
    ):
        found.setdefault(turn.sample_id, []).append(turn)
    return found


def _body(job: Job, call: str, cs: CallSettings, item: JobItem, earlier: dict[int, list[Turn]]) -> dict[str, Any]:
    turn, sample = item.turn, item.turn.sample
    previous = [t for t in earlier.get(turn.sample_id, []) if t.index < turn.index]
    if call == RESPOND:
        messages = response_messages(
            previous=previous, turn=turn, image_url=image_data_url(sample.image) if cs.send_image else None
        )
        return request_body(
            model=cs.model,
            messages=messages,
            temperature=cs.temperature,
            max_tokens=cs.max_tokens,
            parameters=connections.parameters_for(cs.connection),
        )
    request = feedback_request(turn=turn, sample=sample, project=job.project, cs=cs, previous=previous)
    return request.body(cs)


# --- reading a part -------------------------------------------------------------------------------


@dataclass
class _Line:
    item_id: int
    answer: ChatResult | None
    problem: str


def _read(job: Job, part: BatchPart, token: str, target: _Target) -> None:
    """Store the answers of the output file and send the rest to the live path, a chunk of lines
    per transaction; items stored already (a read resumed after a lost worker) are skipped."""
    for file_id in (part.output_file_id, part.error_file_id):
        if not file_id:
            continue
        with remote.lines(file_id=file_id, **target.kwargs()) as lines:
            chunk: list[_Line] = []
            for raw in lines:
                line = _parse_line(raw)
                if line is not None:
                    chunk.append(line)
                if len(chunk) >= _READ_CHUNK:
                    _store_chunk(job, part, token, target, chunk)
                    chunk = []
            if chunk:
                _store_chunk(job, part, token, target, chunk)


def _parse_line(raw: bytes | LineTooLong) -> _Line | None:
    if isinstance(raw, LineTooLong):
        return None  # its item is asked again live with the rest the batch left unanswered
    try:
        record = loads_bounded(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    custom_id = record.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id.isdigit() or len(custom_id) > _CUSTOM_ID_MAX:
        return None
    item_id = int(custom_id)
    response = record.get("response") if isinstance(record.get("response"), dict) else None
    error = record.get("error") if isinstance(record.get("error"), dict) else None
    status = response.get("status_code") if response else None
    body = response.get("body") if response else None
    if status != 200 or not isinstance(body, dict):
        message = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = str(body["error"].get("message") or "")
        elif error:
            message = f"{error.get('code') or 'error'}: {error.get('message') or ''}"
        return _Line(item_id, None, f"the batch failed this request (HTTP {status}): {message[:200]}")
    try:
        choice = body["choices"][0]
        usage = body.get("usage") or {}
        answer = ChatResult(
            text=str(choice["message"].get("content") or ""),
            finish_reason=str(choice.get("finish_reason") or ""),
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            latency_ms=0,
            model=str(body.get("model") or ""),
            simulated=body.get("system_fingerprint") == SIMULATOR_FINGERPRINT,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return _Line(item_id, None, "the batch's answer is not a chat completion")
    return _Line(item_id, answer, "")


def _store_chunk(job: Job, part: BatchPart, token: str, target: _Target, chunk: list[_Line]) -> None:
    by_id = {line.item_id: line for line in chunk}
    items = list(
        JobItem.objects.filter(
            pk__in=list(by_id), part=part, token=part_token(part.pk), state=JobItem.State.QUEUED
        ).select_related("turn__sample")
    )
    if part.call == RESPOND:
        _store_responses(job, part, token, target, items, by_id)
    else:
        _store_drafts(job, part, token, target, items, by_id)
    _alive()


def _store_drafts(
    job: Job, part: BatchPart, token: str, target: _Target, items: list[JobItem], by_id: dict[int, _Line]
) -> None:
    cs = target.cs
    template = template_for(job.project, cs.prompt_version, lock=True)
    criteria = list(job.project.criteria)
    drafts: list[Draft] = []
    done: list[JobItem] = []
    live: dict[int, str] = {}
    for item in items:
        line = by_id[item.pk]
        if line.answer is None:
            live[item.pk] = line.problem
            continue
        draft = answered_draft(
            turn=item.turn,
            project=job.project,
            cs=cs,
            template=template,
            criteria=criteria,
            answer=line.answer,
            cost=batch_price(cs.model, line.answer.tokens_in, line.answer.tokens_out),
            job_id=job.pk,
            failed_note="; asked again live",
        )
        drafts.append(draft)
        if draft.status == CallStatus.FAILED:
            live[item.pk] = draft.error
        else:
            done.append(item)
    with transaction.atomic():
        _create_all(Draft, drafts)
        _settle(job, part, token, drafts, done=[i.pk for i in done])
        if job.kind == Job.Kind.RESPOND:
            for item in done:
                if item.round < job.rounds:
                    refinement = next(d.refinement for d in drafts if d.turn_id == item.turn_id)
                    service._next_round(item, job, item.turn, item.turn.sample, refinement)
        _to_live(job, part, list(live), "; ".join(sorted(set(live.values())))[:_ERROR_MAX])


def _store_responses(
    job: Job, part: BatchPart, token: str, target: _Target, items: list[JobItem], by_id: dict[int, _Line]
) -> None:
    cs = target.cs
    generations: list[Generation] = []
    answered: list[JobItem] = []
    live: dict[int, str] = {}
    for item in items:
        line = by_id[item.pk]
        if line.answer is None or not line.answer.text.strip():
            live[item.pk] = line.problem or "the model answered with an empty response"
            continue
        answer = line.answer
        generations.append(
            Generation(
                turn=item.turn,
                job_id=job.pk,
                status=CallStatus.OK,
                model=cs.model,
                endpoint=cs.base_url,
                params=cs.request_params(),
                raw_output=answer.text,
                tokens_in=answer.tokens_in,
                tokens_out=answer.tokens_out,
                cost=batch_price(cs.model, answer.tokens_in, answer.tokens_out),
                latency_ms=0,
                simulated=answer.simulated,
            )
        )
        answered.append(item)
    with transaction.atomic():
        _create_all(Generation, generations)
        for generation in generations:
            Turn.objects.filter(pk=generation.turn_id, model_response__isnull=True).update(
                model_response=generation.raw_output.strip()
            )
        # Answered: the item waits for its draft, which a later part asks for.
        _settle(job, part, token, generations, done=[], waiting=[i.pk for i in answered])
        _to_live(job, part, list(live), "; ".join(sorted(set(live.values())))[:_ERROR_MAX])


def _create_all(model: type[Draft] | type[Generation], records: list[Any]) -> None:
    """Insert the records; when one turn already holds the job's successful record (a read resumed
    after a lost worker), each is inserted alone and such duplicates skipped."""
    if not records:
        return
    try:
        with transaction.atomic():
            model.objects.bulk_create(records)
    except IntegrityError:
        for record in records:
            try:
                with transaction.atomic():
                    record.pk = None
                    record.save(force_insert=True)
            except IntegrityError:
                continue


def _settle(
    job: Job, part: BatchPart, token: str, records: list[Any], *, done: list[int], waiting: list[int] | None = None
) -> None:
    """Mark stored items, count them on the part and, under a budget, add their spending to the job."""
    now = timezone.now()
    held = JobItem.objects.filter(token=part_token(part.pk), state=JobItem.State.QUEUED)
    if done:
        held.filter(pk__in=done).update(state=JobItem.State.DONE, error="", lease_until=None, updated_at=now)
    if waiting:
        held.filter(pk__in=waiting).update(state=JobItem.State.PENDING, token="", error="", updated_at=now)
    BatchPart.objects.filter(pk=part.pk).update(stored=F("stored") + len(done) + len(waiting or []))
    if job.budget is not None and records:
        Job.objects.filter(pk=job.pk).update(
            tokens_in=F("tokens_in") + sum(r.tokens_in for r in records),
            tokens_out=F("tokens_out") + sum(r.tokens_out for r in records),
            cost=F("cost") + sum((r.cost for r in records), Decimal(0)),
        )
