"""Named LLM connections: the only way a key leaves the platform.

A connection is a base URL, the name of the environment variable that holds its key, the models
it offers and its own rate limit. Superusers define them in the settings (the environment);
projects and jobs choose one by name, so a key is only ever sent to its own connection's URL.

Two connections always exist, made from the older variables: ``default`` (``ANNOTATOR_LLM_*``)
and ``responder`` (``ANNOTATOR_RESPONDER_*``). ``ANNOTATOR_LLM_CONNECTIONS`` adds more (or
replaces those two): a JSON object from name to ``{"base_url", "api_key_env", "models", "model",
"rpm", "tpm"}`` and the request parameters its server takes: ``"max_tokens_param"``
(``max_tokens``, the default, or ``max_completion_tokens``), ``"temperature"`` (false: never sent),
``"reasoning_effort"`` (sent when set) and ``"structured"`` (the default structured-output mode
of its calls: ``json_schema``, ``json_object`` for servers with only JSON mode, or ``none``).

A free-form URL (superusers and the command line only) never gets a key, and its host must
resolve to public addresses only, unless a connection names that very origin: link-local,
loopback and private networks are reached only through a connection.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from feedback.errors import InvalidInput

from .client import DEFAULT_PARAMETERS, ChatParameters

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MODEL_MAX_CHARS = 200
MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
STRUCTURED_MODES = ("json_schema", "json_object", "none")
# Variables the settings module reads at start-up: their values come from there, so that the
# settings and this module always agree.
_SETTINGS_KEYS = {"ANNOTATOR_LLM_API_KEY": "LLM_API_KEY", "ANNOTATOR_RESPONDER_API_KEY": "RESPONDER_API_KEY"}


@dataclass(frozen=True)
class Connection:
    name: str
    base_url: str
    api_key_env: str = ""
    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    model: str = ""
    """The model used when neither the job nor the project names one."""
    parameters: ChatParameters = DEFAULT_PARAMETERS
    structured: str = ""
    """The structured-output mode of its calls when a job does not choose one ("" is json_schema)."""

    def allows(self, model: str) -> bool:
        return not self.models or model in self.models

    @property
    def default_model(self) -> str:
        return self.model or (self.models[0] if self.models else "")

    @property
    def requests_per_minute(self) -> int:
        return settings.LLM_REQUESTS_PER_MINUTE if self.rpm is None else self.rpm

    @property
    def tokens_per_minute(self) -> int:
        return settings.LLM_TOKENS_PER_MINUTE if self.tpm is None else self.tpm

    def api_key(self) -> str:
        if not self.api_key_env:
            return ""
        if self.api_key_env in _SETTINGS_KEYS:
            return str(getattr(settings, _SETTINGS_KEYS[self.api_key_env]))
        return os.environ.get(self.api_key_env, "")

    def public(self) -> dict[str, Any]:
        """What pages may show: never the key, only whether it is set."""
        return {
            "name": self.name,
            "models": list(self.models),
            "key_set": bool(self.api_key()),
            "max_tokens_param": self.parameters.max_tokens_param,
            "temperature": self.parameters.send_temperature,
            "reasoning_effort": self.parameters.reasoning_effort,
            "structured": self.structured or "json_schema",
        }


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def _builtins() -> dict[str, Connection]:
    default = Connection(
        name="default",
        base_url=settings.LLM_BASE_URL,
        api_key_env="ANNOTATOR_LLM_API_KEY",
        model=settings.LLM_MODEL,
    )
    # The responder falls back to the drafting key only on the drafting key's own server.
    responder_key = "ANNOTATOR_RESPONDER_API_KEY"
    if not settings.RESPONDER_API_KEY and origin(settings.RESPONDER_BASE_URL) == origin(settings.LLM_BASE_URL):
        responder_key = "ANNOTATOR_LLM_API_KEY"
    responder = Connection(
        name="responder",
        base_url=settings.RESPONDER_BASE_URL,
        api_key_env=responder_key,
        model=settings.RESPONDER_MODEL,
    )
    return {"default": default, "responder": responder}


def _limit(name: str, field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10**9:
        raise ImproperlyConfigured(f"ANNOTATOR_LLM_CONNECTIONS: {name}.{field}: a whole number from 0 to 10^9")
    return value


def parse(definitions: Any) -> dict[str, Connection]:
    """Connections from ``ANNOTATOR_LLM_CONNECTIONS`` (already decoded); ImproperlyConfigured names
    the connection and field at fault."""
    where = "ANNOTATOR_LLM_CONNECTIONS"
    if not isinstance(definitions, dict):
        raise ImproperlyConfigured(f"{where}: a JSON object from connection name to its definition")
    found: dict[str, Connection] = {}
    known = {"base_url", "api_key_env", "models", "model", "rpm", "tpm", *PARAMETER_FIELDS}
    for name, spec in definitions.items():
        if not NAME.match(name):
            raise ImproperlyConfigured(f"{where}: {name!r}: names are lower-case letters, digits, '.', '_', '-'")
        if not isinstance(spec, dict):
            raise ImproperlyConfigured(f"{where}: {name}: a JSON object")
        if set(spec) - known:
            raise ImproperlyConfigured(f"{where}: {name}.{sorted(set(spec) - known)[0]}: not a connection field")
        url = spec.get("base_url")
        if not isinstance(url, str) or url_error(url):
            raise ImproperlyConfigured(f"{where}: {name}.base_url: {url_error(str(url))}")
        env = spec.get("api_key_env", "")
        if not isinstance(env, str) or (env and not ENV_NAME.match(env)):
            raise ImproperlyConfigured(f"{where}: {name}.api_key_env: the name of an environment variable")
        models = spec.get("models", [])
        if not isinstance(models, list) or not all(
            isinstance(m, str) and 0 < len(m) <= MODEL_MAX_CHARS for m in models
        ):
            raise ImproperlyConfigured(f"{where}: {name}.models: a list of model names")
        model = spec.get("model", "")
        if not isinstance(model, str) or len(model) > MODEL_MAX_CHARS or (model and models and model not in models):
            raise ImproperlyConfigured(f"{where}: {name}.model: one of its models")
        found[name] = Connection(
            name=name,
            base_url=url.rstrip("/"),
            api_key_env=env,
            models=tuple(models),
            rpm=_limit(name, "rpm", spec.get("rpm")),
            tpm=_limit(name, "tpm", spec.get("tpm")),
            model=model,
            parameters=_parameters(name, spec),
            structured=_choice(name, spec, "structured", STRUCTURED_MODES),
        )
    return found


PARAMETER_FIELDS = ("max_tokens_param", "temperature", "reasoning_effort", "structured")


def _choice(name: str, spec: dict[str, Any], field: str, allowed: tuple[str, ...]) -> str:
    value = spec.get(field, "")
    if value != "" and value not in allowed:
        raise ImproperlyConfigured(f"ANNOTATOR_LLM_CONNECTIONS: {name}.{field}: one of {', '.join(allowed)}")
    return str(value)


def _parameters(name: str, spec: dict[str, Any]) -> ChatParameters:
    """The request parameters the connection's server takes (ChatParameters' defaults where unsaid)."""
    temperature = spec.get("temperature", True)
    if not isinstance(temperature, bool):
        raise ImproperlyConfigured(f"ANNOTATOR_LLM_CONNECTIONS: {name}.temperature: true or false (false: never sent)")
    return ChatParameters(
        max_tokens_param=_choice(name, spec, "max_tokens_param", MAX_TOKENS_PARAMS) or "max_tokens",
        send_temperature=temperature,
        reasoning_effort=_choice(name, spec, "reasoning_effort", REASONING_EFFORTS),
    )


def parameters_for(name: str) -> ChatParameters:
    """How to call the connection ``name``; a free-form URL ("") gets the defaults."""
    found = registry().get(name)
    return found.parameters if found is not None else DEFAULT_PARAMETERS


def registry() -> dict[str, Connection]:
    """Every connection by name: the two built-in ones, then those of the settings."""
    return {**_builtins(), **parse(settings.LLM_CONNECTIONS)}


def get(name: str) -> Connection:
    """The connection of that name; InvalidInput (field ``connection``) when there is none."""
    found = registry()
    if name not in found:
        raise InvalidInput("connection", f"{name[:100]!r} is not a connection; known: {', '.join(sorted(found))}")
    return found[name]


def names() -> list[str]:
    return sorted(registry())


def url_error(url: str) -> str | None:
    """What is wrong with the form of an endpoint URL, else None (the address is not looked at)."""
    if not url.startswith(("http://", "https://")):
        return f"{url[:200]!r} is not an http(s) URL"
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return "credentials do not belong in the URL; a superuser defines a connection with its key"
    if not parts.hostname:
        return "the URL names no host"
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        return "the URL's port is not a number from 0 to 65535"
    if len(url) > 500:
        return "at most 500 characters"
    return None


def _not_public(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "non-public"
    return None


def free_url_error(url: str) -> str | None:
    """Why a free-form URL may not be called, else None: its form, and every address its host
    resolves to (loopback, link-local, private and other non-public ranges are refused unless a
    connection names that origin). Run at creation and again before each call."""
    error = url_error(url)
    if error:
        return error
    wanted = origin(url)
    if any(origin(c.base_url) == wanted for c in registry().values()):
        return None
    _, host, port = wanted
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"the host {host[:100]!r} does not resolve"
    for info in infos:
        address = str(info[4][0])
        kind = _not_public(address)
        if kind:
            return (
                f"the host {host[:100]!r} resolves to {address}, a {kind} address; only a connection that a "
                "superuser defines may reach it"
            )
    return None


def for_url(base_url: str, *, prefer: str = "") -> str:
    """The name of the connection whose URL is exactly ``base_url`` (``prefer`` first), else ""."""
    found = registry()
    if prefer in found and found[prefer].base_url.rstrip("/") == base_url.rstrip("/"):
        return prefer
    for name, conn in found.items():
        if conn.base_url.rstrip("/") == base_url.rstrip("/"):
            return name
    return ""


def key_for(connection: str, base_url: str) -> str:
    """The key to send: the connection's own, and only to the connection's own URL."""
    if not connection:
        return ""
    conn = registry().get(connection)
    if conn is None or conn.base_url.rstrip("/") != base_url.rstrip("/"):
        return ""
    return conn.api_key()
