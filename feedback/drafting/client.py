"""The one place that talks to an OpenAI-compatible endpoint.

The SDK's own retries are off: retries, backoff and the global rate limit are the job layer's.
Every failure becomes an LLMError that says whether trying again could help and how long the
server asked us to wait. No message here ever carries the API key.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from feedback.limits import loads_bounded

SIMULATOR_FINGERPRINT = "annotator-simulator"

_AUTH: Any = {"security": {"bearer_auth": True}}
_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    model: str
    simulated: bool


class LLMError(Exception):
    """A call that produced no answer. ``throttled``: the server said 429 (does not use up the retry
    budget). ``retryable``: a later attempt may succeed. ``retry_after``: seconds the server asked for."""

    def __init__(
        self, message: str, *, retryable: bool, throttled: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.throttled = throttled
        self.retry_after = retry_after


class UnusableAnswer(LLMError):
    """An HTTP 200 whose body is not a chat completion (an HTML page from a proxy, say): an answer
    that cannot be parsed, not a transport failure. ``text``: the body, cut short and scrubbed."""

    def __init__(self, message: str, *, text: str) -> None:
        super().__init__(message, retryable=False)
        self.text = text


# What of an upstream error is kept: the status, the provider's error type and the start of its
# message, and only when the body is JSON in the OpenAI error shape. Never the raw body: a URL
# that points at an internal service must not turn its pages into job errors.
ERROR_MESSAGE_CHARS = 120
ERROR_BODY_MAX = 64 * 1024
ANSWER_TEXT_CHARS = 2000
_ERROR_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,60}$")


def _client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    key = (base_url, api_key, timeout)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                # The SDK refuses an empty key; local servers and the simulator need none.
                client = openai.OpenAI(base_url=base_url, api_key=api_key or "no-key", max_retries=0, timeout=timeout)
                _clients[key] = client
    return client


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a server asked for: ``retry-after-ms``, else ``Retry-After`` in seconds or as a date."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def scrub(text: str, api_key: str) -> str:
    """Remove the key from a server's message, whole or masked (servers echo "sk-ab***yz")."""
    if not api_key:
        return text
    text = text.replace(api_key, "[key]")
    if len(api_key) >= 8:
        masked = re.compile(re.escape(api_key[:4]) + r"[\w*.\-]*")
        text = masked.sub("[key]", text)
    return text


def error_summary(status: int, body: str, api_key: str) -> str:
    """``HTTP 404 invalid_request_error: The model `x` does not exist`` from an OpenAI-shaped JSON
    error, else only the status and what the body was."""
    error: Any = None
    if len(body) <= ERROR_BODY_MAX and body.lstrip().startswith("{"):
        try:
            error = loads_bounded(body).get("error")
        except ValueError:
            error = None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        stripped = body.lstrip()
        what = "no body" if not stripped else "JSON body not in the OpenAI error shape"
        if stripped and not stripped.startswith(("{", "[")):
            what = "non-JSON body"
        return f"HTTP {status} ({what})"
    kind = error.get("type") or error.get("code")
    label = f" {kind}" if isinstance(kind, str) and _ERROR_TYPE.match(kind) else ""
    message = " ".join(scrub(error["message"], api_key).split())
    if len(message) > ERROR_MESSAGE_CHARS:
        message = message[:ERROR_MESSAGE_CHARS] + "…"
    return scrub(f"HTTP {status}{label}: {message}", api_key)


def _body_text(exc: openai.APIStatusError) -> str:
    try:
        return exc.response.text
    except Exception:  # a body that cannot be decoded as text
        return "-"


def _status_message(exc: openai.APIStatusError, api_key: str) -> str:
    return error_summary(exc.status_code, _body_text(exc), api_key)


@dataclass(frozen=True)
class ChatParameters:
    """Which request parameters a server takes, as its connection states them. The defaults work
    for OpenAI's chat models, vLLM and Ollama; current reasoning models want
    ``max_completion_tokens``, no temperature, and may take a ``reasoning_effort``."""

    max_tokens_param: str = "max_tokens"
    send_temperature: bool = True
    reasoning_effort: str = ""


DEFAULT_PARAMETERS = ChatParameters()


def request_body(
    *,
    model: str,
    messages: list[dict[str, Any]],
    temperature: float,
    max_tokens: int,
    response_format: dict[str, Any] | None = None,
    parameters: ChatParameters = DEFAULT_PARAMETERS,
) -> dict[str, Any]:
    """The chat completions body, with the parameters the server takes and no others."""
    body: dict[str, Any] = {"model": model, "messages": messages, parameters.max_tokens_param: max_tokens}
    if parameters.send_temperature:
        body["temperature"] = temperature
    if parameters.reasoning_effort:
        body["reasoning_effort"] = parameters.reasoning_effort
    if response_format is not None:
        body["response_format"] = response_format
    return body


def unsupported_parameter(status: int, body: str) -> str | None:
    """The parameter a 400 says the server does not take (OpenAI's ``unsupported_parameter`` or
    ``unsupported_value`` codes, or a message that names one), else None."""
    if status != 400:
        return None
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        return None
    param, code, message = error.get("param"), error.get("code"), str(error.get("message") or "")
    if code in ("unsupported_parameter", "unsupported_value") and isinstance(param, str) and param:
        return param[:60]
    match = _UNSUPPORTED_QUOTED.search(message) or _UNSUPPORTED_BARE.search(message)
    return match.group(1)[:60] if match else None


# "Unsupported parameter: 'max_tokens' ...", "unknown field \"reasoning_effort\"", and OpenAI's older
# "Unrecognized request argument supplied: reasoning_effort".
_UNSUPPORTED_QUOTED = re.compile(
    r"(?:unsupported|unrecognized|unknown|not supported)[^'\"]{0,40}['\"]([A-Za-z_][\w.]*)['\"]", re.I
)
_UNSUPPORTED_BARE = re.compile(
    r"(?:unrecognized request argument supplied|unsupported parameter):\s*([A-Za-z_]\w*)", re.I
)


def chat(
    *,
    base_url: str,
    api_key: str,
    model: str,
    messages: list[dict[str, Any]],
    temperature: float,
    max_tokens: int,
    timeout: float,
    response_format: dict[str, Any] | None = None,
    parameters: ChatParameters = DEFAULT_PARAMETERS,
) -> ChatResult:
    client = _client(base_url, api_key, timeout)
    kwargs = request_body(
        model=model,
        messages=messages,
        temperature=temperature,
        max_tokens=max_tokens,
        response_format=response_format,
        parameters=parameters,
    )
    started = time.monotonic()
    try:
        # The body is plain JSON already: posting it skips the SDK's per-call transformation of the
        # typed parameters, a third of the client's CPU per call.
        completion = client.post("/chat/completions", body=kwargs, cast_to=ChatCompletion, options=_AUTH)
    except openai.APITimeoutError:
        raise LLMError(f"no answer within {timeout:g} s", retryable=True) from None
    except openai.APIConnectionError as exc:
        raise LLMError(f"connection failed: {type(exc.__cause__ or exc).__name__}", retryable=True) from None
    except openai.RateLimitError as exc:
        raise LLMError(
            _status_message(exc, api_key),
            retryable=True,
            throttled=True,
            retry_after=retry_after_seconds(exc.response.headers),
        ) from None
    except openai.APIStatusError as exc:
        refused = unsupported_parameter(exc.status_code, _body_text(exc))
        if refused:  # a setting of the connection, not a passing fault: never retried
            raise LLMError(
                f"the server does not take the parameter {refused!r} for model {model!r}: state the "
                f"connection's parameters (max_tokens_param, temperature, reasoning_effort, structured); "
                f"{_status_message(exc, api_key)}",
                retryable=False,
            ) from None
        transient = exc.status_code >= 500 or exc.status_code in (408, 409)
        raise LLMError(
            _status_message(exc, api_key), retryable=transient, retry_after=retry_after_seconds(exc.response.headers)
        ) from None
    except openai.APIError as exc:  # e.g. a body the SDK could not read as a completion
        raise LLMError(f"unusable answer: {type(exc).__name__}", retryable=True) from None
    latency_ms = int((time.monotonic() - started) * 1000)
    if not isinstance(completion, ChatCompletion):  # the SDK hands back the text of a non-JSON body
        raise UnusableAnswer(
            "HTTP 200 with a body that is not JSON", text=scrub(str(completion)[:ANSWER_TEXT_CHARS], api_key)
        )
    try:
        if not completion.choices:
            raise LLMError("the answer has no choices", retryable=True)
        choice = completion.choices[0]
        usage = completion.usage
        return ChatResult(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            latency_ms=latency_ms,
            model=completion.model or model,
            simulated=completion.system_fingerprint == SIMULATOR_FINGERPRINT,
        )
    except (AttributeError, TypeError, KeyError, IndexError):  # JSON, but not shaped like a completion
        raise UnusableAnswer(
            "HTTP 200 with JSON that is not a chat completion",
            text=scrub(_dump(completion)[:ANSWER_TEXT_CHARS], api_key),
        ) from None


def _dump(completion: ChatCompletion) -> str:
    try:
        return completion.model_dump_json(warnings=False)
    except Exception:  # fields the SDK filled with what it could not read
        return ""
