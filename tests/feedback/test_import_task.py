"""The import task: a redelivered task finishes a batch its lost worker left running; a finished one is left alone."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback.importers.uploads import import_upload_create
from feedback.models import ImportBatch, Sample
from feedback.tasks import import_batch_run_task
from tests.conftest import SHARED_FORMATS

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(project, admin_user, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("vlsafe.jsonl", (SHARED_FORMATS / "vlsafe_example.jsonl").read_bytes())
    with django_capture_on_commit_callbacks(execute=False) as queued:
        batch = import_upload_create(project=project, user=admin_user, format="vlsafe", upload=upload)
    assert len(queued) == 1  # enqueued once the batch row is committed
    return batch


def test_task_runs_a_queued_batch_once(batch):
    import_batch_run_task(batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.created) == (ImportBatch.Status.COMPLETED, 3)
    finished_at = batch.finished_at

    import_batch_run_task(batch.pk)  # a duplicate delivery
    batch.refresh_from_db()
    assert batch.finished_at == finished_at
    assert Sample.objects.count() == 3


def test_redelivered_task_finishes_a_batch_left_running(batch):
    import_batch_run_task(batch.pk)
    # As if the worker had died after storing the samples but before marking the batch done.
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.RUNNING, created=99, records_read=99)

    import_batch_run_task(batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.COMPLETED
    assert (batch.records_read, batch.created, batch.skipped, batch.rejected) == (3, 0, 3, 0)
    assert Sample.objects.count() == 3
