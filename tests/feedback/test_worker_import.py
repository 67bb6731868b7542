"""An upload imported by a real Celery worker on the configured broker (filesystem, Redis,
RabbitMQ), and one whose worker is killed mid-way, finished by the next worker."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback import storage
from feedback.importers.uploads import import_upload_create
from feedback.models import ImportBatch, Sample, Turn
from tests.conftest import SHARED_FORMATS
from tests.recovery_helpers import import_settled, reached, write_native
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_uploaded_file_is_imported_by_a_real_worker(project, admin_user, tmp_path):
    upload = SimpleUploadedFile("harmlessness_nlf.jsonl", (SHARED_FORMATS / "dress_nlf_example.jsonl").read_bytes())
    batch = import_upload_create(project=project, user=admin_user, format="dress", upload=upload)
    assert batch.status == ImportBatch.Status.QUEUED

    worker = WorkerProcess(log_path=tmp_path / "worker.log")
    try:
        settled = worker.wait_for(import_settled(batch), timeout=90)
        assert settled, f"the worker did not run the import:\n{worker.output()}"
    finally:
        worker.stop()

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.rejected) == (1, 1, 0)
    sample = Sample.objects.get(project=project)
    assert sample.target_criterion == "harmlessness"
    assert sample.turns.count() == 2


def test_a_worker_killed_mid_import_leaves_it_to_the_next_worker_which_stores_every_record_once(
    project, admin_user, tmp_path
):
    total = 3000
    path = write_native(tmp_path / "big.jsonl", total)
    upload = SimpleUploadedFile("big.jsonl", path.read_bytes())
    batch = import_upload_create(project=project, user=admin_user, format="native", upload=upload)
    upload_folder = storage.local_path(storage.UPLOADS, batch.upload_path).parent
    env = {"ANNOTATOR_IMPORT_CHUNK_SIZE": "100"}

    first = WorkerProcess(log_path=tmp_path / "first.log", env=env)
    try:
        assert first.wait_for(reached(batch, "records_read", total // 5), timeout=90), first.output()
    finally:
        first.kill()  # SIGKILL, mid-import: the filesystem broker has already deleted its message
    batch.refresh_from_db()
    killed_at = batch.records_read
    assert batch.status == ImportBatch.Status.RUNNING and killed_at < total
    assert Sample.objects.filter(project=project).count() == killed_at  # chunks and checkpoints commit together

    second = WorkerProcess(log_path=tmp_path / "second.log", env=env)
    try:
        assert second.wait_for(import_settled(batch), timeout=120), f"the import was not recovered:\n{second.output()}"
    finally:
        second.stop()
    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert batch.attempts == 2
    # Resumed after the last committed chunk: every record created once, none read twice.
    assert (batch.records_read, batch.created, batch.skipped, batch.rejected) == (total, total, 0, 0)
    assert Sample.objects.filter(project=project).count() == total
    assert Turn.objects.filter(sample__project=project).count() == total
    assert not upload_folder.exists() and batch.upload_removed_at is not None
