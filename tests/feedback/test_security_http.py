"""Bounds on request bodies, nesting of JSON bodies, security headers and the deployment check,
against real servers: gunicorn in a child process, and Django's live server."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from feedback.limits import JSON_MAX_DEPTH
from tests.conftest import make_user
from tests.http_helpers import Browser, call, chunked, gunicorn_server, post_json, raw_exchange

ROOT = Path(__file__).resolve().parents[2]
JOBS = "/api/projects/test/jobs/"


@pytest.fixture(autouse=True)
def fresh_throttles():
    cache.clear()  # the token endpoint's throttle counts live in the cache
    yield
    cache.clear()


def deep_json(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def admin_token(project) -> str:
    from feedback.models import Role

    return Token.objects.create(user=make_user("boss", project=project, role=Role.ADMIN)).key


# Body sizes ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_anonymous_body_past_the_bound_is_refused_before_it_is_read(tmp_path):
    """200 MB announced, 256 KB sent: the answer must come while the body is still unfinished
    (a server that read it first would wait, and the exchange time out)."""
    with gunicorn_server(log_path=tmp_path / "gunicorn.log") as base:
        head = (
            "POST /api/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
        )
        reply = raw_exchange(base, head, [b'{"username": "' + b"a" * 1024] * 256, timeout=20)
    assert reply.status == 413, reply
    assert "ANNOTATOR_ANON_BODY_MAX_BYTES" in reply.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_counted_and_refused_past_the_bound_and_read_within_it(project, tmp_path):
    token = admin_token(project)
    make_user("ann")
    env = {"ANNOTATOR_JSON_MAX_BYTES": "100000"}
    with gunicorn_server(env, log_path=tmp_path / "gunicorn.log") as base:
        # Signed in, 160 KB in 16 KB chunks to a JSON endpoint, no length given.
        head = (
            f"POST {JOBS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Token {token}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        reply = raw_exchange(base, head, chunked([b" " * 16 * 1024] * 10))
        assert reply.status == 413, reply
        assert "at most 100,000 bytes (ANNOTATOR_JSON_MAX_BYTES)" in reply.json()["detail"]

        # Within the bound, a chunked body is read like any other.
        credentials = json.dumps({"username": "ann", "password": "pw-ann"}).encode()
        head = (
            "POST /api/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        reply = raw_exchange(base, head, chunked([credentials[:10], credentials[10:]]))
        assert reply.status == 200, reply
        assert reply.json()["token"]


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_json_body_past_its_bound_is_refused_and_one_within_is_served(project, tmp_path):
    token = admin_token(project)
    with gunicorn_server({"ANNOTATOR_JSON_MAX_BYTES": "100000"}, log_path=tmp_path / "gunicorn.log") as base:
        big = post_json(base + JOBS, b'{"note": "' + b"x" * 100_000 + b'"}', token=token)
        small = post_json(base + JOBS, {"kind": "no-such-kind"}, token=token)
    assert big.status == 413
    assert "ANNOTATOR_JSON_MAX_BYTES" in big.json()["detail"]
    assert small.status == 400  # read and validated: the job's kind is wrong
    assert "kind" in small.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_an_anonymous_multipart_body_is_refused_but_the_login_form_works(tmp_path):
    make_user("ann")
    with gunicorn_server(log_path=tmp_path / "gunicorn.log") as base:
        boundary = "b0undary"
        part = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + b"x" * 200_000
            + f"\r\n--{boundary}--\r\n".encode()
        )
        reply = call("POST", base + "/login/", part, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert reply.status == 413
        assert "ANNOTATOR_ANON_BODY_MAX_BYTES" in reply.json()["detail"]

        browser = Browser(base)
        reply = browser.log_in("ann", "pw-ann")
        assert reply.status == 302 and reply.headers["location"] == "/"
        assert browser.request("/").status == 200


# JSON nesting -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_deep_json_is_a_clear_400_on_the_token_endpoint_and_a_signed_in_one(live_server, project):
    token = admin_token(project)
    body = deep_json(3000)  # 6 KB
    assert len(body) == 6000
    for url, key in ((live_server.url + "/api/auth/token/", None), (live_server.url + JOBS, token)):
        reply = post_json(url, body, token=key)
        assert reply.status == 400, (url, reply)
        assert f"nested deeper than {JSON_MAX_DEPTH} levels" in reply.json()["detail"]
    # Nesting within the bound still parses: the endpoint gets to say what is wrong with it.
    reply = post_json(live_server.url + JOBS, {"kind": [[["draft"]]]}, token=token)
    assert reply.status == 400 and "kind" in reply.json()["errors"]


def test_every_api_view_parses_json_with_the_bounded_parser():
    """A view that names its own parsers must keep the nesting bound (a plain JSONParser would 500)."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from rest_framework.parsers import JSONParser

    from feedback.rest.parsers import BoundedJSONParser

    def views(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from views(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and (view_class := getattr(pattern.callback, "cls", None)) is not None:
                yield str(pattern.pattern), view_class

    found = list(views(get_resolver().url_patterns))
    assert len(found) > 20
    for route, view in found:
        json_parsers = [p for p in view.parser_classes if issubclass(p, JSONParser)]
        assert json_parsers, route
        assert all(issubclass(p, BoundedJSONParser) for p in json_parsers), (route, view.parser_classes)


# Headers and deployment settings ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pages_and_the_api_send_nosniff_and_a_referrer_policy(live_server):
    for path in ("/login/", "/api/projects/"):
        reply = call("GET", live_server.url + path)
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["referrer-policy"] == "same-origin"
        assert reply.headers["x-frame-options"] == "DENY"


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_ALLOWED_HOSTS": "annotate.example.org",
    "DJANGO_SECURE_SSL_REDIRECT": "1",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SESSION_COOKIE_SECURE": "1",
    "DJANGO_CSRF_COOKIE_SECURE": "1",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "DJANGO_SESSION_AGE": "28800",
}


def deploy_check(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, "ANNOTATOR_VAR_DIR": str(tmp_path), "DJANGO_SECRET_KEY": secrets.token_urlsafe(60), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deployment_check_is_clean_with_the_production_settings(tmp_path):
    result = deploy_check(tmp_path, PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deployment_check_names_what_is_missing_without_them(tmp_path):
    result = deploy_check(tmp_path, {"DJANGO_ALLOWED_HOSTS": "annotate.example.org"})
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


def test_a_malformed_proxy_header_setting_is_refused_by_name(tmp_path):
    result = deploy_check(tmp_path, {**PRODUCTION, "DJANGO_SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"})
    assert result.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER must be" in result.stderr
