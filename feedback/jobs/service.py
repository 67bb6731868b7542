"""Jobs: launch, dispatch, run one item, watch, pause, resume, cancel, retry.

The dispatcher pages through the selection and makes one JobItem per turn; at most
``JOB_WINDOW`` items per job are on the broker at once and each finished item sends the next,
so that pause, cancel and the budget act at once whatever the job's size. Items are the truth:
a message runs its item only while the item still holds that message's token, and a watcher
re-sends an item whose lease ran out (its worker was lost). Successful drafts are unique per
turn and job in the database, so a turn run twice is still drafted once.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from feedback.drafting.client import LLMError
from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.drafting.pricing import cost_of
from feedback.drafting.ratelimit import RateLimitWait
from feedback.drafting.service import (
    CallGate,
    CallSettings,
    draft_turn,
    drafter_settings,
    failure_record,
    respond_turn,
    responder_settings,
)
from feedback.errors import Conflict, InvalidInput, NotFound, ServiceError
from feedback.jobs.models import Job, JobItem
from feedback.models import Project, Sample, Turn
from feedback.sending import JOB_BATCH, JOB_DISPATCH, JOB_WATCH, LLM_ITEM_RUN, send, send_each

from .estimate import job_estimate
from .memo import BoundedCache
from .selection import Selection, samples_to_respond, selection_from, turns_to_draft, whole_number

log = logging.getLogger(__name__)
# Turns or samples per query while planning a job's items: bounds memory and query parameters.
CHUNK = 1000
# Rounds of a respond job: each round is a full pass of drafting and responding, paid for.
MAX_ROUNDS = 10
# Characters of an unknown name echoed back in an error: enough to recognise it, never a flood.
_ECHO_MAX = 50
# Characters of a budget's text read at all: Job.budget's 14 digits, a sign and a point fit well.
_BUDGET_TEXT_MAX = 40
# Job.budget keeps 8 decimals; a budget is rounded down to them.
_BUDGET_QUANTUM = Decimal("0.00000001")
# Characters of the error kept in the stop reason of a job that could not start.
_STOP_REASON_MAX = 300
# Characters of an unexpected exception kept as an item's error.
_INTERNAL_ERROR_MAX = 500
# Seconds added to a running item's lease for the database writes around its calls.
_LEASE_MARGIN_SECONDS = 10
# Upper bound of the random delay added to a retry, so items throttled together do not return together.
_RETRY_JITTER_SECONDS = 0.5
# 429s counted in a 429's backoff: past this many it stops growing (LLM_BACKOFF_MAX caps it anyway).
_THROTTLE_BACKOFF_STEPS = 6
# Watch intervals without a look after which a job's watcher is presumed gone and another started.
_WATCHER_STALE_INTERVALS = 3


class BudgetExhausted(Exception):
    pass


class JobStateError(Conflict):
    """The job is not in a state that allows the action (409)."""


# --- launching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRequest:
    """A validated request for a job: what job_create stores and what a dry run estimates."""

    project: Project
    kind: str
    selection: Selection
    rounds: int
    budget: Decimal | None
    llm_settings: dict[str, dict[str, Any]]
    user: Any = None
    mode: str = Job.Mode.LIVE


def job_request(
    *,
    project: Project,
    kind: str,
    selection: dict[str, Any],
    user: Any = None,
    rounds: int = 1,
    budget: Decimal | str | None = None,
    drafter: dict[str, Any] | None = None,
    responder: dict[str, Any] | None = None,
    mode: str = Job.Mode.LIVE,
) -> JobRequest:
    """Validate a job request; an InvalidInput names the field at fault (``drafter.model``, say).

    A free-form ``base_url`` is for superusers, and for callers with no user (the command line and
    code, which run with the deployment's own environment); it never gets a connection's key."""
    if kind not in Job.Kind.values:
        raise InvalidInput("kind", f"{str(kind)[:_ECHO_MAX]!r} is not one of {', '.join(Job.Kind.values)}")
    chosen = selection_from(project, selection)
    count = whole_number("rounds", rounds, low=1, high=MAX_ROUNDS)
    if count is None:
        raise InvalidInput("rounds", f"must be from 1 to {MAX_ROUNDS}")
    if kind == Job.Kind.DRAFT and count != 1:
        raise InvalidInput("rounds", "a draft job has one round; the DRESS loop is a respond job")
    if mode not in Job.Mode.values:
        raise InvalidInput("mode", f"{str(mode)[:_ECHO_MAX]!r} is not one of {', '.join(Job.Mode.values)}")
    cap = _budget(budget)
    free_url = user is None or bool(getattr(user, "is_superuser", False))
    llm_settings = {"drafter": _role_settings("drafter", drafter, project=project, free_url=free_url)}
    if kind == Job.Kind.RESPOND:
        llm_settings["responder"] = _role_settings("responder", responder, project=project, free_url=free_url)
    return JobRequest(project, kind, chosen, count, cap, llm_settings, user, mode)


def job_dry_run(req: JobRequest) -> dict[str, Any]:
    """What a validated request (job_request) would cost; nothing is stored or sent."""
    return job_estimate(
        project=req.project,
        kind=req.kind,
        selection=req.selection,
        rounds=req.rounds,
        llm_settings=req.llm_settings,
        mode=req.mode,
    )


def job_create(
    *,
    project: Project,
    kind: str,
    selection: dict[str, Any],
    user: Any = None,
    rounds: int = 1,
    budget: Decimal | str | None = None,
    drafter: dict[str, Any] | None = None,
    responder: dict[str, Any] | None = None,
    mode: str = Job.Mode.LIVE,
) -> Job:
    """Validate (see job_request) and queue a job; the dispatcher runs after commit and records
    the dry run's estimate before it sends anything. ``mode`` ``batch``: through the provider's
    Batch API (feedback/jobs/batch.py)."""
    req = job_request(
        project=project,
        kind=kind,
        selection=selection,
        user=user,
        rounds=rounds,
        budget=budget,
        drafter=drafter,
        responder=responder,
        mode=mode,
    )
    with transaction.atomic():
        job = Job.objects.create(
            project=req.project,
            kind=req.kind,
            mode=req.mode,
            selection=req.selection.as_dict(),
            llm_settings=req.llm_settings,
            rounds=req.rounds,
            budget=req.budget,
            created_by=req.user if getattr(req.user, "is_authenticated", False) else None,
        )
        send(JOB_DISPATCH, job.pk)
    return job


def _role_settings(role: str, given: dict[str, Any] | None, *, project: Project, free_url: bool) -> dict[str, Any]:
    """The drafter's or responder's settings as stored with the job; errors name ``role.field``."""
    if given is not None and not isinstance(given, dict):
        raise InvalidInput(role, "an object of model settings")
    try:
        if role == "drafter":
            return drafter_settings(project, free_url=free_url, **(given or {})).as_dict()
        return responder_settings(free_url=free_url, **(given or {})).as_dict()
    except TypeError:  # a setting that does not exist
        unknown = sorted(set(given or {}) - set(CallSettings.__dataclass_fields__))
        raise InvalidInput(f"{role}.{unknown[0] if unknown else 'settings'}", "not a model setting") from None
    except InvalidInput as exc:
        raise exc.nested(role) from None


# Job.budget holds 14 digits, 8 of them decimals.
MAX_BUDGET = Decimal("999999")


def _budget(value: Decimal | str | None) -> Decimal | None:
    if value in (None, ""):
        return None
    text = str(value)
    if len(text) > _BUDGET_TEXT_MAX:
        raise InvalidInput("budget", f"from 0 to {MAX_BUDGET} US dollars")
    try:
        cap = Decimal(text)
    except ArithmeticError:
        raise InvalidInput("budget", f"{text!r} is not a number") from None
    if not cap.is_finite() or cap < 0:
        raise InvalidInput("budget", "must be a non-negative amount of US dollars")
    if cap > MAX_BUDGET:
        raise InvalidInput("budget", f"from 0 to {MAX_BUDGET} US dollars")
    return cap.quantize(_BUDGET_QUANTUM, rounding=ROUND_DOWN)


def job_dispatch(*, job_id: int) -> None:
    """Make the job's items from its selection (idempotent: a redelivered dispatch adds nothing),
    then send the first window."""
    job = Job.objects.select_related("project").get(pk=job_id)
    if job.state != Job.State.QUEUED:
        if job.state == Job.State.RUNNING:
            _fill(job)
        return
    try:
        _dispatch(job)
    except Exception as exc:  # whatever it was, the job must not wait in silence
        log.exception("job %s could not be dispatched", job.pk)
        _fail_dispatch(job, exc)


def _fail_dispatch(job: Job, exc: Exception) -> None:
    """The job failed before it started: say why on its page, and let nothing it made run."""
    reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ServiceError) else str(exc)
    now = timezone.now()
    with transaction.atomic():
        JobItem.objects.filter(job=job, state__in=(JobItem.State.PENDING, JobItem.State.QUEUED)).update(
            state=JobItem.State.CANCELLED, token="", updated_at=now
        )
        Job.objects.filter(pk=job.pk, state__in=(Job.State.QUEUED, Job.State.RUNNING)).update(
            state=Job.State.FAILED,
            finished_at=now,
            reserved_cost=0,
            stop_reason=f"Could not start: {reason[:_STOP_REASON_MAX]}",
        )


def _dispatch(job: Job) -> None:
    try:
        selection = Selection(**job.selection)
    except TypeError:
        raise InvalidInput("selection", "the job's selection is not one this version reads") from None
    # The dry run's figures, before anything is sent, to compare with what the job spends.
    Job.objects.filter(pk=job.pk).update(
        estimate=job_estimate(
            project=job.project,
            kind=job.kind,
            selection=selection,
            rounds=job.rounds,
            llm_settings=job.llm_settings,
            mode=job.mode,
        )
    )
    if job.kind == Job.Kind.DRAFT:
        created = _items_from_turns(job, turns_to_draft(job.project, selection).values_list("pk", flat=True))
    else:
        created = _items_from_samples(job, samples_to_respond(job.project, selection))
    now = timezone.now()
    Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING,
        total=created * job.rounds,
        started_at=now,
        watched_at=None,
        stop_reason="" if created else "Nothing matched the selection.",
    )
    job.refresh_from_db()
    _fill(job)
    _finish_if_done(job)
    send(JOB_WATCH, job.pk, countdown=settings.JOB_WATCH_INTERVAL)


def _items_from_turns(job: Job, turn_ids: Any) -> int:
    batch: list[JobItem] = []
    for turn_id in turn_ids.iterator(chunk_size=CHUNK):
        batch.append(JobItem(job=job, turn_id=turn_id))
        if len(batch) >= CHUNK:
            JobItem.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    if batch:
        JobItem.objects.bulk_create(batch, ignore_conflicts=True)
    return JobItem.objects.filter(job=job).count()


def _items_from_samples(job: Job, samples: Any) -> int:
    """A respond job starts each sample at its last turn: awaiting a response, or, when that turn
    was drafted with a refinement, at a new turn whose user message is the refinement."""
    sample_ids = list(samples.values_list("pk", flat=True))
    for start in range(0, len(sample_ids), CHUNK):
        chunk = sample_ids[start : start + CHUNK]
        last: dict[int, Turn] = {}
        for turn in Turn.objects.filter(sample_id__in=chunk).order_by("sample_id", "index"):
            last[turn.sample_id] = turn
        refinements = dict(
            Draft.objects.filter(turn__in=[t.pk for t in last.values() if t.model_response is not None])
            .exclude(status=CallStatus.FAILED)
            .order_by("turn_id", "created_at", "id")
            .values_list("turn_id", "refinement")
        )
        items = []
        with transaction.atomic():
            for turn in last.values():
                if turn.model_response is not None and refinements.get(turn.pk):
                    turn, _ = Turn.objects.get_or_create(
                        sample_id=turn.sample_id,
                        index=turn.index + 1,
                        defaults={"user_message": refinements[turn.pk]},
                    )
                items.append(JobItem(job=job, turn=turn))
            JobItem.objects.bulk_create(items, ignore_conflicts=True)
    return JobItem.objects.filter(job=job).count()


# --- the window ------------------------------------------------------------------------------


def _fill(job: Job, limit: int | None = None) -> int:
    """Send pending items until ``JOB_WINDOW`` are in flight (or ``limit`` more). Returns how many."""
    if job.state != Job.State.RUNNING:
        return 0
    if job.mode == Job.Mode.BATCH:  # its poller puts items in batches (feedback/jobs/batch.py)
        if limit is None:
            _batch_kick(job)
        return 0
    if limit is None:
        limit = settings.JOB_WINDOW - JobItem.objects.filter(job=job, state__in=JobItem.IN_FLIGHT).count()
    if limit <= 0:
        return 0
    token = uuid.uuid4().hex
    ids = _claim_pending(job.pk, limit, token, timezone.now() + timedelta(seconds=settings.JOB_LEASE))
    if ids:
        send_each(LLM_ITEM_RUN, ((item_id, token) for item_id in ids))
    return len(ids)


def _batch_kick(job: Job) -> None:
    """Start a batch-mode job's poller unless it looked within its interval (it died with its
    worker, or stopped while the job was paused)."""
    since = timezone.now() - timedelta(seconds=settings.JOB_BATCH_POLL_INTERVAL)
    if Job.objects.filter(Q(batch_ticked_at__isnull=True) | Q(batch_ticked_at__lt=since), pk=job.pk).exists():
        send(JOB_BATCH, job.pk)


def _claim_pending(job_id: int, limit: int, token: str, lease_until: Any) -> list[int]:
    """Mark up to ``limit`` pending items queued under ``token``, in one statement: it runs once per
    finished turn, and two workers never take the same item (SKIP LOCKED on PostgreSQL; SQLite
    runs one writer at a time)."""
    table = connection.ops.quote_name(JobItem._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    sql = (
        f"UPDATE {table} SET state = %s, token = %s, lease_until = %s, updated_at = %s "  # noqa: S608 (no input)
        f"WHERE id IN (SELECT id FROM {table} WHERE job_id = %s AND state = %s ORDER BY id LIMIT %s{lock}) "
        "RETURNING id"
    )
    now = timezone.now()
    params = [JobItem.State.QUEUED, token, lease_until, now, job_id, JobItem.State.PENDING, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _total_spending(job: Job) -> None:
    """Tokens and cost of a job without a budget: the sums of its drafts and generations."""
    fields = ("tokens_in", "tokens_out", "cost")
    totals = dict.fromkeys(fields, 0)
    for model in (Draft, Generation):
        sums = model.objects.filter(job=job).aggregate(**{f: Sum(f) for f in fields})
        for f in fields:
            totals[f] += sums[f] or 0
    Job.objects.filter(pk=job.pk).update(**totals)


def _finish_if_done(job: Job) -> bool:
    """Complete (or, when cancelling, cancel) a job with no open item; True when it had none."""
    open_items = JobItem.objects.filter(
        job=job, state__in=(JobItem.State.PENDING, JobItem.State.QUEUED, JobItem.State.RUNNING)
    )
    if open_items.exists():
        return False
    if job.budget is None:
        _total_spending(job)
    now = timezone.now()
    Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
        state=Job.State.COMPLETED, finished_at=now, reserved_cost=0
    )
    Job.objects.filter(pk=job.pk, state=Job.State.CANCELLING).update(
        state=Job.State.CANCELLED, finished_at=now, reserved_cost=0
    )
    return True


# --- one item --------------------------------------------------------------------------------


@dataclass
class JobGate(CallGate):
    """The job's budget on top of the global rate limit: each call reserves its worst-case cost
    first, and is not made when the reservation would pass the cap."""

    job_id: int = 0
    budget: Decimal | None = None
    reserved: Decimal = field(default_factory=Decimal)

    def before(self, cs: CallSettings, estimate_in: int) -> None:
        worst = Decimal(0)
        if self.budget is not None:
            worst = cost_of(cs.model, estimate_in, cs.max_tokens)
            room = Q(budget__gte=F("cost") + F("reserved_cost") + worst)
            if not Job.objects.filter(room, pk=self.job_id).update(reserved_cost=F("reserved_cost") + worst):
                raise BudgetExhausted
            self.reserved += worst
        try:
            super().before(cs, estimate_in)
        except RateLimitWait:
            if worst:
                Job.objects.filter(pk=self.job_id).update(reserved_cost=F("reserved_cost") - worst)
                self.reserved -= worst
            raise

    def settle(self) -> None:
        """Add what the calls spent to the job, at once when a budget needs it; without a budget the
        watcher totals the job's drafts instead, sparing a hot-row update per turn."""
        if self.budget is None or not (self.tokens_in or self.tokens_out or self.reserved):
            return
        Job.objects.filter(pk=self.job_id).update(
            tokens_in=F("tokens_in") + self.tokens_in,
            tokens_out=F("tokens_out") + self.tokens_out,
            cost=F("cost") + self.cost,
            reserved_cost=F("reserved_cost") - self.reserved,
        )


class _Permanent(Exception):
    """An item that can never succeed as it stands (nothing to review, an answer unusable after a
    re-ask). ``recorded``: a failed draft saying why is stored already."""

    def __init__(self, message: str, *, recorded: bool = False) -> None:
        super().__init__(message)
        self.recorded = recorded


def _running_lease() -> timedelta:
    # A call, its re-ask, the longest rate-limit wait and a margin for the database writes.
    return timedelta(seconds=2 * settings.LLM_TIMEOUT + settings.RATE_LIMIT_MAX_WAIT + _LEASE_MARGIN_SECONDS)


def item_run(*, item_id: int, token: str) -> None:
    now = timezone.now()
    claimed = JobItem.objects.filter(pk=item_id, token=token, state=JobItem.State.QUEUED).update(
        state=JobItem.State.RUNNING, lease_until=now + _running_lease(), updated_at=now
    )
    if not claimed:
        return  # a stale or duplicate message: the item has moved on
    item = (
        JobItem.objects.select_related("turn__sample__image")
        .annotate(
            job_state=F("job__state"),
            job_budget=F("job__budget"),
            job_created_at=F("job__created_at"),
            project_updated_at=F("job__project__updated_at"),
        )
        .get(pk=item_id)
    )
    job = _job_of(item)
    if job.state == Job.State.PAUSED:
        _set(item, token, state=JobItem.State.PENDING, token="", lease_until=None)
        return
    if job.state != Job.State.RUNNING:
        _set(item, token, state=JobItem.State.CANCELLED, lease_until=None)
        _finish_if_done(job)
        return
    gate = JobGate(job_id=job.pk, budget=job.budget)
    finished = True
    try:
        _perform(item, job, gate)
        _set(item, token, state=JobItem.State.DONE, error="", lease_until=None)
    except BudgetExhausted:
        finished = False
        _set(item, token, state=JobItem.State.PENDING, token="", lease_until=None)
        _pause_for_budget(job)
    except RateLimitWait as wait:
        finished = False
        _retry_later(item, token, wait.seconds + random.uniform(0, _RETRY_JITTER_SECONDS), error="")
    except LLMError as exc:
        finished = _after_llm_error(item, job, token, exc)
    except _Permanent as exc:
        _fail(item, job, token, str(exc), recorded=exc.recorded)
    except Exception as exc:  # a bug or a database hiccup: retry like a transient failure, then give up
        log.exception("job %s item %s failed unexpectedly", job.pk, item.pk)
        finished = _after_llm_error(
            item,
            job,
            token,
            LLMError(f"internal error: {type(exc).__name__}: {exc}"[:_INTERNAL_ERROR_MAX], retryable=True),
        )
    finally:
        gate.settle()
    if finished and not _fill(job, limit=1):
        _finish_if_done(job)


# What never changes about a job (its kind, rounds and model settings), and its project as last
# saved, kept by each worker process: loading them with every turn was a third of a turn's CPU.
# Bounded (the least recently used goes first) so a long-lived worker's memory does not grow
# with every job and project it has ever seen; clear_memos() forgets them all.
_JOB_FIXED = ("id", "project_id", "kind", "mode", "rounds", "llm_settings", "created_at")
# Jobs and projects a worker remembers: far more than run at once, few enough to be small.
_MEMO_SIZE = 1000
_fixed_jobs: BoundedCache[int, dict[str, Any]] = BoundedCache(_MEMO_SIZE)
_projects: BoundedCache[int, Project] = BoundedCache(_MEMO_SIZE)


def clear_memos() -> None:
    """Forget every remembered job and project (tests; a worker that must re-read everything)."""
    _fixed_jobs.clear()
    _projects.clear()


def _job_of(item: Any) -> Job:
    """The job as an item needs it: state, budget and the project's last change come with the item
    every time; the rest from memory, unless the job or the project is not the one remembered."""
    job_id = item.job_id
    fixed = _fixed_jobs.get(job_id)
    if fixed is None or fixed["created_at"] != item.job_created_at:  # an id reused after a restore
        fixed = _fixed_jobs.put(job_id, Job.objects.filter(pk=job_id).values(*_JOB_FIXED).get())
    job = Job(**fixed, state=item.job_state, budget=item.job_budget)
    project = _projects.get(fixed["project_id"])
    if project is None or project.updated_at != item.project_updated_at:
        project = _projects.put(fixed["project_id"], Project.objects.get(pk=fixed["project_id"]))
    job.project = project
    return job


def _perform(item: JobItem, job: Job, gate: JobGate) -> None:
    turn, sample = item.turn, item.turn.sample
    drafter = CallSettings.from_dict(job.llm_settings["drafter"])
    previous: list[Turn] | None = None if turn.index else []
    if job.kind == Job.Kind.RESPOND and turn.model_response is None:
        responder = CallSettings.from_dict(job.llm_settings["responder"])
        respond_turn(turn=turn, sample=sample, cs=responder, gate=gate, job_id=job.pk, previous=previous)
    if turn.model_response is None:
        raise _Permanent(f"turn {turn.index} of sample {sample.external_id} has no response to review")
    draft = draft_turn(
        turn=turn, sample=sample, project=job.project, cs=drafter, gate=gate, job_id=job.pk, previous=previous
    )
    if draft.status == CallStatus.FAILED:
        raise _Permanent(draft.error, recorded=True)
    if job.kind == Job.Kind.RESPOND and item.round < job.rounds:
        _next_round(item, job, turn, sample, draft.refinement)


def _next_round(item: JobItem, job: Job, turn: Turn, sample: Sample, refinement: str) -> None:
    """The DRESS loop: the refinement becomes the user's next message, for the next round."""
    with transaction.atomic():
        following, _ = Turn.objects.get_or_create(
            sample=sample, index=turn.index + 1, defaults={"user_message": refinement}
        )
        JobItem.objects.get_or_create(job=job, turn=following, defaults={"round": item.round + 1})


def _set(item: JobItem, held_token: str, /, **values: Any) -> int:
    """Update the item only while this run's token is still its own."""
    return JobItem.objects.filter(pk=item.pk, token=held_token).update(updated_at=timezone.now(), **values)


def _retry_later(
    item: JobItem, token: str, delay: float, *, error: str, attempt: bool = False, throttled: bool = False
) -> None:
    new_token = uuid.uuid4().hex
    now = timezone.now()
    changes: dict[str, Any] = {
        "state": JobItem.State.QUEUED,
        "token": new_token,
        "lease_until": now + timedelta(seconds=delay + settings.JOB_LEASE),
        "error": error,
    }
    if attempt:
        changes["attempts"] = F("attempts") + 1
    if throttled:
        changes["throttled"] = F("throttled") + 1
    if _set(item, token, **changes):
        send(LLM_ITEM_RUN, item.pk, new_token, countdown=delay)


def backoff(attempt: int) -> float:
    """Exponential backoff with jitter: base * 2^attempt, capped, times a random factor in [0.5, 1]."""
    delay = min(settings.LLM_BACKOFF_MAX, settings.LLM_BACKOFF_BASE * 2**attempt)
    return delay * random.uniform(0.5, 1.0)


def _after_llm_error(item: JobItem, job: Job, token: str, exc: LLMError) -> bool:
    """Retry or fail the item; True when it failed for good."""
    if exc.throttled:
        # A 429 is the server's pace, not a failure: it never uses up the retry budget.
        delay = (
            exc.retry_after if exc.retry_after is not None else backoff(min(item.throttled, _THROTTLE_BACKOFF_STEPS))
        )
        _retry_later(
            item,
            token,
            delay + random.uniform(0, _RETRY_JITTER_SECONDS),
            error=f"throttled: {exc.message}",
            throttled=True,
        )
        return False
    attempts = item.attempts + 1
    if exc.retryable and attempts < settings.LLM_MAX_ATTEMPTS:
        delay = max(backoff(item.attempts), exc.retry_after or 0.0)
        _retry_later(item, token, delay, error=f"attempt {attempts}: {exc.message}", attempt=True)
        return False
    reason = exc.message if not exc.retryable else f"gave up after {attempts} attempts: {exc.message}"
    _fail(item, job, token, reason)
    return True


def _fail(item: JobItem, job: Job, token: str, reason: str, *, recorded: bool = False) -> None:
    turn = item.turn
    record: type[Draft] | type[Generation] = Draft
    role = "drafter"
    if job.kind == Job.Kind.RESPOND and turn.model_response is None:
        record, role = Generation, "responder"
    if not recorded:
        failure_record(
            record, turn=turn, job_id=job.pk, cs=CallSettings.from_dict(job.llm_settings[role]), error=reason
        )
    _set(item, token, state=JobItem.State.FAILED, error=reason, lease_until=None, attempts=F("attempts") + 1)
    if job.kind == Job.Kind.RESPOND and item.round < job.rounds:
        Job.objects.filter(pk=job.pk).update(total=F("total") - (job.rounds - item.round))


def _pause_for_budget(job: Job) -> None:
    Job.objects.filter(pk=job.pk, state=Job.State.RUNNING).update(
        state=Job.State.PAUSED,
        stop_reason=f"Paused: the next call could pass the budget of ${job.budget}. Raise the budget to resume.",
    )


# --- the watcher -----------------------------------------------------------------------------


def job_watch(*, job_id: int) -> None:
    """Re-send items whose lease ran out, keep the window full, and finish the job when nothing is
    left. One chain per job: a second one finds the job freshly watched and stops."""
    now = timezone.now()
    interval = settings.JOB_WATCH_INTERVAL
    fresh = Q(watched_at__isnull=True) | Q(watched_at__lt=now - timedelta(seconds=0.8 * interval))
    active = (Job.State.RUNNING, Job.State.CANCELLING)
    if not Job.objects.filter(fresh, pk=job_id, state__in=active).update(watched_at=now):
        return
    job = Job.objects.get(pk=job_id)
    expired = JobItem.objects.filter(job=job, state__in=JobItem.IN_FLIGHT, lease_until__lt=now)
    if job.state == Job.State.CANCELLING:
        expired.update(state=JobItem.State.CANCELLED, token="", updated_at=now)
    else:
        for item_id, old_token in expired.values_list("pk", "token"):
            new_token = uuid.uuid4().hex
            lease = now + timedelta(seconds=settings.JOB_LEASE)
            if JobItem.objects.filter(pk=item_id, token=old_token).update(
                state=JobItem.State.QUEUED, token=new_token, lease_until=lease, updated_at=now
            ):
                log.warning("job %s: item %s was lost with its worker; sent again", job.pk, item_id)
                send(LLM_ITEM_RUN, item_id, new_token)
        _fill(job)
    if not _finish_if_done(job) and job.budget is None:
        _total_spending(job)  # finishing totals the job itself
    if Job.objects.filter(pk=job.pk, state__in=active).exists():
        send(JOB_WATCH, job.pk, countdown=interval)


def job_watch_kick(job: Job) -> None:
    """Start a watcher when none has looked lately (after a restart, or from the progress page)."""
    stale = timezone.now() - timedelta(seconds=_WATCHER_STALE_INTERVALS * settings.JOB_WATCH_INTERVAL)
    if job.state in (Job.State.RUNNING, Job.State.CANCELLING) and (job.watched_at is None or job.watched_at < stale):
        send(JOB_WATCH, job.pk)


# --- admin actions ---------------------------------------------------------------------------


def job_pause(*, job: Job) -> Job:
    if not Job.objects.filter(pk=job.pk, state__in=Job.states_allowing("pause")).update(
        state=Job.State.PAUSED, stop_reason="Paused."
    ):
        raise JobStateError(f"a {job.state} job cannot be paused")
    job.refresh_from_db()
    return job


def job_resume(*, job: Job, budget: Decimal | str | None = None) -> Job:
    changes: dict[str, Any] = {"state": Job.State.RUNNING, "stop_reason": "", "watched_at": None}
    if budget not in (None, ""):
        changes["budget"] = _budget(budget)
    if not Job.objects.filter(pk=job.pk, state__in=Job.states_allowing("resume")).update(**changes):
        raise JobStateError(f"a {job.state} job cannot be resumed")
    job.refresh_from_db()
    with transaction.atomic():
        if job.started_at is None:  # paused before its dispatcher ran
            Job.objects.filter(pk=job.pk).update(state=Job.State.QUEUED)
            send(JOB_DISPATCH, job.pk)
        else:
            _fill(job)
            send(JOB_WATCH, job.pk)
    job.refresh_from_db()
    return job


def job_cancel(*, job: Job) -> Job:
    """Stop launching calls: what is pending or queued is cancelled now, calls in flight finish."""
    now = timezone.now()
    with transaction.atomic():
        if not Job.objects.filter(pk=job.pk, state__in=Job.states_allowing("cancel")).update(
            state=Job.State.CANCELLING, stop_reason="Cancelled."
        ):
            raise JobStateError(f"a {job.state} job cannot be cancelled")
        JobItem.objects.filter(job=job, state__in=(JobItem.State.PENDING, JobItem.State.QUEUED)).update(
            state=JobItem.State.CANCELLED, token="", updated_at=now
        )
    job.refresh_from_db()
    _finish_if_done(job)
    if job.mode == Job.Mode.BATCH:  # its remote batches are cancelled by a one-off look
        send(JOB_BATCH, job.pk, False)
    if job.started_at is None:
        Job.objects.filter(pk=job.pk, state=Job.State.CANCELLING).update(state=Job.State.CANCELLED, finished_at=now)
    else:
        send(JOB_WATCH, job.pk)
    job.refresh_from_db()
    return job


def job_retry_failed(*, job: Job) -> int:
    """Put the failed items back in the queue; earlier failed drafts stay as history."""
    if "retry" not in job.allowed_actions:
        raise JobStateError(f"a {job.state} job's failures cannot be retried")
    with transaction.atomic():
        failed = JobItem.objects.select_for_update().filter(job=job, state=JobItem.State.FAILED)
        rounds_back = (
            sum(job.rounds - r for r in failed.values_list("round", flat=True)) if job.kind == Job.Kind.RESPOND else 0
        )
        count = failed.update(state=JobItem.State.PENDING, attempts=0, error="", token="", updated_at=timezone.now())
        if not count:
            return 0
        Job.objects.filter(pk=job.pk).update(total=F("total") + rounds_back)
        Job.objects.filter(pk=job.pk, state__in=Job.FINAL_STATES).update(
            state=Job.State.RUNNING, finished_at=None, stop_reason="", watched_at=None
        )
        job.refresh_from_db()
        _fill(job)
        send(JOB_WATCH, job.pk)
    return count


ACTIONS = Job.ACTIONS


def job_act(*, job: Job, action: str, budget: Decimal | str | None = None) -> int | None:
    """One admin action by name, for the page and the API alike; ``retry`` returns how many items it
    queued again. JobStateError (a Conflict) when the job's state refuses it, InvalidInput for a bad
    budget, NotFound for an action that does not exist."""
    if action == "pause":
        job_pause(job=job)
    elif action == "resume":
        job_resume(job=job, budget=budget)
    elif action == "cancel":
        job_cancel(job=job)
    elif action == "retry":
        return job_retry_failed(job=job)
    else:
        raise NotFound(f"No action {action[:_ECHO_MAX]!r}; known: {', '.join(ACTIONS)}.")
    return None
