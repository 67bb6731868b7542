"""An upload imported by a real Celery worker on the configured broker (filesystem, Redis)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback.importers.uploads import import_upload_create
from feedback.models import ImportBatch, Sample
from tests.conftest import SHARED_FORMATS
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_uploaded_file_is_imported_by_a_real_worker(project, admin_user, tmp_path):
    upload = SimpleUploadedFile("harmlessness_nlf.jsonl", (SHARED_FORMATS / "dress_nlf_example.jsonl").read_bytes())
    batch = import_upload_create(project=project, user=admin_user, format="dress", upload=upload)
    assert batch.status == ImportBatch.Status.QUEUED

    worker = WorkerProcess(log_path=tmp_path / "worker.log")
    try:

        def finished():
            batch.refresh_from_db()
            return batch.status in (ImportBatch.Status.COMPLETED, ImportBatch.Status.FAILED)

        assert worker.wait_for(finished, timeout=90), f"the worker did not run the import:\n{worker.output()}"
    finally:
        worker.stop()

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.rejected) == (1, 1, 0)
    sample = Sample.objects.get(project=project)
    assert sample.target_criterion == "harmlessness"
    assert sample.turns.count() == 2
