"""The import service: one entry point for the command line, the browser and the API.

A file is read record by record (JSONL never whole), each record checked, and checked records
written a chunk at a time. The ImportBatch row is the report: counts, every rejected record with
its line, field and reason, and warnings for records kept with a problem (a refused image).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Case, F, When
from django.utils import timezone

from .. import attempts, storage
from ..errors import InvalidInput, ServiceError
from ..images import open_source
from ..models import Image, ImportBatch, Project
from ..references.service import ReferenceRegistrar, images_base_checked
from ..sending import IMPORT_RUN, send
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
        raise InvalidInput("format", f"unknown format {format!r}; choose one of: {', '.join(sorted(FORMAT_LABELS))}")
    options = dict(options or {})
    if options.get("images_base"):
        if format == IMAGES_FORMAT:
            raise InvalidInput(
                "images_base", "an images base names the files of samples or COCO images, not of --format images"
            )
        options["images_base"] = images_base_checked(options["images_base"])
    return ImportBatch.objects.create(
        project=project,
        format=format,
        file_name=file_name,
        created_by=user,
        upload_path=upload_path,
        images_path=images_path,
        options=options,
        heartbeat_at=timezone.now(),  # queued now: the sweep sends it again if no worker takes it
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
    images_base: str = "",
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
        options={
            "criterion": criterion,
            "source_dataset": source_dataset,
            "source_model": source_model,
            **({"images_base": images_base} if images_base else {}),
        },
    )
    return import_batch_run(batch=batch, path=Path(path), on_progress=on_progress)


def import_batch_claim(batch_id: int) -> tuple[ImportBatch, str] | None:
    """Takes a queued batch for one attempt (one caller wins), or None: it is finished, or another
    attempt holds it. An attempt after a lost one resumes after its last committed chunk."""
    token, now = attempts.new_token(), timezone.now()
    claimed = ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.QUEUED).update(
        status=ImportBatch.Status.RUNNING,
        attempt=token,
        attempt_owner=attempts.owner_here(),
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        failure="",
    )
    if not claimed:
        return None
    batch = ImportBatch.objects.select_related("project").get(pk=batch_id)
    if batch.checkpoint_position == 0 or batch.format not in SAMPLE_FORMATS:
        # From the start: a fresh batch, or one whose format keeps no position (COCO, images:
        # those run again whole, and what is stored is found unchanged).
        for name in ImportBatch.PROGRESS_FIELDS:
            setattr(batch, name, [] if name in ("errors", "warnings") else 0)
        batch.checkpoint_position = 0
        batch.started_at = now
    return batch, token


def import_batch_start(batch_id: int) -> ImportBatch | None:
    """A worker's entry point: claims the batch and runs it; None when it is not ours to run."""
    claim = import_batch_claim(batch_id)
    if claim is None:
        return None
    batch, token = claim
    with _batch_files(batch, None) as (path, images):
        return _run(batch, token, path, None, images)


def import_batch_run(
    *, batch: ImportBatch, path: Path | None = None, on_progress: Progress | None = None
) -> ImportBatch:
    """Claims a created batch and runs it here (path defaults to the upload)."""
    claim = import_batch_claim(batch.pk)
    if claim is None:
        batch.refresh_from_db()
        return batch
    claimed, token = claim
    with _batch_files(claimed, path) as (local, images):
        return _run(claimed, token, local, on_progress, images)


def _upload_name(value: str) -> str:
    """A batch's upload as a name in the uploads store (a row written before the stores holds the
    absolute path of its file under UPLOAD_DIR, the local store's folder); "" for none."""
    path = Path(value)
    if not path.is_absolute():
        return value
    try:
        return path.resolve().relative_to(Path(settings.UPLOAD_DIR).resolve()).as_posix()
    except ValueError:
        return ""


@contextmanager
def _batch_files(batch: ImportBatch, path: Path | None) -> Iterator[tuple[Path, str]]:
    """The batch's file and images folder or zip as files of this process: the command line's own
    paths, or the upload's, read from the uploads store (copied out of it when it is not a folder of
    this machine: another machine's web server took the upload)."""
    with ExitStack() as stack:
        if path is None:
            path = stack.enter_context(storage.local_copy(storage.UPLOADS, _upload_name(batch.upload_path)))
        images = batch.images_path
        if images and batch.upload_path:
            images = str(stack.enter_context(storage.local_copy(storage.UPLOADS, _upload_name(images))))
        yield path, images


def _run(
    batch: ImportBatch, token: str, path: Path, on_progress: Progress | None, images: str | None = None
) -> ImportBatch:
    batch.bytes_total = path.stat().st_size if path.is_file() else 0
    run = _Run(batch, token, on_progress)
    source = None
    try:
        run.save("bytes_total", "started_at", "checkpoint_position", *ImportBatch.PROGRESS_FIELDS)
        if batch.format == IMAGES_FORMAT:
            source = open_source(path)  # the folder or zip is the "file" here
            run.images(source)
        else:
            if not path.is_file():
                raise ImportFailed(f"file {path} does not exist")
            batch.file_sha256 = _sha256(path)
            run.save("file_sha256")
            source = open_source((batch.images_path if images is None else images) or None)
            if batch.format == "coco":
                run.annotations(path, source)
            else:
                run.samples(SAMPLE_FORMATS[batch.format], path, source)
            if batch.records_read == 0:
                batch.warnings.append({"line": None, "field": "", "message": "the file holds no records"})
        batch.status = ImportBatch.Status.COMPLETED
    except attempts.StaleAttempt:
        log.warning("import batch %s: attempt %s no longer holds it; stopped", batch.pk, token)
        if source is not None:
            source.close()
        batch.refresh_from_db()
        return batch
    except (ImportFailed, SourceError, ServiceError) as exc:  # the file or an option is at fault
        batch.status = ImportBatch.Status.FAILED
        batch.failure = exc.message if isinstance(exc, ServiceError) else str(exc)
    except Exception as exc:  # a bug: recorded on the batch, logged with its traceback, raised again
        log.exception("import batch %s failed", batch.pk)
        batch.status = ImportBatch.Status.FAILED
        batch.failure = f"unexpected error: {type(exc).__name__}: {exc}"
        _finish(run, source, on_progress)
        raise
    _finish(run, source, on_progress)
    return batch


def _finish(run: _Run, source, on_progress: Progress | None) -> None:
    batch = run.batch
    if source is not None:
        source.close()
    batch.finished_at = timezone.now()
    if batch.status == ImportBatch.Status.COMPLETED:
        batch.bytes_done = batch.bytes_total
    try:
        run.save("status", "failure", "finished_at", "file_sha256", *ImportBatch.PROGRESS_FIELDS)
    except attempts.StaleAttempt:
        log.warning("import batch %s: attempt %s finished after losing it; nothing recorded", batch.pk, run.token)
        batch.refresh_from_db()
        return
    if batch.status == ImportBatch.Status.COMPLETED:
        remove_upload(batch)
    if on_progress:
        on_progress(batch)


def remove_upload(batch: ImportBatch) -> bool:
    """Deletes the batch's uploaded files (never a file the command line named)."""
    if not batch.upload_path or batch.upload_removed_at is not None:
        return False
    folder = PurePosixPath(_upload_name(batch.upload_path)).parent.as_posix()
    if folder in ("", "."):
        return False
    storage.delete_folder(storage.UPLOADS, folder)
    batch.upload_removed_at = timezone.now()
    ImportBatch.objects.filter(pk=batch.pk).update(upload_removed_at=batch.upload_removed_at)
    return True


def import_batches_recover(now) -> dict[str, int]:
    """The sweep's part for imports: a batch whose attempt is dead is queued again (an upload, on a
    worker: it resumes after its last committed chunk) or failed (the command line's, whose file
    may be gone); a queued batch no worker took within a lease is sent again (a duplicate message
    is refused by the claim); failed uploads past their keeping time are removed."""
    done = {"requeued": 0, "interrupted": 0, "resent": 0, "uploads_removed": 0}
    running = ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING)
    for pk, token, owner, upload, stale in running.annotate(
        stale=Case(When(attempts.expired(now), then=True), default=False, output_field=BooleanField())
    ).values_list("pk", "attempt", "attempt_owner", "upload_path", "stale"):
        if not stale and not attempts.process_gone(owner):
            continue
        mine = ImportBatch.objects.filter(pk=pk, status=ImportBatch.Status.RUNNING, attempt=token)
        if upload:
            if mine.update(status=ImportBatch.Status.QUEUED, attempt="", heartbeat_at=now):
                send(IMPORT_RUN, pk)
                done["requeued"] += 1
        elif mine.update(
            status=ImportBatch.Status.FAILED,
            attempt="",
            finished_at=now,
            failure="interrupted: the process running this import ended; import the file again "
            "(records already stored are found unchanged)",
        ):
            done["interrupted"] += 1
    queued = ImportBatch.objects.filter(attempts.expired(now), status=ImportBatch.Status.QUEUED).exclude(upload_path="")
    for pk in queued.values_list("pk", flat=True):
        if ImportBatch.objects.filter(attempts.expired(now), pk=pk, status=ImportBatch.Status.QUEUED).update(
            heartbeat_at=now
        ):
            send(IMPORT_RUN, pk)
            done["resent"] += 1
    keep = timedelta(hours=settings.FAILED_UPLOAD_KEEP_HOURS)
    for batch in ImportBatch.objects.filter(
        status=ImportBatch.Status.FAILED, upload_removed_at__isnull=True, finished_at__lt=now - keep
    ).exclude(upload_path=""):
        done["uploads_removed"] += remove_upload(batch)
    return done


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Run:
    def __init__(self, batch: ImportBatch, token: str, on_progress: Progress | None) -> None:
        self.batch = batch
        self.token = token
        self.project = batch.project
        self.on_progress = on_progress
        self.chunk_size = settings.IMPORT_CHUNK_SIZE
        self.references = ReferenceRegistrar(batch, batch.options.get("images_base", ""), self.warn)

    def save(self, *fields: str) -> None:
        """Writes these fields and renews the lease, while the attempt still holds the batch."""
        self.batch.heartbeat_at = timezone.now()
        values = {name: getattr(self.batch, name) for name in (*fields, "heartbeat_at")}
        if not ImportBatch.objects.filter(pk=self.batch.pk, attempt=self.token).update(**values):
            raise attempts.StaleAttempt(self.token)

    def reject(self, line: int | None, field: str, message: str) -> None:
        self.batch.rejected += 1
        if len(self.batch.errors) < MAX_STORED_MESSAGES:
            self.batch.errors.append({"line": line, "field": field, "message": message})

    def warn(self, line: int | None, field: str, message: str) -> None:
        if len(self.batch.warnings) < MAX_STORED_MESSAGES:
            self.batch.warnings.append({"line": line, "field": field, "message": message})

    def checkpoint(self, position: int) -> None:
        """Records progress in the transaction of the chunk just written (call it inside): the
        chunk and its checkpoint commit together, or neither when the attempt is stale."""
        self.batch.bytes_done = min(position, self.batch.bytes_total)
        self.batch.checkpoint_position = position
        self.save("checkpoint_position", *ImportBatch.PROGRESS_FIELDS)
        if self.on_progress:
            self.on_progress(self.batch)

    def commit(self, write: Callable[[], object], position: int) -> None:
        with transaction.atomic():
            write()
            self.checkpoint(position)

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
        resolver = ImageResolver(self.project, source, self.batch, self.warn, self.references)
        writer = SampleWriter(self.project, self.batch, resolver, self.reject)
        chunk: list[tuple[int, SampleRecord]] = []
        resume = position = self.batch.checkpoint_position
        for raw in fmt.read(path):
            if raw.position <= resume:
                continue  # an earlier attempt of this batch committed it
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
                self.commit(partial(writer.write_chunk, chunk), position)
                chunk = []
        self.commit(lambda: writer.write_chunk(chunk) if chunk else None, position)

    def annotations(self, path: Path, source) -> None:
        resolver = ImageResolver(self.project, source, self.batch, self.warn, self.references)
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
        with transaction.atomic():
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
