"""The import service: one entry point for the command line, the browser and the API.

A file is read record by record (JSONL never whole), each record checked, and checked records
written a chunk at a time. The ImportBatch row is the report: counts, every rejected record with
its line, field and reason, and warnings for records kept with a problem (a refused image).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..images import open_source
from ..models import Image, ImportBatch, Project
from . import coco, dress, llava, native, vlsafe
from .base import ParseContext, SampleFormat
from .reader import SourceError
from .records import RecordError, SampleRecord, reject_unstorable
from .writer import ImageResolver, SampleWriter, check_limits

log = logging.getLogger(__name__)

SAMPLE_FORMATS: dict[str, SampleFormat] = {
    f.name: f for f in (native.FORMAT, dress.FORMAT, vlsafe.FORMAT, llava.FORMAT)
}
IMAGES_FORMAT = "images"
FORMAT_LABELS = {
    IMAGES_FORMAT: "Image files only (a folder or zip), for images already registered",
    **{name: f.label for name, f in SAMPLE_FORMATS.items()},
    "coco": "COCO annotations (captions / instances)",
}
MAX_STORED_MESSAGES = 10_000

Progress = Callable[[ImportBatch], None]


class ImportFailed(Exception):
    """The file as a whole could not be imported; the batch holds the reason."""


def import_batch_create(
    *,
    project: Project,
    format: str,
    file_name: str,
    user=None,
    upload_path: str = "",
    images_path: str = "",
    options: dict | None = None,
) -> ImportBatch:
    if format not in FORMAT_LABELS:
        raise ValueError(f"unknown format {format!r}; choose one of: {', '.join(sorted(FORMAT_LABELS))}")
    return ImportBatch.objects.create(
        project=project,
        format=format,
        file_name=file_name,
        created_by=user,
        upload_path=upload_path,
        images_path=images_path,
        options=options or {},
    )


def import_file(
    *,
    project: Project,
    format: str,
    path: Path,
    images: str | Path | None = None,
    criterion: str = "",
    source_dataset: str = "",
    source_model: str = "",
    user=None,
    on_progress: Progress | None = None,
) -> ImportBatch:
    """Imports a file now, in this process (the command line; bench)."""
    batch = import_batch_create(
        project=project,
        format=format,
        file_name=Path(path).name,
        user=user,
        images_path=str(images or ""),
        options={"criterion": criterion, "source_dataset": source_dataset, "source_model": source_model},
    )
    return import_batch_run(batch=batch, path=Path(path), on_progress=on_progress)


def import_batch_run(
    *, batch: ImportBatch, path: Path | None = None, on_progress: Progress | None = None
) -> ImportBatch:
    """Runs a created batch; a worker calls this for uploads (path defaults to the upload)."""
    path = Path(path or batch.upload_path)
    # A batch run again (its worker was lost mid-way) starts its report afresh; the records it had
    # stored are found unchanged and counted as skipped.
    for name in ImportBatch.PROGRESS_FIELDS:
        setattr(batch, name, [] if name in ("errors", "warnings") else 0)
    batch.failure = ""
    batch.status = ImportBatch.Status.RUNNING
    batch.started_at = timezone.now()
    batch.bytes_total = path.stat().st_size if path.is_file() else 0
    batch.save()
    run = _Run(batch, on_progress)
    source = None
    try:
        if batch.format == IMAGES_FORMAT:
            source = open_source(path)  # the folder or zip is the "file" here
            run.images(source)
        else:
            if not path.is_file():
                raise ImportFailed(f"file {path} does not exist")
            batch.file_sha256 = _sha256(path)
            source = open_source(batch.images_path or None)
            if batch.format == "coco":
                run.annotations(path, source)
            else:
                run.samples(SAMPLE_FORMATS[batch.format], path, source)
            if batch.records_read == 0:
                batch.warnings.append({"line": None, "field": "", "message": "the file holds no records"})
        batch.status = ImportBatch.Status.COMPLETED
    except (ImportFailed, SourceError, ValueError) as exc:
        batch.status = ImportBatch.Status.FAILED
        batch.failure = str(exc)
    except Exception as exc:
        log.exception("import batch %s failed", batch.pk)
        batch.status = ImportBatch.Status.FAILED
        batch.failure = f"unexpected error: {exc}"
        raise
    finally:
        if source is not None:
            source.close()
        batch.finished_at = timezone.now()
        if batch.status == ImportBatch.Status.COMPLETED:
            batch.bytes_done = batch.bytes_total
        batch.save()
        if on_progress:
            on_progress(batch)
    return batch


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Run:
    def __init__(self, batch: ImportBatch, on_progress: Progress | None) -> None:
        self.batch = batch
        self.project = batch.project
        self.on_progress = on_progress
        self.chunk_size = settings.IMPORT_CHUNK_SIZE

    def reject(self, line: int | None, field: str, message: str) -> None:
        self.batch.rejected += 1
        if len(self.batch.errors) < MAX_STORED_MESSAGES:
            self.batch.errors.append({"line": line, "field": field, "message": message})

    def warn(self, line: int | None, field: str, message: str) -> None:
        if len(self.batch.warnings) < MAX_STORED_MESSAGES:
            self.batch.warnings.append({"line": line, "field": field, "message": message})

    def checkpoint(self, position: int) -> None:
        self.batch.bytes_done = min(position, self.batch.bytes_total)
        self.batch.save(update_fields=[*ImportBatch.PROGRESS_FIELDS, "file_sha256"])
        if self.on_progress:
            self.on_progress(self.batch)

    def context(self, fmt: SampleFormat, path: Path) -> ParseContext:
        options = self.batch.options
        base = ParseContext(
            criteria=list(self.project.criteria),
            scale=self.project.score_range,
            criterion=options.get("criterion", ""),
            source_dataset=options.get("source_dataset", ""),
            source_model=options.get("source_model", ""),
        )
        if base.criterion and base.criterion not in base.criteria:
            raise ImportFailed(
                f"criterion {base.criterion!r} is not in this project's rubric ({', '.join(base.criteria)})"
            )
        return fmt.context(path, base)

    def samples(self, fmt: SampleFormat, path: Path, source) -> None:
        ctx = self.context(fmt, path)
        writer = SampleWriter(
            self.project, self.batch, ImageResolver(self.project, source, self.batch, self.warn), self.reject
        )
        chunk: list[tuple[int, SampleRecord]] = []
        position = 0
        for raw in fmt.read(path):
            self.batch.records_read += 1
            position = raw.position
            if raw.error is not None:
                self.reject(raw.line, raw.error.field, raw.error.message)
                continue
            try:
                if raw.suspect:
                    reject_unstorable(raw.value, "")
                record = fmt.parse(raw.value, ctx)
                check_limits(record)
            except RecordError as exc:
                self.reject(raw.line, exc.field, exc.message)
                continue
            chunk.append((raw.line, record))
            if len(chunk) >= self.chunk_size:
                writer.write_chunk(chunk)
                chunk = []
                self.checkpoint(position)
        if chunk:
            writer.write_chunk(chunk)
        self.checkpoint(position)

    def annotations(self, path: Path, source) -> None:
        resolver = ImageResolver(self.project, source, self.batch, self.warn)
        chunk = []
        for where, item in coco.read(path):
            if isinstance(item, RecordError):
                self.reject(None, item.field or where, item.message)
                continue
            self.batch.records_read += 1
            chunk.append((0, item))
            if len(chunk) >= self.chunk_size:
                self.write_images(resolver, chunk)
                chunk = []
        if chunk:
            self.write_images(resolver, chunk)
        self.checkpoint(self.batch.bytes_total)

    def images(self, source) -> None:
        """Attaches files to the project's images that still lack one, a page of images at a time."""
        resolver = ImageResolver(self.project, source, self.batch, self.warn)
        missing = Image.objects.filter(project=self.project, file="").order_by("pk")
        last_pk = 0
        while page := list(missing.filter(pk__gt=last_pk)[: self.chunk_size]):
            last_pk = page[-1].pk
            before = self.batch.images_attached
            with transaction.atomic():
                resolver.attach_files(page)
            self.batch.records_read += len(page)
            self.batch.updated += self.batch.images_attached - before
            self.batch.skipped += len(page) - (self.batch.images_attached - before)
            self.checkpoint(0)

    def write_images(self, resolver: ImageResolver, chunk) -> None:
        with transaction.atomic():
            _, registered, changed = resolver.resolve(chunk)
        self.batch.created += len(registered)
        self.batch.updated += len(changed - registered)
        self.batch.skipped += len(chunk) - len(registered | changed)
        self.checkpoint(0)
