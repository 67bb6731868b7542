"""Images by reference fetched by a real Celery worker (the ``default`` queue) from a real loopback
HTTP server, and the worker's heartbeats: recorded, shown to admins, flagged stale once it is killed."""

from __future__ import annotations

import pytest

from feedback.models import Image, ImportBatch
from feedback.references.models import ImageReference
from feedback.references.service import batch_references
from feedback.workers.models import WorkerHeartbeat
from feedback.workers.selectors import workers_list
from tests.conftest import make_user, token_client
from tests.image_server import image_server, wait_until  # noqa: F401
from tests.worker import WorkerProcess

from .import_helpers import native_record, run_import, write_jsonl

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
State = ImageReference.State


def worker_env(server) -> dict[str, str]:
    return {
        "ANNOTATOR_IMAGE_REF_HOSTS": f"http://127.0.0.1:{server.port}",
        "ANNOTATOR_IMAGE_REF_PRIVATE_NETWORKS": "127.0.0.0/8",
        "ANNOTATOR_IMAGE_FETCH_READ_TIMEOUT": "0.5",
        "ANNOTATOR_IMAGE_FETCH_MAX_ATTEMPTS": "2",
        "ANNOTATOR_IMAGE_FETCH_BACKOFF_BASE": "0.1",
        "ANNOTATOR_IMAGE_MAX_BYTES": str(1024 * 1024),
        "ANNOTATOR_WORKER_HEARTBEAT_INTERVAL": "0.5",
    }


def test_a_real_worker_fetches_references_and_beats(settings, image_server, project, tmp_path, client):  # noqa: F811
    settings.IMAGE_REF_HOSTS = [f"http://127.0.0.1:{image_server.port}"]
    settings.WORKER_STALE_AFTER = 2.0
    image_server.slow_seconds = 2.0
    base = image_server.base
    records = [native_record(f"ok{i}", {"ref": f"{base}/img/ok{i}.png"}) for i in range(6)] + [
        native_record("flaky", {"ref": f"{base}/flaky/flaky.png"}),
        native_record("missing", {"ref": f"{base}/gone/missing.png"}),
        native_record("text", {"ref": f"{base}/text/text.png"}),
        native_record("big", {"ref": f"{base}/big/big.png"}),
        native_record("slow", {"ref": f"{base}/slow/slow.png"}),
        native_record("far", {"file_name": "far.png", "ref": "https://images.example.org/far.png"}),
    ]
    batch = run_import(project, "native", write_jsonl(tmp_path / "refs.jsonl", records))
    assert (batch.status, batch.created) == (ImportBatch.Status.COMPLETED, 12)
    assert ImageReference.objects.filter(state=State.PENDING).count() == 11

    worker = WorkerProcess("default,exports", log_path=tmp_path / "worker.log", env=worker_env(image_server))
    try:
        done = worker.wait_for(lambda: not batch_references(batch).pending, timeout=90)
        assert done, f"references still pending:\n{worker.output()}"
        beat = WorkerHeartbeat.objects.get()
        assert beat.queues == ["default", "exports"] and beat.pool == "threads" and beat.concurrency == 2
        first_seen = beat.last_seen
        assert wait_until(lambda: WorkerHeartbeat.objects.get().last_seen > first_seen, timeout=10)
        assert [w.state for w in workers_list()] == ["alive"]
    finally:
        worker.kill()

    report = batch_references(batch)
    assert (report.total, report.fetched, report.failed) == (12, 7, 5), report.failures
    reasons = {str(f["file_name"]): str(f["reason"]) for f in report.failures}
    assert "HTTP 404" in reasons["missing.png"]
    assert "not an image" in reasons["text.png"]
    assert "ANNOTATOR_IMAGE_MAX_BYTES" in reasons["big.png"]
    assert "timeout" in reasons["slow.png"]
    assert "not allowed" in reasons["far.png"]
    assert Image.objects.filter(project=project).exclude(file="").count() == 7
    assert image_server.hits["/flaky/flaky.png"] == 2  # a 503, then the image

    # Killed: no goodbye; once its heartbeat is older than the threshold, admins see it stale.
    assert wait_until(lambda: [w.state for w in workers_list()] == ["stale"], timeout=10)
    admin = make_user("root", is_superuser=True)
    client.force_login(admin)
    page = client.get("/workers/").content.decode()
    assert 'data-state="stale"' in page and "1 stale worker." in page
    api = token_client(admin).get("/api/workers/").json()
    assert api[0]["state"] == "stale" and api[0]["queues"] == ["default", "exports"]


def test_a_worker_stopped_cleanly_says_so(settings, project, tmp_path):
    worker = WorkerProcess(
        "default", log_path=tmp_path / "worker.log", env={"ANNOTATOR_WORKER_HEARTBEAT_INTERVAL": "0.5"}
    )
    try:
        assert worker.wait_for(lambda: WorkerHeartbeat.objects.exists(), timeout=60), worker.output()
    finally:
        worker.stop()
    assert [w.state for w in workers_list()] == ["stopped"]
