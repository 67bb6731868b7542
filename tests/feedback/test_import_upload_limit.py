"""The import upload's size cap (ANNOTATOR_UPLOAD_MAX_BYTES): 413 naming the field, answered from
Content-Length before the body is read, on the API and on the import page, over real HTTP."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from feedback.models import ImportBatch
from tests.conftest import token_client

HUGE = 10 * 1024**3  # declared, never sent


def field_errors(body: dict) -> dict:
    """The messages by field, in DRF's plain shape or the API's {"detail", "code", "errors"}."""
    return body["errors"] if "errors" in body and "detail" in body else body


def send_headers_only(live_server, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    """A POST that declares a 10 GB multipart body and sends 100 bytes of it: a server that read
    the body before answering would wait until the timeout fails the test."""
    url = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    conn.putrequest("POST", path)
    for name, value in {
        "Content-Type": "multipart/form-data; boundary=xyz",
        "Content-Length": str(HUGE),
        **headers,
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(b"--xyz\r\n" + b"x" * 93)
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


@pytest.mark.django_db(transaction=True)
def test_api_answers_413_from_the_declared_length_before_reading_the_body(live_server, project, admin_user):
    token = Token.objects.get_or_create(user=admin_user)[0].key

    response = send_headers_only(
        live_server, f"/api/projects/{project.slug}/imports/", {"Authorization": f"Token {token}"}
    )

    assert response.status == 413
    [message] = field_errors(json.loads(response.body))["file"]  # type: ignore[attr-defined]
    assert "ANNOTATOR_UPLOAD_MAX_BYTES" in message
    assert f"{HUGE:,} bytes" in message
    assert not ImportBatch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_import_page_answers_413_before_reading_the_body(live_server, project, admin_user):
    browser = Client()
    browser.force_login(admin_user)
    session = browser.cookies["sessionid"].value

    response = send_headers_only(
        live_server, f"/projects/{project.slug}/imports/new/", {"Cookie": f"sessionid={session}"}
    )

    assert response.status == 413
    text = response.body.decode()  # type: ignore[attr-defined]
    assert text.startswith("file: the upload is ")
    assert "ANNOTATOR_UPLOAD_MAX_BYTES" in text
    assert not ImportBatch.objects.exists()


def upload(size: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("samples.jsonl", b'{"id": "x", "turns": [{"user": "Q"}]}\n' + b" " * size)


@pytest.mark.django_db
def test_uploads_over_a_configured_cap_are_refused_and_under_it_accepted(project, admin_user, settings):
    settings.UPLOAD_MAX_BYTES = 5000
    api = token_client(admin_user)

    refused = api.post(f"/api/projects/{project.slug}/imports/", {"format": "native", "file": upload(6000)})
    assert refused.status_code == 413
    assert "over the limit of 5,000 (ANNOTATOR_UPLOAD_MAX_BYTES)" in field_errors(refused.json())["file"][0]
    assert not ImportBatch.objects.exists()
    assert not any(settings.UPLOAD_DIR.glob("*/*")) if settings.UPLOAD_DIR.exists() else True

    accepted = api.post(f"/api/projects/{project.slug}/imports/", {"format": "native", "file": upload(100)})
    assert accepted.status_code == 202, accepted.content

    page = Client()
    page.force_login(admin_user)
    refused = page.post(f"/projects/{project.slug}/imports/new/", {"format": "native", "file": upload(6000)})
    assert refused.status_code == 413
    assert refused.content.decode().startswith("file: the upload is ")


@pytest.mark.django_db
def test_the_import_page_still_checks_the_csrf_token(project, admin_user):
    page = Client(enforce_csrf_checks=True)
    page.force_login(admin_user)

    response = page.post(f"/projects/{project.slug}/imports/new/", {"format": "native", "file": upload(10)})

    assert response.status_code == 403
    assert not ImportBatch.objects.exists()
