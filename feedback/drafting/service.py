"""Draft feedback for one turn, and generate the model's response for one turn.

Both build their prompt, pass every call through a CallGate (the global rate limit, and a job's
budget), and store an immutable record of what came back. A transport failure raises LLMError
for the job layer to retry; an answer that cannot be used after one re-ask is stored as a
failed draft with the reason, its raw text kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from feedback.models import CallStatus, Draft, Generation, Project, Sample, Turn

from . import ratelimit
from .client import ChatResult, LLMError, chat
from .pricing import cost_of
from .prompts import estimate_tokens, feedback_messages, image_data_url, response_messages, template_for
from .schema import ParsedFeedback, ParseError, feedback_schema, parse_feedback, response_format

STRUCTURED_MODES = ("json_schema", "json_object", "none")
REASK = "Your answer could not be used: {error}. Reply again with only the JSON object that the schema describes."


@dataclass(frozen=True)
class CallSettings:
    """How to call a model. Stored with jobs and drafts; the key is looked up by ``role`` at call time."""

    base_url: str
    model: str
    temperature: float = 0.2
    max_tokens: int = 1024
    timeout: float = 60.0
    structured: str = "json_schema"
    send_image: bool = False
    prompt_version: str = "v1"
    role: str = "drafter"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallSettings:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def api_key(self) -> str:
        return settings.RESPONDER_API_KEY if self.role == "responder" else settings.LLM_API_KEY

    def request_params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "structured": self.structured,
            "send_image": self.send_image,
            "timeout": self.timeout,
        }


def drafter_settings(project: Project, **overrides: Any) -> CallSettings:
    base = CallSettings(
        base_url=project.llm_endpoint or settings.LLM_BASE_URL,
        model=project.llm_model or settings.LLM_MODEL,
        temperature=project.llm_temperature,
        max_tokens=settings.LLM_MAX_TOKENS,
        timeout=settings.LLM_TIMEOUT,
        prompt_version=project.prompt_version,
    )
    return validated(CallSettings.from_dict({**base.as_dict(), **_given(overrides)}))


def responder_settings(**overrides: Any) -> CallSettings:
    base = CallSettings(
        base_url=settings.RESPONDER_BASE_URL,
        model=settings.RESPONDER_MODEL,
        temperature=0.2,
        max_tokens=settings.LLM_MAX_TOKENS,
        timeout=settings.LLM_TIMEOUT,
        structured="none",
        send_image=True,
        role="responder",
    )
    return validated(CallSettings.from_dict({**base.as_dict(), **_given(overrides)}))


def _given(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if v is not None and v != ""}


def validated(cs: CallSettings) -> CallSettings:
    """Refuse settings that could only fail later, naming the field."""
    if not cs.base_url.startswith(("http://", "https://")):
        raise ValueError(f"endpoint: {cs.base_url!r} is not an http(s) URL")
    if "@" in cs.base_url.split("//", 1)[1].split("/", 1)[0]:
        raise ValueError("endpoint: credentials do not belong in the URL; set the key in the environment")
    if not cs.model:
        raise ValueError("model: required")
    if not 0 <= cs.temperature <= 2:
        raise ValueError(f"temperature: {cs.temperature} is outside 0-2")
    if not 1 <= cs.max_tokens <= 200_000:
        raise ValueError(f"max_tokens: {cs.max_tokens} is outside 1-200000")
    if cs.structured not in STRUCTURED_MODES:
        raise ValueError(f"structured: {cs.structured!r} is not one of {', '.join(STRUCTURED_MODES)}")
    if cs.role == "drafter":
        template_for(cs.prompt_version)
    return cs


@dataclass
class CallGate:
    """Passes each call through the global rate limit and keeps what the calls spent."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = field(default_factory=Decimal)

    def before(self, cs: CallSettings, estimate_in: int) -> None:
        ratelimit.acquire(cs.base_url, tokens=estimate_in + cs.max_tokens, max_wait=settings.RATE_LIMIT_MAX_WAIT)

    def after(self, cs: CallSettings, estimate_in: int, result: ChatResult | None) -> None:
        used = (result.tokens_in + result.tokens_out) if result else 0
        unused = estimate_in + cs.max_tokens - used
        if unused > 0 and settings.LLM_TOKENS_PER_MINUTE:
            ratelimit.refund(cs.base_url, tokens=unused)
        if result is not None:
            self.tokens_in += result.tokens_in
            self.tokens_out += result.tokens_out
            self.cost += cost_of(cs.model, result.tokens_in, result.tokens_out)


def _call(cs: CallSettings, messages: list[dict[str, Any]], gate: CallGate, fmt: dict[str, Any] | None) -> ChatResult:
    estimate = estimate_tokens(messages)
    gate.before(cs, estimate)
    result = None
    try:
        result = chat(
            base_url=cs.base_url,
            api_key=cs.api_key,
            model=cs.model,
            messages=messages,
            temperature=cs.temperature,
            max_tokens=cs.max_tokens,
            timeout=cs.timeout,
            response_format=fmt,
        )
    finally:
        gate.after(cs, estimate, result)
    return result


def _previous(turn: Turn, previous: list[Turn] | None) -> list[Turn]:
    if previous is not None:
        return previous
    if turn.index == 0:
        return []
    return list(Turn.objects.filter(sample_id=turn.sample_id, index__lt=turn.index).order_by("index"))


def draft_turn(
    *,
    turn: Turn,
    sample: Sample,
    project: Project,
    cs: CallSettings,
    gate: CallGate,
    job_id: int | None = None,
    previous: list[Turn] | None = None,
) -> Draft:
    """Ask for feedback on a turn with a response. One successful draft per turn per job: when one
    exists already (a redelivered task), it is returned and nothing is stored twice."""
    if turn.model_response is None:
        raise ValueError(f"turn {turn.index} of sample {sample.external_id} has no response to review")
    template = template_for(cs.prompt_version)
    criteria = list(project.criteria)
    schema = feedback_schema(criteria, project.score_min, project.score_max)
    fmt = response_format(schema, cs.structured)
    messages = feedback_messages(
        template=template,
        project=project,
        sample=sample,
        turn=turn,
        previous=_previous(turn, previous),
        schema=schema,
        image_url=image_data_url(sample.image) if cs.send_image else None,
    )
    start_tokens, start_cost = (gate.tokens_in, gate.tokens_out), gate.cost
    answers: list[ChatResult] = []

    def ask(conversation: list[dict[str, Any]]) -> ParsedFeedback:
        answers.append(_call(cs, conversation, gate, fmt))
        answer = answers[-1]
        return parse_feedback(
            answer.text,
            criteria=criteria,
            low=project.score_min,
            high=project.score_max,
            finish_reason=answer.finish_reason,
        )

    fields: dict[str, Any] = {}
    parsed: ParsedFeedback | None
    try:
        parsed = ask(messages)
        status = CallStatus.REPAIRED if parsed.repaired else CallStatus.OK
    except ParseError as first:
        reask = REASK.format(error=first)
        try:
            parsed = ask(
                [*messages, {"role": "assistant", "content": answers[-1].text}, {"role": "user", "content": reask}]
            )
            status = CallStatus.REASKED
        except ParseError as second:
            parsed = None
            status = CallStatus.FAILED
            fields["error"] = f"unusable answer after one re-ask: {second} (first answer: {first})"
    if parsed is not None:
        fields.update(
            critique=parsed.critique, refinement=parsed.refinement, scores=parsed.scores, overall=parsed.overall
        )
    return _store(
        Draft,
        turn=turn,
        job_id=job_id,
        status=status,
        model=cs.model,
        endpoint=cs.base_url,
        params=cs.request_params(),
        raw_output="\n\n--- re-ask ---\n\n".join(a.text for a in answers),
        tokens_in=gate.tokens_in - start_tokens[0],
        tokens_out=gate.tokens_out - start_tokens[1],
        cost=gate.cost - start_cost,
        latency_ms=sum(a.latency_ms for a in answers),
        calls=len(answers),
        simulated=answers[-1].simulated,
        prompt_version=template.version,
        prompt_hash=template.hash,
        **fields,
    )


def respond_turn(
    *,
    turn: Turn,
    sample: Sample,
    cs: CallSettings,
    gate: CallGate,
    job_id: int | None = None,
    previous: list[Turn] | None = None,
) -> Generation:
    """Generate the response of the model under study to a turn awaiting one, and store it on the turn
    (unless another answer arrived first: nothing a turn holds is overwritten)."""
    messages = response_messages(
        previous=_previous(turn, previous),
        turn=turn,
        image_url=image_data_url(sample.image) if cs.send_image else None,
    )
    start_tokens, start_cost = (gate.tokens_in, gate.tokens_out), gate.cost
    result = _call(cs, messages, gate, None)
    if not result.text.strip():
        raise LLMError("the model answered with an empty response", retryable=True)
    with transaction.atomic():
        generation = _store(
            Generation,
            turn=turn,
            job_id=job_id,
            status=CallStatus.OK,
            model=cs.model,
            endpoint=cs.base_url,
            params=cs.request_params(),
            raw_output=result.text,
            tokens_in=gate.tokens_in - start_tokens[0],
            tokens_out=gate.tokens_out - start_tokens[1],
            cost=gate.cost - start_cost,
            latency_ms=result.latency_ms,
            simulated=result.simulated,
        )
        Turn.objects.filter(pk=turn.pk, model_response__isnull=True).update(model_response=result.text.strip())
    turn.refresh_from_db(fields=["model_response"])
    return generation


def failure_record(
    model: type[Draft] | type[Generation], *, turn: Turn, job_id: int | None, cs: CallSettings, error: str
) -> Draft | Generation:
    """A call that never produced a usable answer, kept so the turn's history says why."""
    extra: dict[str, Any] = {}
    if model is Draft:
        template = template_for(cs.prompt_version)
        extra = {"prompt_version": template.version, "prompt_hash": template.hash}
    return model.objects.create(
        turn=turn,
        job_id=job_id,
        status=CallStatus.FAILED,
        error=error,
        model=cs.model,
        endpoint=cs.base_url,
        params=cs.request_params(),
        calls=0,
        **extra,
    )


def _store(record_type: type[Any], /, **values: Any) -> Any:
    """Create the record; when the job already holds a successful one for this turn, return that."""
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint, so that a refused insert spares the outer work
                return record_type.objects.create(**values)
        return record_type.objects.create(**values)  # autocommit: one statement, nothing to roll back
    except IntegrityError:
        existing = (
            record_type.objects.filter(turn=values["turn"], job_id=values["job_id"])
            .exclude(status=CallStatus.FAILED)
            .first()
        )
        if existing is None or values["job_id"] is None:
            raise
        return existing
