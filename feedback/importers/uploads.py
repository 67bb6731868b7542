"""Imports that arrive as uploads (browser, API): saved under UPLOAD_DIR and run by a worker."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from ..models import ImportBatch, Project
from .service import import_batch_create


def _save(upload: UploadedFile, folder: Path) -> Path:
    name = Path(upload.name or "upload").name
    target = folder / name
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return target


def import_upload_create(
    *,
    project: Project,
    user,
    format: str,
    upload: UploadedFile,
    images: UploadedFile | None = None,
    criterion: str = "",
    source_model: str = "",
) -> ImportBatch:
    """Stores the files and queues the import on the worker, once the batch row is committed."""
    from ..tasks import import_batch_run_task

    folder = Path(settings.UPLOAD_DIR) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = _save(upload, folder)
    images_path = _save(images, folder) if images else ""
    batch = import_batch_create(
        project=project,
        format=format,
        file_name=path.name,
        user=user,
        upload_path=str(path),
        images_path=str(images_path),
        options={"criterion": criterion, "source_model": source_model},
    )
    transaction.on_commit(lambda: import_batch_run_task.delay(batch.pk))
    return batch
