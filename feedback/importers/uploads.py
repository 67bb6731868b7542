"""Imports that arrive as uploads (browser, API): streamed into the uploads store and run by a worker.

An upload's size is checked from its ``Content-Length`` before anything reads the body (Django
spools uploaded files to disk as it parses them): past ``UPLOAD_MAX_BYTES`` the import page and the
API answer 413 naming the field. A multipart body without a ``Content-Length`` parses as empty.
"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from .. import storage
from ..errors import TooLarge
from ..models import ImportBatch, Project
from ..sending import IMPORT_RUN, send
from .service import import_batch_create

UPLOAD_FIELD = "file"


class UploadTooLarge(TooLarge):
    """An import upload over ``UPLOAD_MAX_BYTES``: 413, naming the ``file`` field."""

    def __init__(self, size: int) -> None:
        super().__init__(
            UPLOAD_FIELD,
            f"the upload is {size:,} bytes, over the limit of {settings.UPLOAD_MAX_BYTES:,} "
            "(ANNOTATOR_UPLOAD_MAX_BYTES); import large files from the command line",
        )


def check_upload_size(request: HttpRequest) -> None:
    """Refuses a body declared larger than the cap; call it before the body is read."""
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    if size > settings.UPLOAD_MAX_BYTES:
        raise UploadTooLarge(size)


def upload_size_checked(view):
    """For a page that takes an import upload: the size is checked before the CSRF check, which
    reads (and spools) the body; the CSRF check then runs as the middleware would have run it."""
    protected = csrf_protect(view)

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.method == "POST":
            try:
                check_upload_size(request)
            except UploadTooLarge as exc:
                return HttpResponse(f"{UPLOAD_FIELD}: {exc.message}", status=413, content_type="text/plain")
        return protected(request, *args, **kwargs)

    return wrapper


def _save(upload: UploadedFile, folder: str) -> str:
    """Streams the upload into the uploads store; its name there."""
    return storage.save_upload(storage.UPLOADS, f"{folder}/{Path(upload.name or 'upload').name}", upload)


def import_upload_create(
    *,
    project: Project,
    user,
    format: str,
    upload: UploadedFile,
    images: UploadedFile | None = None,
    criterion: str = "",
    source_model: str = "",
    images_base: str = "",
) -> ImportBatch:
    """Stores the files and queues the import on the worker, once the batch row is committed."""
    folder = uuid.uuid4().hex
    path = _save(upload, folder)
    images_path = _save(images, folder) if images else ""
    batch = import_batch_create(
        project=project,
        format=format,
        file_name=PurePosixPath(path).name,
        user=user,
        upload_path=path,
        images_path=images_path,
        options={"criterion": criterion, "source_model": source_model, "images_base": images_base},
    )
    send(IMPORT_RUN, batch.pk)
    return batch
