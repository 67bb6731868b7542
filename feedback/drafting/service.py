"""Draft feedback for one turn, and generate the model's response for one turn.

Both build their prompt, pass every call through a CallGate (the global rate limit, and a job's
budget), and store an immutable record of what came back. A transport failure raises LLMError
for the job layer to retry; an answer that cannot be used after one re-ask is stored as a
failed draft with the reason, its raw text kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.errors import InvalidInput
from feedback.models import Project, Sample, Turn

from . import connections, ratelimit
from .client import ChatResult, LLMError, UnusableAnswer, chat, request_body
from .pricing import cost_of
from .prompts import estimate_tokens, feedback_messages, image_data_url, response_messages, template_for
from .schema import ParsedFeedback, ParseError, feedback_schema, parse_feedback, response_format

STRUCTURED_MODES = connections.STRUCTURED_MODES
REASK = "Your answer could not be used: {error}. Reply again with only the JSON object that the schema describes."


@dataclass(frozen=True)
class CallSettings:
    """How to call a model. Stored with jobs and drafts, never with a key: the key is the named
    ``connection``'s, sent only to that connection's URL; ``connection`` "" is a free-form URL,
    called without a key."""

    base_url: str
    model: str
    temperature: float = 0.2
    max_tokens: int = 1024
    timeout: float = 60.0
    structured: str = "json_schema"
    send_image: bool = False
    prompt_version: str = "v1"
    role: str = "drafter"
    connection: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallSettings:
        known = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in known}
        if "connection" not in data and values.get("base_url"):
            # Settings stored before connections: the connection whose URL this is, if any.
            prefer = "responder" if values.get("role") == "responder" else "default"
            values["connection"] = connections.for_url(values["base_url"], prefer=prefer)
        return cls(**values)

    @property
    def api_key(self) -> str:
        return connections.key_for(self.connection, self.base_url)

    def request_params(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "structured": self.structured,
            "send_image": self.send_image,
            "timeout": self.timeout,
        }


def drafter_settings(project: Project, *, free_url: bool = False, **overrides: Any) -> CallSettings:
    """The drafting model's settings: the project's connection and model unless ``overrides`` name
    others. A ``base_url`` is refused unless ``free_url`` (superusers and the command line)."""
    given = _given(overrides)
    chosen = given.get("connection")
    project_model = project.llm_model if not chosen or chosen == (project.llm_connection or "default") else ""
    endpoint = _endpoint(
        given,
        fallback=project.llm_connection or "default",
        preset_model=project_model,
        free_model=settings.LLM_MODEL,
        free_url=free_url,
    )
    base = CallSettings(
        base_url=endpoint["base_url"],
        model=endpoint["model"],
        temperature=project.llm_temperature,
        max_tokens=settings.LLM_MAX_TOKENS,
        timeout=settings.LLM_TIMEOUT,
        prompt_version=project.prompt_version,
        structured=_connection_structured(endpoint["connection"]),
    )
    return validated(CallSettings.from_dict({**base.as_dict(), **given, **endpoint}), project=project)


def responder_settings(*, free_url: bool = False, **overrides: Any) -> CallSettings:
    given = _given(overrides)
    endpoint = _endpoint(
        given, fallback="responder", preset_model="", free_model=settings.RESPONDER_MODEL, free_url=free_url
    )
    base = CallSettings(
        base_url=endpoint["base_url"],
        model=endpoint["model"],
        temperature=0.2,
        max_tokens=settings.LLM_MAX_TOKENS,
        timeout=settings.LLM_TIMEOUT,
        structured="none",
        send_image=True,
        role="responder",
    )
    return validated(CallSettings.from_dict({**base.as_dict(), **given, **endpoint}))


def _connection_structured(name: str) -> str:
    """The connection's structured-output mode for drafts (json_schema unless it states another)."""
    return (connections.get(name).structured if name else "") or "json_schema"


def _given(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if v is not None and v != ""}


def _endpoint(
    given: dict[str, Any], *, fallback: str, preset_model: str, free_model: str, free_url: bool
) -> dict[str, Any]:
    """Where to call and which model: a named connection (and a model it offers), or, for those
    allowed, a free-form URL that gets no key and must resolve to public addresses."""
    name = given.get("connection")
    base_url = given.get("base_url")
    model = given.get("model") or preset_model
    if name is not None and not isinstance(name, str):
        raise InvalidInput("connection", "the name of a connection")
    if base_url is not None:
        if not isinstance(base_url, str):
            raise InvalidInput("base_url", "a URL")
        if name:
            raise InvalidInput("base_url", "name a connection or a URL, not both")
        if not free_url:
            raise InvalidInput("base_url", "only superusers may give a URL; choose one of the connections")
        name = connections.for_url(base_url)
        if not name:  # free-form: no key, public addresses only
            error = connections.free_url_error(base_url)
            if error:
                raise InvalidInput("base_url", f"{error}")
            return {"connection": "", "base_url": base_url, "model": model or free_model}
    conn = connections.get(name or fallback)
    model = model or conn.default_model
    if model and not conn.allows(model):
        raise InvalidInput(
            "model",
            f"{str(model)[:200]!r} is not offered by connection {conn.name!r}; offered: {', '.join(conn.models)}",
        )
    return {"connection": conn.name, "base_url": conn.base_url, "model": model}


def validated(cs: CallSettings, *, project: Project | None = None) -> CallSettings:
    """Refuse settings that could only fail later, naming the field."""
    error = connections.url_error(cs.base_url)
    if error:
        raise InvalidInput("base_url", f"{error}")
    if not isinstance(cs.model, str) or not cs.model:
        raise InvalidInput("model", "required")
    if len(cs.model) > connections.MODEL_MAX_CHARS:
        raise InvalidInput("model", f"at most {connections.MODEL_MAX_CHARS} characters")
    if isinstance(cs.temperature, bool) or not isinstance(cs.temperature, int | float):
        raise InvalidInput("temperature", "a number from 0 to 2")
    if not 0 <= cs.temperature <= 2:
        raise InvalidInput("temperature", f"{cs.temperature} is outside 0-2")
    if isinstance(cs.max_tokens, bool) or not isinstance(cs.max_tokens, int):
        raise InvalidInput("max_tokens", "a whole number from 1 to 200000")
    if not 1 <= cs.max_tokens <= 200_000:
        raise InvalidInput("max_tokens", f"{cs.max_tokens} is outside 1-200000")
    if isinstance(cs.timeout, bool) or not isinstance(cs.timeout, int | float) or not 0 < cs.timeout <= 3600:
        raise InvalidInput("timeout", "seconds, more than 0 and at most 3600")
    if cs.structured not in STRUCTURED_MODES:
        raise InvalidInput("structured", f"{str(cs.structured)[:50]!r} is not one of {', '.join(STRUCTURED_MODES)}")
    if not isinstance(cs.send_image, bool):
        raise InvalidInput("send_image", "true or false")
    if cs.role == "drafter":
        if not isinstance(cs.prompt_version, str) or len(cs.prompt_version) > 50:
            raise InvalidInput("prompt_version", "a version name of at most 50 characters")
        if project is not None:
            template_for(project, cs.prompt_version)
    return cs


def _limits(cs: CallSettings) -> tuple[int, int]:
    """Requests and tokens per minute for the call's URL: its connection's, else the global ones."""
    conn = connections.registry().get(cs.connection) if cs.connection else None
    if conn is None:
        return settings.LLM_REQUESTS_PER_MINUTE, settings.LLM_TOKENS_PER_MINUTE
    return conn.requests_per_minute, conn.tokens_per_minute


def call_target(cs: CallSettings) -> CallSettings:
    """The settings to call with, checked again before each call: a connection at its URL of now
    (a superuser may have moved it; its key follows it, never the old URL), or a free-form URL whose
    host still resolves to public addresses only. LLMError, not retryable, when neither holds."""
    if cs.connection:
        conn = connections.registry().get(cs.connection)
        if conn is None:
            raise LLMError(f"refused: the connection {cs.connection!r} is no longer defined", retryable=False)
        if conn.base_url != cs.base_url:
            return replace(cs, base_url=conn.base_url)
        return cs
    error = connections.free_url_error(cs.base_url)
    if error:
        raise LLMError(f"refused: {error}", retryable=False)
    return cs


@dataclass
class CallGate:
    """Passes each call through the global rate limit and keeps what the calls spent."""

    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = field(default_factory=Decimal)

    def before(self, cs: CallSettings, estimate_in: int) -> None:
        # The key stays the URL: connections sharing one server share its limit.
        rpm, tpm = _limits(cs)
        ratelimit.acquire(
            cs.base_url,
            tokens=estimate_in + cs.max_tokens,
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            max_wait=settings.RATE_LIMIT_MAX_WAIT,
        )

    def after(self, cs: CallSettings, estimate_in: int, result: ChatResult | None) -> None:
        used = (result.tokens_in + result.tokens_out) if result else 0
        unused = estimate_in + cs.max_tokens - used
        tpm = _limits(cs)[1]
        if unused > 0 and tpm:
            ratelimit.refund(cs.base_url, tokens=unused, tokens_per_minute=tpm)
        if result is not None:
            self.tokens_in += result.tokens_in
            self.tokens_out += result.tokens_out
            self.cost += cost_of(cs.model, result.tokens_in, result.tokens_out)


def _call(cs: CallSettings, messages: list[dict[str, Any]], gate: CallGate, fmt: dict[str, Any] | None) -> ChatResult:
    cs = call_target(cs)
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
            parameters=connections.parameters_for(cs.connection),
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


@dataclass(frozen=True)
class FeedbackRequest:
    """What a draft asks for: the template it used, the criteria it scores, the messages and the
    response format. The live path sends it; a batch writes it as a line."""

    template: Any
    criteria: list[str]
    messages: list[dict[str, Any]]
    response_format: dict[str, Any] | None

    def body(self, cs: CallSettings) -> dict[str, Any]:
        """The chat completions body, with the parameters the connection's server takes."""
        return request_body(
            model=cs.model,
            messages=self.messages,
            temperature=cs.temperature,
            max_tokens=cs.max_tokens,
            response_format=self.response_format,
            parameters=connections.parameters_for(cs.connection),
        )


def feedback_request(
    *, turn: Turn, sample: Sample, project: Project, cs: CallSettings, previous: list[Turn] | None = None
) -> FeedbackRequest:
    """The prompt of a draft of ``turn`` (which must have a response to review)."""
    if turn.model_response is None:
        raise InvalidInput("turn", f"turn {turn.index} of sample {sample.external_id} has no response to review")
    template = template_for(project, cs.prompt_version, lock=True)
    criteria = list(project.criteria)
    schema = feedback_schema(criteria, project.score_min, project.score_max)
    messages = feedback_messages(
        template=template,
        project=project,
        sample=sample,
        turn=turn,
        previous=_previous(turn, previous),
        schema=schema,
        image_url=image_data_url(sample.image) if cs.send_image else None,
    )
    return FeedbackRequest(template, criteria, messages, response_format(schema, cs.structured))


def answered_draft(
    *,
    turn: Turn,
    project: Project,
    cs: CallSettings,
    template: Any,
    criteria: list[str],
    answer: ChatResult,
    cost: Decimal,
    job_id: int | None,
    failed_note: str = "",
) -> Draft:
    """The draft (unsaved) that an answer obtained outside a live call makes (a batch's line):
    parsed and repaired as a live answer is; an unusable one is a failed draft keeping its raw text,
    the reason, and ``failed_note`` (what happens next). ``template`` and ``criteria``: those of
    the request (FeedbackRequest), the same for every turn of a job."""
    fields: dict[str, Any] = {}
    try:
        parsed = parse_feedback(
            answer.text,
            criteria=criteria,
            low=project.score_min,
            high=project.score_max,
            finish_reason=answer.finish_reason,
        )
        status = CallStatus.REPAIRED if parsed.repaired else CallStatus.OK
        fields.update(
            critique=parsed.critique, refinement=parsed.refinement, scores=parsed.scores, overall=parsed.overall
        )
    except ParseError as exc:
        status = CallStatus.FAILED
        fields["error"] = f"unusable answer: {exc}{failed_note}"
    return Draft(
        turn=turn,
        job_id=job_id,
        status=status,
        model=cs.model,
        endpoint=cs.base_url,
        params=cs.request_params(),
        raw_output=answer.text,
        tokens_in=answer.tokens_in,
        tokens_out=answer.tokens_out,
        cost=cost,
        latency_ms=answer.latency_ms,
        calls=1,
        simulated=answer.simulated,
        prompt_version=template.version,
        prompt_hash=template.hash,
        **fields,
    )


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
    values = draft_values(turn=turn, sample=sample, project=project, cs=cs, gate=gate, previous=previous)
    return _store(Draft, turn=turn, job_id=job_id, **values)


def draft_values(
    *,
    turn: Turn,
    sample: Sample,
    project: Project,
    cs: CallSettings,
    gate: CallGate,
    previous: list[Turn] | None = None,
) -> dict[str, Any]:
    """Ask for feedback on a turn and return what a draft of it records (status, texts, scores,
    raw output, tokens, cost, latency, calls, prompt version and hash), unsaved: a job stores it as
    the turn's Draft, a trial as its own (feedback/trials), so both draft through this one path."""
    request = feedback_request(turn=turn, sample=sample, project=project, cs=cs, previous=previous)
    template, criteria, messages, fmt = request.template, request.criteria, request.messages, request.response_format
    start_tokens, start_cost = (gate.tokens_in, gate.tokens_out), gate.cost
    answers: list[ChatResult] = []

    def ask(conversation: list[dict[str, Any]]) -> ParsedFeedback:
        try:
            answers.append(_call(cs, conversation, gate, fmt))
        except UnusableAnswer as exc:  # unparseable like prose: re-asked once, then a failed draft
            answers.append(ChatResult(exc.text, "", 0, 0, 0, cs.model, False))
            raise ParseError("", f"the answer is not a chat completion ({exc.message})") from None
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
    return dict(
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
        project = Project.objects.get(samples__turns=turn)
        template = template_for(project, cs.prompt_version, lock=True)
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
