"""Trials: launch one, run its items through the drafting path jobs use, and promote the winner.

A trial drafts every turn of its set once per variant. Each (variant, turn) is one TrialDraft row,
made when the trial is created and sent as one task by name (``TRIAL_ITEM_RUN``, the ``llm``
queue), at most ``JOB_WINDOW`` of a trial on the broker at once (each finished row sends the next).
The task drafts with ``drafting.service.draft_values`` (the same prompt, rate limit, parser, repair
and re-ask as a job's draft) and writes the result on its own row, never a Draft: the review queue,
the project's drafts and its releases never see a trial. Completion is read from the rows' states.
A message runs its row only while the row holds that message's token, and each row in flight has
a lease: a watcher (``TRIAL_WATCH``, every ``JOB_WATCH_INTERVAL`` while the trial runs) sends a
row whose lease ran out again under a new token (its worker was lost), so a row is drafted once
whatever happens to the workers, and the stale message does nothing.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from feedback.drafting.client import LLMError
from feedback.drafting.models import CallStatus
from feedback.drafting.ratelimit import RateLimitWait
from feedback.drafting.service import CallGate, CallSettings, draft_values, drafter_settings
from feedback.errors import Conflict, InvalidInput, NotFound
from feedback.jobs.estimate import job_estimate
from feedback.jobs.models import Job
from feedback.jobs.selection import Selection, whole_number
from feedback.jobs.service import backoff
from feedback.models import EXTERNAL_ID_MAX, Project, Sample, Turn
from feedback.projects.service import project_update
from feedback.review.models import Assignment
from feedback.sending import send, send_each

from .models import Trial, TrialDraft, TrialSet, TrialVariant

log = logging.getLogger(__name__)

TRIAL_ITEM_RUN = "feedback.trials.tasks.trial_item_run"
TRIAL_WATCH = "feedback.trials.tasks.trial_watch"

# Bounds of a trial: it is a small comparison before a bulk job, not a job.
MAX_SAMPLES = 200
MIN_VARIANTS = 2
MAX_VARIANTS = 6
# Drafts a trial may ask for (turns of its set times variants).
MAX_DRAFTS = 2000
NAME_MAX = 100
SEED_MAX = 2**31 - 1
# The settings a variant may name; anything else is refused, naming it.
VARIANT_FIELDS = ("prompt_version", "connection", "model", "temperature", "send_image")
# Characters of an unknown name echoed back in an error.
_ECHO_MAX = 50
# Characters of an error kept on a failed trial draft.
_ERROR_MAX = 1000
# Seconds added to a running row's lease for the database writes around its calls.
_LEASE_MARGIN_SECONDS = 10
# Watch intervals without a look after which a trial's watcher is presumed lost and another started.
_WATCHER_STALE_INTERVALS = 3


@dataclass(frozen=True)
class TrialRequest:
    project: Project
    name: str
    set_kind: str
    set_size: int | None
    seed: int
    sample_ids: list[int]
    variants: list[dict[str, Any]]
    turn_ids: list[int]


def _set_of(project: Project, given: Any) -> tuple[str, int | None, int, list[int]]:
    """The trial set: kind, N, seed and the chosen samples' ids. Errors name ``set.<field>``."""
    if not isinstance(given, dict):
        raise InvalidInput("set", "an object: {kind: samples | random | reviewed, ...}")
    unknown = sorted(set(given) - {"kind", "samples", "n", "seed"})
    if unknown:
        raise InvalidInput(f"set.{str(unknown[0])[:_ECHO_MAX]}", "not a field of a trial set")
    kind = given.get("kind")
    if kind not in TrialSet.values:
        raise InvalidInput("set.kind", f"{str(kind)[:_ECHO_MAX]!r} is not one of {', '.join(TrialSet.values)}")
    seed = whole_number("set.seed", given.get("seed"), low=0, high=SEED_MAX) or 0
    n = whole_number("set.n", given.get("n"), low=1, high=MAX_SAMPLES)
    if kind == TrialSet.SAMPLES:
        ids = given.get("samples")
        if isinstance(ids, str):
            ids = [part for part in ids.replace(",", " ").split() if part]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise InvalidInput("set.samples", "a list of sample ids")
        if len(ids) > MAX_SAMPLES:
            raise InvalidInput("set.samples", f"at most {MAX_SAMPLES} samples (got {len(ids):,})")
        for position, external in enumerate(ids):
            if not external or len(external) > EXTERNAL_ID_MAX:
                raise InvalidInput("set.samples", f"id {position + 1} is empty or too long")
        found = dict(Sample.objects.filter(project=project, external_id__in=ids).values_list("external_id", "pk"))
        missing = [i for i in ids if i not in found]
        if missing:
            raise InvalidInput("set.samples", f"no sample {missing[0][:_ECHO_MAX]!r} in this project")
        return kind, None, seed, list(dict.fromkeys(found[i] for i in ids))
    if n is None:
        raise InvalidInput("set.n", f"how many samples: 1 to {MAX_SAMPLES}")
    pool = Sample.objects.filter(project=project)
    if kind == TrialSet.REVIEWED:
        submitted = Assignment.objects.filter(sample=OuterRef("pk"), state=Assignment.State.SUBMITTED)
        pool = pool.filter(Exists(submitted))
    candidates = list(pool.order_by("pk").values_list("pk", flat=True))
    if not candidates:
        raise InvalidInput(
            "set.kind", "no reviewed samples in this project" if kind == TrialSet.REVIEWED else "no samples"
        )
    chosen = random.Random(seed).sample(candidates, min(n, len(candidates)))
    return kind, n, seed, sorted(chosen)


def _variants_of(project: Project, given: Any, *, free_url: bool) -> list[dict[str, Any]]:
    if not isinstance(given, list):
        raise InvalidInput("variants", f"a list of {MIN_VARIANTS} to {MAX_VARIANTS} variants")
    if not MIN_VARIANTS <= len(given) <= MAX_VARIANTS:
        raise InvalidInput("variants", f"from {MIN_VARIANTS} to {MAX_VARIANTS} variants (got {len(given)})")
    out: list[dict[str, Any]] = []
    for position, variant in enumerate(given):
        where = f"variants.{position}"
        if not isinstance(variant, dict):
            raise InvalidInput(where, "an object of drafting settings")
        unknown = sorted(set(variant) - set(VARIANT_FIELDS))
        if unknown:
            raise InvalidInput(
                f"{where}.{str(unknown[0])[:_ECHO_MAX]}", f"not a variant setting ({', '.join(VARIANT_FIELDS)})"
            )
        try:
            settings_ = drafter_settings(project, free_url=free_url, **variant).as_dict()
        except InvalidInput as exc:
            raise exc.nested(where) from None
        if settings_ in out:
            raise InvalidInput(where, f"the same settings as variant {chr(ord('A') + out.index(settings_))}")
        out.append(settings_)
    return out


def trial_request(*, project: Project, set: Any, variants: Any, name: Any = "", user: Any = None) -> TrialRequest:
    """Validate a trial: its set, its variants (prompt version, connection and model, temperature,
    image) and its size; an InvalidInput names the field (``set.n``, ``variants.1.model``)."""
    if name is None:
        name = ""
    if not isinstance(name, str) or len(name) > NAME_MAX:
        raise InvalidInput("name", f"text of at most {NAME_MAX} characters")
    kind, n, seed, sample_ids = _set_of(project, set)
    free_url = user is None or bool(getattr(user, "is_superuser", False))
    chosen = _variants_of(project, variants, free_url=free_url)
    turn_ids = list(
        Turn.objects.filter(sample_id__in=sample_ids, model_response__isnull=False)
        .order_by("sample_id", "index")
        .values_list("pk", flat=True)[: MAX_DRAFTS + 1]
    )
    if not turn_ids:
        raise InvalidInput("set", "none of these samples has a response to draft feedback on")
    if len(turn_ids) * len(chosen) > MAX_DRAFTS:
        raise InvalidInput(
            "set",
            f"{len(turn_ids):,}+ turns times {len(chosen)} variants is more than {MAX_DRAFTS:,} drafts; "
            "choose fewer samples",
        )
    return TrialRequest(project, name.strip(), kind, n, seed, sample_ids, chosen, turn_ids)


def trial_dry_run(req: TrialRequest) -> dict[str, Any]:
    """What a validated trial (trial_request) would cost, variant by variant, with the jobs' dry run
    (feedback.jobs.estimate: the prompts rendered and counted, the connection's prices); nothing is
    stored or sent."""
    external = list(Sample.objects.filter(pk__in=req.sample_ids).values_list("external_id", flat=True))
    selection = Selection(status="all", sample_ids=external)
    variants = []
    for position, variant in enumerate(req.variants):
        estimate = job_estimate(
            project=req.project, kind=Job.Kind.DRAFT, selection=selection, rounds=1, llm_settings={"drafter": variant}
        )
        variants.append({"label": chr(ord("A") + position), **estimate})
    return {
        "calls": sum(v["calls"] for v in variants),
        "tokens_in": sum(v["tokens_in"] for v in variants),
        "tokens_out": sum(v["tokens_out"] for v in variants),
        "cost": str(sum((Decimal(v["cost"]) for v in variants), Decimal(0))),
        "variants": variants,
    }


def trial_create(*, project: Project, set: Any, variants: Any, name: Any = "", user: Any = None) -> Trial:
    """Validate (trial_request) and start a trial: one row per variant and turn, each sent by name
    once the transaction commits."""
    req = trial_request(project=project, set=set, variants=variants, name=name, user=user)
    with transaction.atomic():
        trial = Trial.objects.create(
            project=project,
            name=req.name,
            set_kind=req.set_kind,
            set_size=req.set_size,
            seed=req.seed,
            sample_ids=req.sample_ids,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        rows = TrialVariant.objects.bulk_create(
            TrialVariant(trial=trial, position=i, llm_settings=s) for i, s in enumerate(req.variants)
        )
        # Variant by variant for each turn, so that a window in flight holds every variant alike.
        TrialDraft.objects.bulk_create(
            TrialDraft(variant=variant, turn_id=turn_id) for turn_id in req.turn_ids for variant in rows
        )
        _fill(trial.pk)
        send(TRIAL_WATCH, trial.pk, countdown=settings.JOB_WATCH_INTERVAL)
    return trial


def _fill(trial_id: int, limit: int | None = None) -> int:
    """Send pending rows until ``JOB_WINDOW`` of the trial are in flight (or ``limit`` more), each
    under a token and a lease, once the transaction commits. Returns how many."""
    rows = TrialDraft.objects.filter(variant__trial_id=trial_id)
    if limit is None:
        limit = settings.JOB_WINDOW - rows.filter(state__in=TrialDraft.IN_FLIGHT).count()
    sent: list[tuple[int, str]] = []
    if limit <= 0:
        return 0
    lease = timezone.now() + timedelta(seconds=settings.JOB_LEASE)
    for row_id in rows.filter(state=TrialDraft.State.PENDING).order_by("pk").values_list("pk", flat=True)[:limit]:
        token = uuid.uuid4().hex
        # A row another process sent meanwhile is no longer pending: it is not sent twice.
        if TrialDraft.objects.filter(pk=row_id, state=TrialDraft.State.PENDING).update(
            state=TrialDraft.State.QUEUED, token=token, lease_until=lease, updated_at=timezone.now()
        ):
            sent.append((row_id, token))
    send_each(TRIAL_ITEM_RUN, sent)
    return len(sent)


def trial_item_run(*, draft_id: int, token: str) -> None:
    """Draft one turn with one variant. A stale message (its token replaced) does nothing."""
    now = timezone.now()
    mine = TrialDraft.objects.filter(pk=draft_id, token=token, state__in=TrialDraft.IN_FLIGHT)
    claimed = mine.filter(variant__trial__state=Trial.State.RUNNING).update(
        state=TrialDraft.State.RUNNING, updated_at=now, lease_until=now + _running_lease()
    )
    if not claimed:
        # Sent again just as its trial was cancelled (``_again`` racing ``trial_cancel``): it goes with it.
        mine.filter(state=TrialDraft.State.QUEUED).exclude(variant__trial__state=Trial.State.RUNNING).update(
            state=TrialDraft.State.CANCELLED, token="", lease_until=None, updated_at=now
        )
        return
    row = TrialDraft.objects.select_related("variant__trial__project", "turn__sample__image").get(pk=draft_id)
    project = row.variant.trial.project
    cs = CallSettings.from_dict(row.variant.llm_settings)
    gate = CallGate()
    turn = row.turn
    try:
        values = draft_values(turn=turn, sample=turn.sample, project=project, cs=cs, gate=gate)
    except RateLimitWait as wait:
        _again(row, token, wait.seconds, error="")
        return
    except LLMError as exc:
        attempts = row.attempts + 1
        if exc.throttled:
            _again(row, token, exc.retry_after if exc.retry_after is not None else backoff(0), error=exc.message)
            return
        if exc.retryable and attempts < settings.LLM_MAX_ATTEMPTS:
            _again(row, token, max(backoff(row.attempts), exc.retry_after or 0.0), error=exc.message, attempt=True)
            return
        reason = exc.message if not exc.retryable else f"gave up after {attempts} attempts: {exc.message}"
        _store(
            row,
            token,
            state=TrialDraft.State.FAILED,
            status=CallStatus.FAILED,
            error=reason[:_ERROR_MAX],
            model=cs.model,
            attempts=attempts,
            tokens_in=gate.tokens_in,
            tokens_out=gate.tokens_out,
            cost=gate.cost,
        )
        return
    except InvalidInput as exc:  # the turn cannot be drafted as it stands
        _store(
            row,
            token,
            state=TrialDraft.State.FAILED,
            status=CallStatus.FAILED,
            error=str(exc)[:_ERROR_MAX],
            model=cs.model,
        )
        return
    values.pop("endpoint", None)
    values.pop("params", None)
    values["error"] = str(values.get("error", ""))[:_ERROR_MAX]
    state = TrialDraft.State.FAILED if values["status"] == CallStatus.FAILED else TrialDraft.State.DONE
    _store(row, token, state=state, attempts=row.attempts + 1, **values)


def trial_cancel(*, trial: Trial) -> Trial:
    """Stops a running trial, so that it spends nothing more: its drafts not yet under way are
    cancelled (a message already queued for one finds it so and does nothing); those under way
    finish and are kept (none is sent again, even after a rate limit), and the figures compare
    whatever came back. Only a running trial can be cancelled (Conflict)."""
    with transaction.atomic():
        locked = Trial.objects.select_for_update().get(pk=trial.pk)
        if locked.state != Trial.State.RUNNING:
            raise Conflict(f"the trial is {locked.get_state_display().lower()}: only a running trial can be cancelled")
        now = timezone.now()
        rows = TrialDraft.objects.filter(variant__trial_id=locked.pk)
        # Not under way, or under way no more (its worker lost: past its lease, no watcher will send it again).
        rows.filter(
            Q(state__in=(TrialDraft.State.PENDING, TrialDraft.State.QUEUED))
            | Q(state=TrialDraft.State.RUNNING, lease_until__lt=now)
        ).update(state=TrialDraft.State.CANCELLED, token="", lease_until=None, updated_at=now)
        locked.state, locked.finished_at = Trial.State.CANCELLED, now
        locked.save(update_fields=["state", "finished_at"])
    return locked


def _again(row: TrialDraft, token: str, delay: float, *, error: str, attempt: bool = False) -> None:
    new_token = uuid.uuid4().hex
    changes: dict[str, Any] = {
        "state": TrialDraft.State.QUEUED,
        "token": new_token,
        "error": error[:_ERROR_MAX],
        "lease_until": timezone.now() + timedelta(seconds=delay + settings.JOB_LEASE),
    }
    if attempt:
        changes["attempts"] = row.attempts + 1
    mine = TrialDraft.objects.filter(pk=row.pk, token=token)
    with transaction.atomic():
        if mine.filter(variant__trial__state=Trial.State.RUNNING).update(updated_at=timezone.now(), **changes):
            send(TRIAL_ITEM_RUN, row.pk, new_token, countdown=delay + random.uniform(0, 0.5))
        else:  # its trial was cancelled meanwhile: it is not tried again
            mine.update(state=TrialDraft.State.CANCELLED, token="", lease_until=None, updated_at=timezone.now())


def _store(row: TrialDraft, token: str, **values: Any) -> None:
    with transaction.atomic():
        stored = TrialDraft.objects.filter(pk=row.pk, token=token, state=TrialDraft.State.RUNNING).update(
            token="", lease_until=None, updated_at=timezone.now(), **values
        )
        if stored and not _fill(row.variant.trial_id, limit=1):
            _finish_if_done(row.variant.trial_id)


def _finish_if_done(trial_id: int) -> None:
    if TrialDraft.objects.filter(variant__trial_id=trial_id, state__in=TrialDraft.OPEN).exists():
        return
    Trial.objects.filter(pk=trial_id, state=Trial.State.RUNNING).update(
        state=Trial.State.COMPLETED, finished_at=timezone.now()
    )


def _running_lease() -> timedelta:
    # A call, its re-ask, the longest rate-limit wait and a margin for the database writes (as a job's item).
    return timedelta(seconds=2 * settings.LLM_TIMEOUT + settings.RATE_LIMIT_MAX_WAIT + _LEASE_MARGIN_SECONDS)


def trial_watch(*, trial_id: int) -> None:
    """Send again the rows whose lease ran out (their worker was lost), finish the trial when no row
    is open, and look again in an interval while it runs. One chain per trial: a second finds the
    trial freshly watched and stops."""
    now = timezone.now()
    interval = settings.JOB_WATCH_INTERVAL
    fresh = Q(watched_at__isnull=True) | Q(watched_at__lt=now - timedelta(seconds=0.8 * interval))
    if not Trial.objects.filter(fresh, pk=trial_id, state=Trial.State.RUNNING).update(watched_at=now):
        return
    expired = TrialDraft.objects.filter(variant__trial_id=trial_id, state__in=TrialDraft.IN_FLIGHT, lease_until__lt=now)
    for row_id, old_token in expired.values_list("pk", "token"):
        new_token = uuid.uuid4().hex
        lease = now + timedelta(seconds=settings.JOB_LEASE)
        # Still expired: a worker that claimed the row meanwhile gave it a fresh lease, and keeps it.
        if TrialDraft.objects.filter(pk=row_id, token=old_token, lease_until__lt=now).update(
            state=TrialDraft.State.QUEUED, token=new_token, lease_until=lease, updated_at=now
        ):
            log.warning("trial %s: draft %s was lost with its worker; sent again", trial_id, row_id)
            send(TRIAL_ITEM_RUN, row_id, new_token)
    _fill(trial_id)
    _finish_if_done(trial_id)
    if Trial.objects.filter(pk=trial_id, state=Trial.State.RUNNING).exists():
        send(TRIAL_WATCH, trial_id, countdown=interval)


def trial_watch_kick(trial: Trial) -> None:
    """Start a watcher when none has looked lately (after a restart, or from the trial's page)."""
    stale = timezone.now() - timedelta(seconds=_WATCHER_STALE_INTERVALS * settings.JOB_WATCH_INTERVAL)
    if trial.state == Trial.State.RUNNING and (trial.watched_at is None or trial.watched_at < stale):
        send(TRIAL_WATCH, trial.pk)


def running_trials() -> list[int]:
    return list(Trial.objects.filter(state=Trial.State.RUNNING).values_list("pk", flat=True))


def trial_get(project: Project, trial_id: Any) -> Trial:
    number = whole_number("trial", trial_id, low=1, high=2**63 - 1)
    trial = Trial.objects.filter(project=project, pk=number).first() if number else None
    if trial is None:
        raise NotFound("No such trial in this project.")
    return trial


def variant_get(trial: Trial, label: Any) -> TrialVariant:
    for variant in trial.variants.all():
        if isinstance(label, str) and variant.label == label.strip().upper():
            return variant
    raise NotFound(f"No variant {str(label)[:_ECHO_MAX]!r} in this trial.")


def trial_promote(*, trial: Trial, variant: TrialVariant) -> Project:
    """Make the variant the project's default: its prompt version, connection, model and temperature
    (through the project's settings, checked as any change of them is)."""
    if variant.trial_id != trial.pk:
        raise NotFound("No such variant in this trial.")
    if trial.state == Trial.State.CANCELLED:
        raise Conflict("the trial was cancelled before every draft was in: run a trial to its end to promote a variant")
    if trial.state != Trial.State.COMPLETED:
        raise Conflict("the trial is still running: promote a variant once every draft is in")
    cs = CallSettings.from_dict(variant.llm_settings)
    if not cs.connection:
        raise InvalidInput("variant", "a variant with a free-form URL cannot be a project's default; name a connection")
    project = trial.project
    with transaction.atomic():
        project = project_update(
            project=project,
            values={
                "prompt_version": cs.prompt_version,
                "llm_connection": cs.connection,
                "llm_model": cs.model,
                "llm_temperature": cs.temperature,
            },
        )
        Trial.objects.filter(pk=trial.pk).update(promoted=variant, promoted_at=timezone.now())
    trial.refresh_from_db()
    return project
