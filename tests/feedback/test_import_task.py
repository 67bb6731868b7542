"""The import task and its attempts: one attempt at a time holds a batch (a duplicate or
concurrent one is refused, a stale one's writes are refused), and a batch whose attempt died is
queued again by the sweep and resumes after its last committed chunk, storing nothing twice."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback import storage
from feedback.importers import service
from feedback.importers.uploads import import_upload_create
from feedback.models import ImportBatch, Sample, Turn
from feedback.tasks import import_batch_run_task
from tests.conftest import SHARED_FORMATS
from tests.recovery_helpers import ended_owner, forced_sweep, write_native

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(project, admin_user, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("vlsafe.jsonl", (SHARED_FORMATS / "vlsafe_example.jsonl").read_bytes())
    with django_capture_on_commit_callbacks(execute=False) as queued:
        batch = import_upload_create(project=project, user=admin_user, format="vlsafe", upload=upload)
    assert len(queued) == 1  # enqueued once the batch row is committed
    return batch


@pytest.fixture
def big_batch(project, admin_user, tmp_path, settings, django_capture_on_commit_callbacks):
    settings.IMPORT_CHUNK_SIZE = 10
    path = write_native(tmp_path / "big.jsonl", 95, turns=2)
    upload = SimpleUploadedFile("big.jsonl", path.read_bytes())
    with django_capture_on_commit_callbacks(execute=False):
        return import_upload_create(project=project, user=admin_user, format="native", upload=upload)


def test_task_runs_a_queued_batch_once(batch):
    import_batch_run_task(batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.created, batch.attempts) == (ImportBatch.Status.COMPLETED, 3, 1)
    finished_at = batch.finished_at

    import_batch_run_task(batch.pk)  # a duplicate delivery
    batch.refresh_from_db()
    assert batch.finished_at == finished_at and batch.attempts == 1
    assert Sample.objects.count() == 3


def test_a_second_attempt_is_refused_while_one_holds_the_batch(batch):
    first = service.import_batch_claim(batch.pk)
    assert first is not None
    assert service.import_batch_claim(batch.pk) is None  # a concurrent or duplicate delivery
    import_batch_run_task(batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.attempt, batch.attempts) == (ImportBatch.Status.RUNNING, first[1], 1)
    assert Sample.objects.count() == 0


class Killed(BaseException):
    """Ends an attempt the way a killed process does: nothing after it runs."""


def test_a_dead_attempt_is_requeued_by_the_sweep_and_resumes_after_its_last_committed_chunk(big_batch):
    def die_at_fourth_checkpoint(b: ImportBatch) -> None:
        if b.records_read >= 40:
            raise Killed  # inside the chunk's transaction: the fourth chunk is lost with it

    claim = service.import_batch_claim(big_batch.pk)
    assert claim is not None
    claimed, token = claim
    with pytest.raises(Killed):
        service._run(claimed, token, storage.local_path(storage.UPLOADS, claimed.upload_path), die_at_fourth_checkpoint)
    big_batch.refresh_from_db()
    assert (big_batch.status, big_batch.records_read, big_batch.created) == (ImportBatch.Status.RUNNING, 30, 30)
    assert Sample.objects.count() == 30

    assert forced_sweep()["requeued"] == 0  # its process (this one) still lives
    ImportBatch.objects.filter(pk=big_batch.pk).update(attempt_owner=ended_owner())
    assert forced_sweep()["requeued"] == 1
    big_batch.refresh_from_db()
    assert big_batch.status == ImportBatch.Status.QUEUED

    import_batch_run_task(big_batch.pk)
    big_batch.refresh_from_db()
    assert big_batch.status == ImportBatch.Status.COMPLETED, big_batch.failure
    assert big_batch.attempts == 2
    # Resumed after line 30: every record read and created once, none found again as skipped.
    assert (big_batch.records_read, big_batch.created, big_batch.skipped) == (95, 95, 0)
    assert Sample.objects.count() == 95 and Turn.objects.count() == 190


def test_a_lease_that_ran_out_is_taken_over_and_the_stale_attempt_writes_nothing(big_batch, settings):
    stale = service.import_batch_claim(big_batch.pk)
    assert stale is not None
    stale_batch, stale_token = stale
    settings.WORK_LEASE = 0  # its lease runs out (it ran on another machine, say, and went silent)
    assert forced_sweep()["requeued"] == 1
    settings.WORK_LEASE = 120
    taken = service.import_batch_claim(big_batch.pk)
    assert taken is not None and taken[1] != stale_token

    after = service._run(stale_batch, stale_token, storage.local_path(storage.UPLOADS, stale_batch.upload_path), None)
    assert after.status == ImportBatch.Status.RUNNING and after.attempt == taken[1]
    assert Sample.objects.count() == 0  # its first chunk was rolled back with its refused checkpoint

    done = service._run(*taken, storage.local_path(storage.UPLOADS, taken[0].upload_path), None)
    assert (done.status, done.created) == (ImportBatch.Status.COMPLETED, 95)
    assert Sample.objects.count() == 95


def test_an_interrupted_command_line_import_is_marked_failed_not_requeued(project, tmp_path):
    path = write_native(tmp_path / "cli.jsonl", 3)
    batch = service.import_batch_create(project=project, format="native", file_name=path.name)
    service.import_batch_claim(batch.pk)
    ImportBatch.objects.filter(pk=batch.pk).update(attempt_owner=ended_owner())
    assert forced_sweep()["interrupted"] == 1
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED and "interrupted" in batch.failure
