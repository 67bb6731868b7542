"""Image references: parsed, checked against the allow-lists, and joined to a base.

Three kinds: ``s3://bucket/key`` (a bucket of ``IMAGE_REF_S3_BUCKETS``), ``https://host/path``
(a host of ``IMAGE_REF_HOSTS``; ``http://`` only for a host listed with ``http://``) and an
absolute path under ``IMAGE_REF_ROOT``. Checking a reference needs no network: the host's
addresses are resolved and checked when it is fetched (feedback/references/fetch.py).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from django.conf import settings

from .models import URI_MAX

DEFAULT_PORTS = {"http": 80, "https": 443}


class RefRefused(ValueError):
    """A reference that is not allowed or cannot be fetched for good; the message says why."""


@dataclass(frozen=True)
class Reference:
    kind: str  # "s3", "http" (for http and https) or "path"
    uri: str
    scheme: str = ""
    host: str = ""
    port: int = 0
    bucket: str = ""
    key: str = ""
    path: str = ""


@dataclass(frozen=True)
class HostRule:
    scheme: str  # "https", or "http" (which allows https too)
    host: str  # exact, or ".suffix" for "*.suffix"
    port: int | None  # None: the scheme's default port

    def allows(self, scheme: str, host: str, port: int) -> bool:
        if scheme == "http" and self.scheme != "http":
            return False
        matches = host.endswith(self.host) if self.host.startswith(".") else host == self.host
        wanted = self.port if self.port is not None else DEFAULT_PORTS[scheme]
        return matches and port == wanted


def host_rules(entries: list[str] | None = None) -> list[HostRule]:
    rules = []
    for entry in settings.IMAGE_REF_HOSTS if entries is None else entries:
        scheme, _, rest = entry.rpartition("://")
        scheme = (scheme or "https").lower()
        parts = urlsplit(f"//{rest}")
        host = (parts.hostname or "").lower()
        if scheme not in DEFAULT_PORTS or not host:
            raise RefRefused(f"ANNOTATOR_IMAGE_REF_HOSTS: {entry!r} is not a host, *.domain or http(s)://host[:port]")
        rules.append(HostRule(scheme, host[1:] if host.startswith("*.") else host, parts.port))
    return rules


def _check_text(uri: str) -> None:
    if len(uri) > URI_MAX:
        raise RefRefused(f"a reference is at most {URI_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in uri):
        raise RefRefused("a reference must not contain control characters")


def parse_reference(uri: str) -> Reference:
    """The reference, if it is well formed and allowed; RefRefused saying why otherwise."""
    _check_text(uri)
    if uri.startswith("/"):
        return _path_reference(uri)
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme == "s3":
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not bucket or not key:
            raise RefRefused(f"{uri!r} is not s3://bucket/key")
        if bucket not in settings.IMAGE_REF_S3_BUCKETS:
            raise RefRefused(f"bucket {bucket!r} is not allowed (ANNOTATOR_IMAGE_REF_S3_BUCKETS)")
        return Reference("s3", uri, scheme="s3", bucket=bucket, key=key)
    if scheme in DEFAULT_PORTS:
        parts = urlsplit(uri)
        if parts.username is not None or parts.password is not None:
            raise RefRefused("a reference must not carry credentials")
        host = (parts.hostname or "").lower()
        if not host:
            raise RefRefused(f"{uri!r} names no host")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise RefRefused(f"{uri!r} has a bad port") from None
        check_host_allowed(scheme, host, port)
        return Reference("http", uri, scheme=scheme, host=host, port=port)
    raise RefRefused(f"{uri[:80]!r} is not an s3://, https:// or absolute path reference")


def check_host_allowed(scheme: str, host: str, port: int) -> None:
    if not any(rule.allows(scheme, host, port) for rule in host_rules()):
        shown = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
        raise RefRefused(f"host {shown} is not allowed for {scheme} (ANNOTATOR_IMAGE_REF_HOSTS)")


def _path_reference(uri: str) -> Reference:
    root = settings.IMAGE_REF_ROOT
    if not root:
        raise RefRefused("path references need a read-only root (ANNOTATOR_IMAGE_REF_ROOT)")
    root = os.path.abspath(root)
    path = posixpath.normpath(uri)
    if not (path + "/").startswith(root.rstrip("/") + "/") or path == root:
        raise RefRefused(f"{uri!r} is not under the read-only root (ANNOTATOR_IMAGE_REF_ROOT)")
    return Reference("path", uri, path=path)


def join_reference(base: str, file_name: str) -> str:
    """The reference of ``file_name`` under the folder ``base`` (``s3://b/train2017/``, ``/data/x/``)."""
    base = base if base.endswith("/") else f"{base}/"
    name = file_name.lstrip("/")
    if base.startswith(("http://", "https://")):
        return base + quote(name, safe="/")
    return base + name


def check_base(base: str) -> None:
    """An images base is checked as a reference to a file under it would be."""
    parse_reference(join_reference(base, "x"))
