"""What a job will cost before anything is sent: its calls, input and output tokens, cost and time.

- **Calls.** A draft job makes one call per turn it selects; a respond job, per selected sample and
  round, one call to the model under study and one to draft feedback on its answer.
- **Input tokens.** The prompts are rendered exactly as the job will send them and counted with the
  model's tokenizer where one is available offline, else with the rate limit's estimate
  (``feedback.drafting.tokens``; ``tokenizer`` says which). Up to ``PROMPTS_RENDERED`` prompts are
  rendered: all of a small job, a seeded random sample of a large one, scaled to the whole (said in
  ``rendered``). A respond job's later rounds carry the earlier answers and refinements: each round
  adds the expected answer and ``REFINEMENT_TOKENS`` to both prompts.
- **Output tokens.** The mean of the project's last ``HISTORY`` successful calls of the same model
  and role where there are at least ``HISTORY_MIN``, else ``DEFAULT_OUTPUT`` (said in ``output``).
- **Cost** at the model's prices (``ANNOTATOR_LLM_PRICES``; a model without one is said to cost 0),
  times ``ANNOTATOR_LLM_BATCH_PRICE`` for a job in batch mode.
- **Time** at the connection's rate limit: the larger of calls / rpm and tokens / tpm, per
  connection (roles on the same URL share its bucket); none when the connection has no limit, nor
  in batch mode, where the provider answers within its completion window.
"""

from __future__ import annotations

import random
from decimal import Decimal
from statistics import fmean
from typing import Any

from django.conf import settings

from feedback.drafting import connections
from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.drafting.pricing import cost_of, price_of
from feedback.drafting.prompts import feedback_messages, response_messages, template_for
from feedback.drafting.schema import feedback_schema
from feedback.drafting.service import CallSettings
from feedback.drafting.tokens import counter_for
from feedback.jobs.models import Job
from feedback.models import Project, Sample, Turn

from .selection import Selection, samples_to_respond, turns_to_draft

PROMPTS_RENDERED = 200
HISTORY = 500
HISTORY_MIN = 10
DEFAULT_OUTPUT = {"drafter": 400, "responder": 200}
REFINEMENT_TOKENS = 120
# Stands for an image in a counted prompt: the counter charges a fixed number of tokens per image
# and never reads it, so a dry run opens no image file.
_IMAGE = "data:image/png;base64,"


def job_estimate(
    *,
    project: Project,
    kind: str,
    selection: Selection,
    rounds: int,
    llm_settings: dict[str, Any],
    mode: str = Job.Mode.LIVE,
) -> dict[str, Any]:
    """The estimate of a validated job request (feedback.jobs.service.job_request), JSON-ready."""
    drafter = CallSettings.from_dict(llm_settings["drafter"])
    if kind == Job.Kind.DRAFT:
        turns = turns_to_draft(project, selection)
        ids = list(turns.values_list("pk", flat=True))
        chosen = _sample(ids)
        picked = Turn.objects.filter(pk__in=chosen).select_related("sample__image", "sample__project")
        prompts = [_feedback_prompt(project, turn, drafter, answer=None) for turn in picked]
        roles = [_role("drafter", drafter, project, calls=len(ids), prompts=prompts, growth=0, rounds=1)]
        units, rendered = len(ids), len(chosen)
    else:
        responder = CallSettings.from_dict(llm_settings["responder"])
        sample_ids = list(samples_to_respond(project, selection).values_list("pk", flat=True))
        chosen = _sample(sample_ids)
        answer_tokens = _output_tokens(project, responder)[0]
        ask, review = [], []
        for sample in Sample.objects.filter(pk__in=chosen).select_related("image", "project"):
            turn = sample.turns.order_by("-index").first()
            if turn is None:
                continue
            ask.append(_respond_prompt(turn, responder))
            review.append(_feedback_prompt(project, turn, drafter, answer="word " * answer_tokens))
        growth = answer_tokens + REFINEMENT_TOKENS
        calls = len(sample_ids) * rounds
        roles = [
            _role("responder", responder, project, calls=calls, prompts=ask, growth=growth, rounds=rounds),
            _role("drafter", drafter, project, calls=calls, prompts=review, growth=growth, rounds=rounds),
        ]
        units, rendered = len(sample_ids), len(chosen)
    if mode == Job.Mode.BATCH:
        factor = Decimal(str(settings.LLM_BATCH_PRICE))
        for r in roles:
            r["cost"] = str(Decimal(r["cost"]) * factor)
    return {
        "mode": mode,
        "calls": sum(r["calls"] for r in roles),
        "tokens_in": sum(r["tokens_in"] for r in roles),
        "tokens_out": sum(r["tokens_out"] for r in roles),
        "cost": str(sum((Decimal(r["cost"]) for r in roles), Decimal(0))),
        "seconds": None if mode == Job.Mode.BATCH else _seconds(roles),
        "selected": units,
        "rendered": rendered,
        "roles": roles,
    }


def _sample(ids: list[int]) -> list[int]:
    if len(ids) <= PROMPTS_RENDERED:
        return ids
    return random.Random(0).sample(ids, PROMPTS_RENDERED)


def _feedback_prompt(project: Any, turn: Turn, cs: CallSettings, *, answer: str | None) -> list[dict[str, Any]]:
    if answer is not None:  # a respond job's turn, with the answer it will get
        turn = Turn(sample=turn.sample, index=turn.index, user_message=turn.user_message, model_response=answer)
    previous = list(Turn.objects.filter(sample_id=turn.sample_id, index__lt=turn.index).order_by("index"))
    return feedback_messages(
        template=template_for(project, cs.prompt_version),
        project=project,
        sample=turn.sample,
        turn=turn,
        previous=previous,
        schema=feedback_schema(list(project.criteria), project.score_min, project.score_max),
        image_url=_IMAGE if cs.send_image and turn.sample.image_id else None,
    )


def _respond_prompt(turn: Turn, cs: CallSettings) -> list[dict[str, Any]]:
    previous = list(Turn.objects.filter(sample_id=turn.sample_id, index__lt=turn.index).order_by("index"))
    image = _IMAGE if cs.send_image and turn.sample.image_id else None
    return response_messages(previous=previous, turn=turn, image_url=image)


def _output_tokens(project: Any, cs: CallSettings) -> tuple[int, str]:
    """Expected output tokens of one call, and where the figure comes from."""
    record = Draft if cs.role == "drafter" else Generation
    recent = (
        record.objects.filter(turn__sample__project=project, model=cs.model)
        .exclude(status=CallStatus.FAILED)
        .order_by("-pk")
        .values_list("tokens_out", "calls")[:HISTORY]
    )
    per_call = [out / max(calls, 1) for out, calls in recent if out]
    if len(per_call) >= HISTORY_MIN:
        return round(fmean(per_call)), f"mean of the project's last {len(per_call)} calls of {cs.model}"
    default = DEFAULT_OUTPUT[cs.role]
    return default, f"assumed {default} a call: fewer than {HISTORY_MIN} earlier calls of {cs.model} to go by"


def _role(
    role: str,
    cs: CallSettings,
    project: Any,
    *,
    calls: int,
    prompts: list[list[dict[str, Any]]],
    growth: int,
    rounds: int,
) -> dict[str, Any]:
    counter = counter_for(cs.model)
    per_prompt = fmean(counter.count(p) for p in prompts) if prompts else 0.0
    # Round k's prompt carries k - 1 earlier exchanges: on average (rounds - 1) / 2 of them.
    per_call_in = per_prompt + growth * (rounds - 1) / 2
    out_per_call, output_basis = _output_tokens(project, cs)
    tokens_in = round(per_call_in * calls)
    tokens_out = min(out_per_call, cs.max_tokens) * calls
    price_in, price_out = price_of(cs.model)
    return {
        "role": role,
        "connection": cs.connection,
        "base_url": cs.base_url,
        "model": cs.model,
        "calls": calls,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost": str(cost_of(cs.model, tokens_in, tokens_out)),
        "priced": bool(price_in or price_out),
        "tokenizer": counter.method,
        "output": output_basis,
    }


def _seconds(roles: list[dict[str, Any]]) -> float | None:
    """Time at the rate limits: per connection URL, the larger of its calls and tokens over its limits."""
    by_url: dict[str, dict[str, Any]] = {}
    for r in roles:
        group = by_url.setdefault(r["base_url"], {"calls": 0, "tokens": 0, "connection": r["connection"]})
        group["calls"] += r["calls"]
        group["tokens"] += r["tokens_in"]
    longest = 0.0
    for group in by_url.values():
        conn = connections.registry().get(group["connection"])
        rpm = conn.requests_per_minute if conn else settings.LLM_REQUESTS_PER_MINUTE
        tpm = conn.tokens_per_minute if conn else settings.LLM_TOKENS_PER_MINUTE
        if not rpm and not tpm:
            return None
        minutes = max(group["calls"] / rpm if rpm else 0.0, group["tokens"] / tpm if tpm else 0.0)
        longest = max(longest, minutes * 60)
    return round(longest, 1)


def compared(job: Job) -> dict[str, Any] | None:
    """The estimate beside what the job spent, once it has ended: each figure's error in percent."""
    if not job.estimate or job.state not in Job.FINAL_STATES:
        return None
    # A call of the estimate is one draft or generation record (its re-ask, if any, inside it).
    calls = Draft.objects.filter(job=job).count() + Generation.objects.filter(job=job).count()
    actual = {"calls": calls, "tokens_in": job.tokens_in, "tokens_out": job.tokens_out, "cost": str(job.cost)}
    out: dict[str, Any] = {"estimate": {k: job.estimate.get(k) for k in actual}, "actual": actual, "error_percent": {}}
    rows = []
    for key, real in actual.items():
        guess = Decimal(str(job.estimate.get(key) or 0))
        value = Decimal(str(real))
        error = None if not value else round(float((guess - value) / value * 100), 1)
        out["error_percent"][key] = error
        rows.append({"label": _LABELS[key], "estimate": job.estimate.get(key), "actual": real, "error": error})
    out["rows"] = rows
    return out


_LABELS = {"calls": "Calls", "tokens_in": "Input tokens", "tokens_out": "Output tokens", "cost": "Cost (US$)"}
