"""/healthz: no login, the database and the broker checked, 200 or 503 with nothing secret in it."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from feedback.workers.views import REFUSAL
from tests.conftest import make_user, token_client

pytestmark = pytest.mark.django_db


def test_healthy_answers_200_without_a_login(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]
    assert "no-cache" in answer["Cache-Control"] or "max-age=0" in answer["Cache-Control"]
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_an_unreachable_broker_is_503_and_names_no_secret(client, settings):
    settings.CELERY_BROKER_URL = "redis://:s3cret-pass@127.0.0.1:1/0"
    settings.HEALTH_TIMEOUT = 1.0
    answer = client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["error"]
    text = answer.content.decode()
    assert "s3cret" not in text and "127.0.0.1" not in text and "redis" not in text


def test_a_missing_filesystem_broker_folder_is_503(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "gone")}
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["broker"] == {
        "ok": False,
        "error": "FileNotFoundError",
        "ms": answer.json()["checks"]["broker"]["ms"],
    }


def test_healthz_is_not_redirected_to_https(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/login/").status_code == 301


def test_the_workers_page_and_api_are_for_admins(client, project):
    user = make_user("ann", project=project, role="annotator")
    client.force_login(user)
    assert client.get("/workers/").status_code == 403
    answer = token_client(user).get("/api/workers/")
    assert answer.status_code == 403 and answer.json()["detail"] == REFUSAL
    admin = make_user("root", is_superuser=True)
    client.force_login(admin)
    page = client.get("/workers/")
    assert page.status_code == 200 and "No worker has recorded a heartbeat yet." in page.content.decode()
    assert token_client(admin).get("/api/workers/").json() == []
    assert django_settings.WORKER_STALE_AFTER > django_settings.WORKER_HEARTBEAT_INTERVAL
