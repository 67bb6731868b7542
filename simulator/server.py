"""An OpenAI-compatible chat completions server on loopback, for tests, the demo and benchmarks.

It is a real HTTP server (stdlib only) so the platform's client, retries, timeouts and rate limit
are exercised over real sockets. Latency, its own rate limit and faults (429, 5xx, hangs,
malformed, incomplete or truncated JSON) are settable at start and at run time. Every answer
carries system_fingerprint "annotator-simulator" so the platform can mark drafts as simulated.
The Authorization header is compared and then forgotten: it is never logged, echoed or stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import math
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import content
from .batches import COPY_CHUNK, LIST_LIMIT_MAX, BatchAPIError, BatchStore
from .limits import RateLimiter, retry_headers

SYSTEM_FINGERPRINT = "annotator-simulator"
MODELS = ("annotator-simulator", "annotator-simulator-vision", "annotator-simulator-reasoning")
# Answers like a current reasoning model: it refuses ``max_tokens`` (wants ``max_completion_tokens``)
# and any temperature but the default, and takes ``reasoning_effort``, which the others refuse.
REASONING_MODELS = ("annotator-simulator-reasoning",)
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
FAULT_KINDS = ("429", "5xx", "hang", "malformed", "missing_field", "truncated", "html", "html_error")
JSON_ONLY_FAULTS = frozenset({"malformed", "missing_field", "truncated"})
MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that can be set; fault rates are probabilities per request."""

    host: str = "127.0.0.1"
    port: int = 0
    latency_ms: float = 0.0
    latency_ms_max: float | None = None
    rpm: float = 0.0
    tpm: float = 0.0
    fault_429: float = 0.0
    fault_5xx: float = 0.0
    fault_hang: float = 0.0
    fault_malformed: float = 0.0
    fault_missing_field: float = 0.0
    fault_truncated: float = 0.0
    fault_html: float = 0.0
    fault_html_error: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 30.0
    seed: int = 0
    require_key: str = ""
    # The Batch API: seconds before a batch completes (counted from its creation), and the share
    # of its lines answered with an error (in the error file) instead of a completion.
    batch_delay_s: float = 0.0
    batch_fail_rate: float = 0.0

    RUNTIME_FIXED = ("host", "port")

    def replace(self, changes: dict[str, Any], *, runtime: bool = False) -> SimulatorConfig:
        """A copy with `changes` applied, type-checked; ValueError names the bad key."""
        names = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown simulator setting {key!r}")
            if runtime and key in self.RUNTIME_FIXED:
                raise ValueError(f"{key!r} cannot change while the simulator runs")
            clean[key] = _coerce(key, value)
        return dataclasses.replace(self, **clean)

    def fault_rates(self) -> list[tuple[str, float]]:
        return [(kind, getattr(self, f"fault_{kind}")) for kind in FAULT_KINDS]

    def public(self) -> dict[str, Any]:
        """The settings as JSON; the key is reported only as set or not."""
        data = dataclasses.asdict(self)
        data["require_key"] = bool(self.require_key)
        return data


def _coerce(key: str, value: Any) -> Any:
    if key == "host":
        if not isinstance(value, str) or not value:
            raise ValueError("host must be a non-empty string")
        return value
    if key == "require_key":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError("require_key must be a string")
        return value
    if key == "latency_ms_max" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be a number")
    try:
        number = int(value) if key in ("port", "seed") else float(value)
    except ValueError:
        raise ValueError(f"{key} must be a number") from None
    if not math.isfinite(number) or (number < 0 and key != "seed"):
        raise ValueError(f"{key} must be a finite number >= 0")
    if (key.startswith("fault_") or key == "batch_fail_rate") and number > 1:
        raise ValueError(f"{key} is a rate between 0 and 1")
    if key == "port" and number > 65535:
        raise ValueError("port must be below 65536")
    return number


@dataclass
class Reply:
    status: int
    payload: Any
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = "application/json"
    # A body sent from an open file (a batch's file content), closed once sent: (file, bytes).
    stream: tuple[Any, int] | None = None

    def body(self) -> bytes:
        if isinstance(self.payload, bytes):
            return self.payload
        return json.dumps(self.payload, ensure_ascii=False).encode("utf-8")


# What a proxy or an internal service answers instead of the API: a page, not JSON.
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>{status}</title></head><body><h1>{status}</h1>"
    "<p>upstream internal-admin.corp.example: connection to 10.0.0.7:5432 refused (a fault injected by the "
    "simulator)</p></body></html>"
)


def html_reply(status: int, title: str) -> Reply:
    page = HTML_PAGE.format(status=f"{status} {title}").encode("utf-8")
    return Reply(status, page, content_type="text/html; charset=utf-8")


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _check_model_parameters(model: str, data: dict[str, Any]) -> None:
    """Refuse what the model does not take, in the words and codes of the OpenAI API."""
    effort = data.get("reasoning_effort")
    if model not in REASONING_MODELS:
        if effort is not None:
            raise BadRequest(
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                "reasoning_effort",
                "unsupported_parameter",
            )
        return
    if "max_tokens" in data:
        raise BadRequest(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    temperature = data.get("temperature")
    if temperature is not None and temperature != 1:
        raise BadRequest(
            f"Unsupported value: 'temperature' does not support {temperature} with this model. "
            "Only the default (1) value is supported.",
            "temperature",
            "unsupported_value",
        )
    if effort is not None and effort not in REASONING_EFFORTS:
        raise BadRequest(
            f"Invalid value: {effort!r}. Supported values are: {', '.join(map(repr, REASONING_EFFORTS))}.",
            "reasoning_effort",
            "invalid_value",
        )


def error_reply(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> Reply:
    return Reply(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    response_format: dict[str, Any] | None
    max_tokens: int | None

    @property
    def wants_json(self) -> bool:
        return (self.response_format or {}).get("type") in ("json_schema", "json_object")


def parse_chat_request(body: bytes) -> ChatRequest:
    """Validate the parts of the chat completions body the simulator relies on."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly.)"
        ) from None
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role'", f"messages[{i}]")
        parts = message.get("content")
        if parts is None or isinstance(parts, str):
            continue
        if not isinstance(parts, list):
            raise BadRequest(f"messages[{i}].content must be a string or an array", f"messages[{i}].content")
        for j, part in enumerate(parts):
            where = f"messages[{i}].content[{j}]"
            if not isinstance(part, dict):
                raise BadRequest(f"{where} must be an object", where)
            if part.get("type") == "text":
                if not isinstance(part.get("text"), str):
                    raise BadRequest(f"{where}.text must be a string", f"{where}.text")
            elif part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, dict) else None
                if not isinstance(url, str) or not url:
                    raise BadRequest(f"{where}.image_url.url must be a string", f"{where}.image_url")
            else:
                raise BadRequest(f"{where}.type must be 'text' or 'image_url'", f"{where}.type")
    response_format = data.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict) or response_format.get("type") not in (
            "text",
            "json_object",
            "json_schema",
        ):
            raise BadRequest("response_format.type must be 'text', 'json_object' or 'json_schema'", "response_format")
        if response_format["type"] == "json_schema":
            spec = response_format.get("json_schema")
            if not isinstance(spec, dict) or ("schema" in spec and not isinstance(spec["schema"], dict)):
                raise BadRequest("response_format.json_schema must be an object", "response_format.json_schema")
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise BadRequest("max_tokens must be a positive integer", "max_tokens")
    if data.get("stream"):
        raise BadRequest("The simulator does not stream; leave 'stream' unset.", "stream")
    _check_model_parameters(model, data)
    return ChatRequest(model, messages, response_format, max_tokens)


def _empty_stats() -> dict[str, Any]:
    return {
        "requests": 0,
        "completed": 0,
        "rate_limited": 0,
        "bad_requests": 0,
        "unauthorized": 0,
        "faults": dict.fromkeys(FAULT_KINDS, 0),
        "in_flight": 0,
        "max_in_flight": 0,
    }


class Simulator:
    """The behaviour behind the HTTP layer: configuration, counters, limits, faults, answers."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._stats = _empty_stats()
        self._limiter = RateLimiter(config.rpm, config.tpm)
        self._fault_rng = random.Random(config.seed)
        self._latency_rng = random.Random(config.seed + 1)
        self.batches = BatchStore(self.batch_answer, self._batch_settings)

    def _batch_settings(self) -> tuple[float, float, int]:
        config = self.config
        return config.batch_delay_s, config.batch_fail_rate, config.seed

    # --- control --------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._lock:
            snapshot = dict(self._stats)
            snapshot["faults"] = dict(self._stats["faults"])
        snapshot["batch"] = self.batches.stats()
        return snapshot

    def reset(self) -> None:
        """Zero the counters, refill the rate-limit buckets and re-seed the fault RNG."""
        with self._lock:
            in_flight = self._stats["in_flight"]
            self._stats = _empty_stats()
            self._stats["in_flight"] = self._stats["max_in_flight"] = in_flight
            self._limiter = RateLimiter(self.config.rpm, self.config.tpm)
            self._fault_rng = random.Random(self.config.seed)
            self._latency_rng = random.Random(self.config.seed + 1)

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            old = self.config
            new = old.replace(changes, runtime=True)
            if (new.rpm, new.tpm) != (old.rpm, old.tpm):
                self._limiter = RateLimiter(new.rpm, new.tpm)
            if "seed" in changes:
                self._fault_rng = random.Random(new.seed)
                self._latency_rng = random.Random(new.seed + 1)
            self.config = new
        return new.public()

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    # --- requests -------------------------------------------------------------------------------

    def authorized(self, authorization: str | None) -> bool:
        expected = self.config.require_key
        if not expected:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())

    def unauthorized(self) -> Reply:
        self._count("unauthorized")
        return error_reply(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key", param=None)

    def models(self) -> Reply:
        return Reply(200, {"object": "list", "data": [_model(name) for name in MODELS]})

    def model(self, name: str) -> Reply:
        if name in MODELS:
            return Reply(200, _model(name))
        return error_reply(
            404, f"The model '{name}' does not exist", "invalid_request_error", "model_not_found", "model"
        )

    def chat(self, authorization: str | None, body: bytes) -> Reply:
        with self._lock:
            self._stats["requests"] += 1
            self._stats["in_flight"] += 1
            self._stats["max_in_flight"] = max(self._stats["max_in_flight"], self._stats["in_flight"])
        try:
            return self._chat(authorization, body)
        finally:
            with self._lock:
                self._stats["in_flight"] -= 1

    def _chat(self, authorization: str | None, body: bytes) -> Reply:
        config = self.config
        if not self.authorized(authorization):
            return self.unauthorized()
        try:
            request = parse_chat_request(body)
        except BadRequest as exc:
            self._count("bad_requests")
            return error_reply(400, exc.message, "invalid_request_error", exc.code, exc.param)
        prompt_tokens = content.prompt_tokens(request.messages)
        wait, limit = self._limiter.acquire(prompt_tokens)
        if wait > 0:
            self._count("rate_limited")
            reply = error_reply(
                429,
                f"Rate limit reached for {limit} per minute on the simulator. Please try again in {wait:.3f}s.",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
            )
            reply.headers.update(retry_headers(wait))
            return reply
        fault, pick = self._draw_fault(config, request.wants_json)
        if fault == "429":
            reply = error_reply(
                429,
                "Rate limit reached (a fault injected by the simulator). Please try again later.",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
            )
            reply.headers.update(retry_headers(config.retry_after))
            return reply
        if fault == "hang":
            self.stopping.wait(config.hang_seconds)
            return error_reply(504, "The request timed out upstream (a simulated hang).", "server_error", "timeout")
        self._sleep_latency(config)
        if fault == "html":
            self._count("completed")
            return html_reply(200, "OK")
        if fault == "html_error":
            return html_reply(502, "Bad Gateway")
        if fault == "5xx":
            if pick < 0.5:
                return error_reply(500, "The server had an error while processing your request.", "server_error")
            return error_reply(503, "The engine is currently overloaded, please try again later.", "server_error")
        return self._answer(request, prompt_tokens, fault, pick)

    def batch_answer(self, body: bytes, rng: random.Random) -> tuple[int, dict[str, Any]]:
        """One line of a batch, answered as the live endpoint answers it: the same content, and the
        faults that change content (malformed, a missing field, truncated); no latency, no rate
        limit, no transport faults (a batch's own failures are ``batch_fail_rate``'s)."""
        try:
            request = parse_chat_request(body)
        except BadRequest as exc:
            reply = error_reply(400, exc.message, "invalid_request_error", exc.code, exc.param)
            return reply.status, reply.payload
        fault, pick = self._draw_fault(self.config, request.wants_json, kinds=JSON_ONLY_FAULTS)
        reply = self._answer(request, content.prompt_tokens(request.messages), fault, pick, count=False)
        return reply.status, reply.payload

    def _draw_fault(
        self, config: SimulatorConfig, wants_json: bool, kinds: frozenset[str] | None = None
    ) -> tuple[str | None, float]:
        """One draw against the cumulative fault rates (of ``kinds`` only, when given); also where
        in its band the draw fell (0..1)."""
        with self._lock:
            draw = self._fault_rng.random()
            start = 0.0
            for kind, rate in config.fault_rates():
                if rate <= 0 or (kinds is not None and kind not in kinds):
                    continue
                if draw < start + rate:
                    if kind in JSON_ONLY_FAULTS and not wants_json:
                        return None, 0.0
                    self._stats["faults"][kind] += 1
                    return kind, (draw - start) / rate
                start += rate
        return None, 0.0

    def _sleep_latency(self, config: SimulatorConfig) -> None:
        low = config.latency_ms
        high = config.latency_ms_max
        millis = self._latency_rng.uniform(low, high) if high is not None and high > low else low
        if millis > 0:
            self.stopping.wait(millis / 1000.0)

    def _answer(
        self, request: ChatRequest, prompt_tokens: int, fault: str | None, pick: float, *, count: bool = True
    ) -> Reply:
        generated = content.generate(request.model, request.messages, request.response_format)
        text = generated.content
        finish_reason = "stop"
        if fault == "malformed":
            text = content.malformed(generated, pick)
        elif fault == "missing_field":
            text = content.missing_field(generated, pick)
        elif fault == "truncated":
            text = content.truncated(text, pick)
            finish_reason = "length"
        if request.max_tokens is not None and content.estimate_tokens(text) > request.max_tokens:
            text = text[: request.max_tokens * 4]
            finish_reason = "length"
        completion_tokens = content.estimate_tokens(text)
        if count:
            self._count("completed")
        return Reply(
            200,
            {
                "id": "chatcmpl-sim-" + os.urandom(12).hex(),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


def _not_allowed(path: str, allowed: str) -> Reply:
    reply = error_reply(405, f"Use {allowed} for {path}.", "invalid_request_error", "method_not_allowed")
    reply.headers["Allow"] = allowed.replace(" ", ", ")
    return reply


def _bounded_int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text[:12])
    except ValueError:
        raise BatchAPIError(400, f"{name} must be a whole number from {low} to {high}.", name) from None
    if not low <= value <= high:
        raise BatchAPIError(400, f"{name} must be a whole number from {low} to {high}.", name)
    return value


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "annotator"}


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP layer: read the body, route, write JSON with Content-Length so connections stay open."""

    protocol_version = "HTTP/1.1"
    server_version = "annotator-simulator"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: per-request logging costs throughput, and headers must never reach a log."""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if method == "POST" and path in ("/v1/files", "/files"):
            self._send(self._upload(sim))
            return
        try:
            body = self._read_body()
        except ValueError:
            body = None
        if body is None:
            self.close_connection = True
            self._send(error_reply(400, "Malformed request body framing.", "invalid_request_error"))
            return
        if path.startswith("/v1/"):
            path = path[3:]
        try:
            reply = self._route(sim, method, path, body)
        except Exception as exc:  # a bug in the simulator must not look like an injected fault
            sys.stderr.write(f"LLM simulator: internal error {type(exc).__name__}: {exc}\n")
            reply = error_reply(500, f"Simulator internal error: {type(exc).__name__}", "simulator_error")
        self._send(reply)

    def _upload(self, sim: Simulator) -> Reply:
        """POST /v1/files: read as a stream, never whole into memory."""
        if not sim.authorized(self.headers.get("Authorization")):
            self.close_connection = True
            return sim.unauthorized()
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            return error_reply(411, "Send the file with a Content-Length.", "invalid_request_error")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        try:
            return Reply(200, sim.batches.upload(self.headers.get("Content-Type") or "", length, self.rfile))
        except BatchAPIError as exc:
            self.close_connection = True  # what is left of the body is not read
            return error_reply(exc.status, exc.message, "invalid_request_error", exc.code, exc.param)
        except Exception as exc:
            self.close_connection = True
            sys.stderr.write(f"LLM simulator: internal error {type(exc).__name__}: {exc}\n")
            return error_reply(500, f"Simulator internal error: {type(exc).__name__}", "simulator_error")

    def _batch_api(self, sim: Simulator, method: str, path: str, body: bytes) -> Reply | None:
        """The files and batches endpoints; None for a path that is not theirs."""
        parts = path.strip("/").split("/")
        if parts[0] not in ("files", "batches") or len(parts) > 3:
            return None
        if not sim.authorized(self.headers.get("Authorization")):
            return sim.unauthorized()
        store = sim.batches
        try:
            if parts == ["batches"]:
                if method == "POST":
                    data = json.loads(body or b"{}")
                    if not isinstance(data, dict):
                        raise BatchAPIError(400, "The request body must be a JSON object.")
                    return Reply(200, store.create(data))
                if method == "GET":
                    query = parse_qs(urlsplit(self.path).query)
                    limit = _bounded_int(query.get("limit", ["20"])[0], "limit", 1, LIST_LIMIT_MAX)
                    return Reply(200, store.listing(limit, query.get("after", [""])[0] or None))
                return _not_allowed(path, "GET POST")
            if parts[0] == "batches" and len(parts) == 2:
                return Reply(200, store.retrieve(parts[1])) if method == "GET" else _not_allowed(path, "GET")
            if parts[0] == "batches" and parts[2:] == ["cancel"]:
                return Reply(200, store.cancel(parts[1])) if method == "POST" else _not_allowed(path, "POST")
            if parts[0] == "files" and len(parts) == 2:
                if method == "GET":
                    return Reply(200, store.file(parts[1]).public())
                if method == "DELETE":
                    return Reply(200, store.delete_file(parts[1]))
                return _not_allowed(path, "GET DELETE")
            if parts[0] == "files" and parts[2:] == ["content"]:
                if method != "GET":
                    return _not_allowed(path, "GET")
                return Reply(200, None, content_type="application/octet-stream", stream=store.open_content(parts[1]))
        except BatchAPIError as exc:
            return error_reply(exc.status, exc.message, "invalid_request_error", exc.code, exc.param)
        except ValueError:
            return error_reply(400, "The request body is not valid JSON.", "invalid_request_error")
        return None

    def _route(self, sim: Simulator, method: str, path: str, body: bytes) -> Reply:
        authorization = self.headers.get("Authorization")
        batch_reply = self._batch_api(sim, method, path, body)
        if batch_reply is not None:
            return batch_reply
        allowed = {
            "/chat/completions": "POST",
            "/models": "GET",
            "/_simulator/stats": "GET",
            "/_simulator/reset": "POST",
            "/_simulator/config": "GET POST",
        }.get(path)
        if allowed is None and path.startswith("/models/"):
            allowed = "GET"
        if allowed is None:
            return error_reply(
                404, f"Unknown request URL: {method} {self.path}.", "invalid_request_error", "unknown_url"
            )
        if method not in allowed.split():
            reply = error_reply(405, f"Use {allowed} for {path}.", "invalid_request_error", "method_not_allowed")
            reply.headers["Allow"] = allowed.replace(" ", ", ")
            return reply
        if path == "/chat/completions":
            return sim.chat(authorization, body)
        if path.startswith("/models"):
            if not sim.authorized(authorization):
                return sim.unauthorized()
            return sim.models() if path == "/models" else sim.model(path[len("/models/") :])
        if path == "/_simulator/stats":
            return Reply(200, sim.stats())
        if path == "/_simulator/reset":
            sim.reset()
            return Reply(200, sim.stats())
        if method == "GET":
            return Reply(200, sim.config.public())
        return self._configure(sim, body)

    @staticmethod
    def _configure(sim: Simulator, body: bytes) -> Reply:
        try:
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("the body must be a JSON object of settings")
            return Reply(200, sim.configure(changes))
        except ValueError as exc:
            return error_reply(400, str(exc), "invalid_request_error")

    def _send(self, reply: Reply) -> None:
        stream = reply.stream
        body = b"" if stream is not None else reply.body()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(stream[1] if stream is not None else len(body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if stream is None:
                self.wfile.write(body)
            else:
                while chunk := stream[0].read(COPY_CHUNK):
                    self.wfile.write(chunk)
        except OSError:  # the client gave up (a timeout on a hang, say); nothing to tell it
            self.close_connection = True
        finally:
            if stream is not None:
                stream[0].close()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup, which can take seconds on some hosts."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut idle keep-alive connections so their threads end with the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # resets and broken pipes are the client's business
            return
        super().handle_error(request, client_address)


class SimulatorServer:
    """The simulator in a daemon thread: start(), stop(), url, stats(), configure(), reset().

    Settings are the fields of SimulatorConfig, given as keyword arguments.
    """

    def __init__(self, **config: Any) -> None:
        self._sim = Simulator(SimulatorConfig().replace(config))
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> SimulatorConfig:
        return self._sim.config

    def start(self) -> SimulatorServer:
        if self._httpd is not None:
            return self
        self._sim.stopping.clear()
        self._sim.batches.stopping.clear()
        self._httpd = _HTTPServer((self.config.host, self.config.port), self._sim)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="llm-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests sleeping in a hang or latency wake up at once."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._sim.stopping.set()
        self._sim.batches.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._httpd is not None:
            return int(self._httpd.server_address[1])
        return self.config.port

    @property
    def url(self) -> str:
        """The base URL a client uses, ending in /v1."""
        host = self.config.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - a wildcard bind is reached on loopback
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return self._sim.stats()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at run time; returns the whole configuration."""
        return self._sim.configure(changes)

    def reset(self) -> None:
        self._sim.reset()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(ready: Callable[[SimulatorServer], None] | None = None, **config: Any) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly; `ready` is called once it listens."""
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
    server = SimulatorServer(**config).start()
    try:
        if ready is not None:
            ready(server)
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
