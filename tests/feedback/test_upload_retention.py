"""Uploads are removed once their import completes; a failed import's are kept for
ANNOTATOR_FAILED_UPLOAD_KEEP_HOURS, then removed by the sweep. Files the command line named are
never removed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from feedback import recovery, storage
from feedback.importers.service import import_file
from feedback.importers.uploads import import_upload_create
from feedback.models import ImportBatch
from feedback.tasks import import_batch_run_task
from tests.conftest import SHARED_FORMATS
from tests.recovery_helpers import forced_sweep, write_native

pytestmark = pytest.mark.django_db


def upload(project, user, name: str, content: bytes, format: str = "vlsafe") -> ImportBatch:
    batch = import_upload_create(project=project, user=user, format=format, upload=SimpleUploadedFile(name, content))
    import_batch_run_task(batch.pk)
    batch.refresh_from_db()
    return batch


def test_a_completed_import_removes_its_upload(project, admin_user):
    batch = upload(project, admin_user, "vlsafe.jsonl", (SHARED_FORMATS / "vlsafe_example.jsonl").read_bytes())
    assert batch.status == ImportBatch.Status.COMPLETED
    assert batch.upload_removed_at is not None
    assert not storage.local_path(storage.UPLOADS, batch.upload_path).parent.exists()


def test_a_failed_import_keeps_its_upload_for_the_keeping_time_then_the_sweep_removes_it(project, admin_user, settings):
    settings.FAILED_UPLOAD_KEEP_HOURS = 72
    batch = upload(project, admin_user, "captions.json", b"not json at all", format="coco")
    assert batch.status == ImportBatch.Status.FAILED
    kept = storage.local_path(storage.UPLOADS, batch.upload_path)
    assert kept.exists()
    assert forced_sweep()["uploads_removed"] == 0  # failed just now

    ImportBatch.objects.filter(pk=batch.pk).update(finished_at=timezone.now() - timedelta(hours=73))
    assert forced_sweep()["uploads_removed"] == 1
    batch.refresh_from_db()
    assert batch.upload_removed_at is not None and not kept.parent.exists()


def test_a_command_line_import_never_removes_the_file_it_was_given(project, tmp_path):
    path = write_native(tmp_path / "mine.jsonl", 2)
    batch = import_file(project=project, format="native", path=path)
    assert batch.status == ImportBatch.Status.COMPLETED
    assert path.exists() and batch.upload_removed_at is None


def test_only_one_sweep_runs_per_interval(settings):
    settings.SWEEP_INTERVAL = 3600
    assert recovery.sweep() is not None
    assert recovery.sweep() is None  # another worker's turn came and went
    assert recovery.sweep(force=True) is not None
