"""Three machines that share no disk: a web server and two workers (one for LLM calls, one for
imports and releases), each with its own ``ANNOTATOR_VAR_DIR`` and local folders, sharing only
PostgreSQL, the Redis or RabbitMQ broker and the S3 server. Through the web server's API: an upload
with images is imported, drafted through the LLM simulator, reviewed, and released; the release's
files download (signed URLs to the store) with the manifest's sizes and sha256, and nothing was
written to any machine's own media, uploads or releases folder."""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from feedback.models import Role
from tests.conftest import make_user
from tests.feedback.import_helpers import image_bytes
from tests.http_helpers import Browser, Reply, call, gunicorn_server, post_json
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.services]

SAMPLES = 6


def need_shared_services() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("machines that share no disk share a PostgreSQL database (this run is on SQLite)")
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("machines that share no disk share a network broker (this run uses the filesystem broker)")


def machine_env(root: Path, name: str, s3: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """A machine's environment: its own var folder (and local folders in it), the shared services."""
    var = root / name
    return {
        **s3,
        **extra,
        "ANNOTATOR_VAR_DIR": str(var),
        "ANNOTATOR_MEDIA_ROOT": str(var / "media"),
        "ANNOTATOR_UPLOAD_DIR": str(var / "uploads"),
        "ANNOTATOR_RELEASES_ROOT": str(var / "releases"),
        "DJANGO_SECRET_KEY": f"two-machines-{name}-{uuid.uuid4().hex}",
    }


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, value in fields.items():
        body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (file_name, data) in files.items():
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


def until(what: str, check: Callable[[], Reply | None], timeout: float, *logs: WorkerProcess) -> Reply:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = check()
        if answer is not None:
            return answer
        time.sleep(0.5)
    pytest.fail(f"{what}: not within {timeout:.0f} s\n" + "\n".join(w.output() for w in logs))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - the test S3 server on loopback
        return answer.read()


def test_a_web_server_and_two_workers_sharing_no_disk_import_draft_review_and_release(
    project, tmp_path, s3_storages, llm_simulator
):
    need_shared_services()
    admin = make_user("ada", project=project, role=Role.ADMIN)
    annotator = make_user("ann", project=project, role=Role.ANNOTATOR)
    admin_token = Token.objects.create(user=admin).key
    annotator_token = Token.objects.create(user=annotator).key
    llm = {
        "ANNOTATOR_LLM_BASE_URL": llm_simulator.url,
        "ANNOTATOR_LLM_TIMEOUT": "5",
        "ANNOTATOR_LLM_BACKOFF_BASE": "0.05",
        "ANNOTATOR_LLM_BACKOFF_MAX": "0.5",
        "ANNOTATOR_JOB_WATCH_INTERVAL": "1",
    }
    envs = {name: machine_env(tmp_path, name, s3_storages, llm) for name in ("web", "llm", "exports")}

    records = [
        {"id": f"s{i}", "image": f"pic{i}.png", "turns": [{"user": f"What is in picture {i}?", "model": "A square."}]}
        for i in range(SAMPLES)
    ]
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    pictures = io.BytesIO()
    with zipfile.ZipFile(pictures, "w") as archive:
        for i in range(SAMPLES):
            archive.writestr(f"pic{i}.png", image_bytes(color=(i * 40, 90, 10)))

    llm_worker = WorkerProcess("llm", log_path=tmp_path / "llm.log", env=envs["llm"])
    exports_worker = WorkerProcess("default,exports", log_path=tmp_path / "exports.log", env=envs["exports"])
    workers = (llm_worker, exports_worker)
    try:
        with gunicorn_server(envs["web"], log_path=tmp_path / "web.log") as web:
            api = f"{web}/api/projects/{project.slug}"
            admin_auth = {"Authorization": f"Token {admin_token}"}

            # The upload, through the web server into the store; imported by the other machine.
            body, content_type = multipart(
                {"format": "native"}, {"file": ("samples.jsonl", data), "images": ("pics.zip", pictures.getvalue())}
            )
            created = call("POST", f"{api}/imports/", body, {**admin_auth, "Content-Type": content_type})
            assert created.status == 202, created.body
            batch_url = f"{api}/imports/{created.json()['id']}/"

            def imported() -> Reply | None:
                answer = call("GET", batch_url, headers=admin_auth)
                return answer if answer.json()["status"] in ("completed", "failed") else None

            batch = until("the import", imported, 120, *workers).json()
            assert batch["status"] == "completed", batch
            assert batch["created"] == SAMPLES and not batch["warnings"], batch

            # Drafts, by the LLM worker through the simulator.
            job = post_json(f"{api}/jobs/", {"kind": "draft"}, admin_token)
            assert job.status == 202, job.body
            job_url = f"{api}/jobs/{job.json()['id']}/"

            def drafted() -> Reply | None:
                answer = call("GET", job_url, headers=admin_auth)
                return answer if answer.json()["state"] in ("completed", "failed", "cancelled") else None

            done = until("the drafting job", drafted, 180, *workers).json()
            assert done["state"] == "completed", done

            # Reviews, through the API: every draft accepted.
            review = f"{api}/review/"
            for _ in range(SAMPLES):
                page = post_json(f"{review}claim/", {}, annotator_token)
                assert page.status == 200, page.body
                claimed = page.json()
                assert claimed["sample"]["image"]["missing"] is False
                for turn in claimed["turns"]:
                    if turn["reviewable"]:
                        saved = post_json(
                            f"{review}assignments/{claimed['id']}/turns/{turn['id']}/revisions/",
                            {"base_version": 0, "decision": "accepted"},
                            annotator_token,
                        )
                        assert saved.status in (200, 201), saved.body
                assert saved.json()["completed"] is True

            # The image, served by the web server from the store (a signed URL), to a signed-in reviewer.
            browser = Browser(web)
            assert browser.log_in("ann", "pw-ann").status == 302
            image = browser.request(claimed["sample"]["image"]["url"])
            assert image.status == 302, image.body
            assert fetch(image.headers["location"]).startswith(b"\x89PNG")

            # The release, built by the exports worker into the store.
            release = post_json(f"{api}/releases/", {"formats": ["dress", "rich"], "include_images": True}, admin_token)
            assert release.status in (201, 202), release.body
            release_url = f"{api}/releases/{release.json()['id']}/"

            def released() -> Reply | None:
                answer = call("GET", release_url, headers=admin_auth)
                return answer if answer.json()["state"] in ("completed", "failed", "cancelled") else None

            built = until("the release", released, 180, *workers).json()
            assert built["state"] == "completed", built

            def download(path: str) -> bytes:
                answer = call("GET", f"{release_url}files/{path}", headers=admin_auth)
                assert answer.status == 302, answer.body  # a signed URL: the bytes come from the store
                return fetch(answer.headers["location"])

            manifest = json.loads(download("manifest.json"))
            assert manifest["counts"]["samples"] == SAMPLES
            for entry in manifest["files"]:
                content = download(entry["path"])
                assert (len(content), hashlib.sha256(content).hexdigest()) == (entry["bytes"], entry["sha256"])
            assert {e["path"] for e in manifest["files"]} >= {"rich.jsonl", "images.tar", "helpfulness_nlf.jsonl"}
    finally:
        for worker in workers:
            worker.stop()

    for name in envs:  # nothing of the platform's files on any machine's own disk
        for folder in ("media", "uploads", "releases"):
            local = tmp_path / name / folder
            assert not local.exists() or not [p for p in local.rglob("*") if p.is_file()], (name, folder)
