"""The platform's files, through Django's storage API: one store per kind, named in ``STORAGES``.

``MEDIA`` (Django's ``default``: images, by sha256), ``UPLOADS`` (import uploads awaiting a worker)
and ``RELEASES`` (dataset releases). Each is a local folder (``LocalStorage``, the embedded
default) or an S3-compatible bucket (django-storages' ``S3Storage``), as the settings say; callers
never ask which, so that nothing reads a file another process left on its own disk:

- ``store_image`` stores checked image bytes under their content-addressed name, once;
- ``save_upload`` streams an upload into a store; ``local_copy`` gives a worker a file of its own
  to read (the local file itself, or a download into its temporary folder);
- ``Staging`` writes a set of files (a release) as streams, each hashed as it is written and sent
  in parts (multipart upload), all made visible together by ``publish`` or dropped by ``discard``;
- ``serve`` answers a download: a short-lived signed URL, or the bytes streamed through the server.

Credentials of an S3 store come from the environment only (boto3's own chain); nothing here
reads, stores or shows them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mimetypes
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.http import FileResponse, HttpResponseBase, HttpResponseRedirect
from django.utils.encoding import iri_to_uri

MEDIA = "default"
UPLOADS = "uploads"
RELEASES = "releases"

COPY_BLOCK = 1 << 20


class LocalStorage(FileSystemStorage):
    """A folder of this machine, named by a setting read at each use (``MEDIA_ROOT``,
    ``UPLOAD_DIR``, ``RELEASES_ROOT``), so that a changed setting moves the store with it."""

    def __init__(self, root_setting: str = "MEDIA_ROOT", **kwargs: Any) -> None:
        self.root_setting = root_setting
        super().__init__(**kwargs)

    @property
    def base_location(self) -> str:
        return str(getattr(settings, self.root_setting))

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def store(alias: str) -> Storage:
    return storages[alias]


def is_local(alias: str) -> bool:
    """Whether the store is a folder of this machine (then ``local_path`` names its files)."""
    return isinstance(store(alias), FileSystemStorage)


def local_path(alias: str, name: str) -> Path:
    """The file of a local store (never call it for an S3 one: ``local_copy`` works for both)."""
    return Path(store(alias).path(name))


def _s3(alias: str) -> Any:
    """The S3 store, its boto3 client and its key maker."""
    backend: Any = store(alias)
    return backend


def s3_key(alias: str, name: str) -> str:
    from storages.utils import clean_name

    return _s3(alias)._normalize_name(clean_name(name))


def s3_client(alias: str) -> Any:
    """The store's boto3 client, one for all threads (a client is thread-safe; the store's own
    connection is made once per thread, and each costs tens of MB of service model)."""
    backend = _s3(alias)
    client = getattr(backend, "_shared_client", None)
    if client is None:
        with _client_lock:  # threads starting together would each make a connection otherwise
            client = getattr(backend, "_shared_client", None)
            if client is None:
                client = backend._shared_client = backend.connection.meta.client
    return client


_client_lock = threading.Lock()


# --- small files ---------------------------------------------------------------------------------


def exists(alias: str, name: str) -> bool:
    return bool(name) and store(alias).exists(name)


def store_image(data: bytes, name: str, content_type: str | None = None) -> None:
    """Writes checked image bytes under their content-addressed name in the media store, once:
    identical content already stored under its hash is not written again. Written whole or not at
    all (a local file is renamed into place; an S3 object appears when its upload completes)."""
    if is_local(MEDIA):
        target = local_path(MEDIA, name)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
        return
    if exists(MEDIA, name):
        return
    _s3(MEDIA).bucket.put_object(Key=s3_key(MEDIA, name), Body=data, ContentType=content_type or _content_type(name))


def save_upload(alias: str, name: str, content: IO[bytes] | File) -> str:
    """Streams an uploaded file into a store under ``name`` (a fresh folder of the caller's);
    the name it was stored under."""
    return store(alias).save(name, content if isinstance(content, File) else File(content))


def delete_folder(alias: str, folder: str) -> None:
    """Removes a folder of a store and everything under it; nothing when it is not there."""
    folder = folder.strip("/")
    if not folder:
        raise ValueError("refusing to delete a store's root")
    if is_local(alias):
        shutil.rmtree(local_path(alias, folder), ignore_errors=True)
        return
    _s3(alias).bucket.objects.filter(Prefix=_prefix(alias, folder)).delete()
    abort_uploads(alias, folder)


def _prefix(alias: str, folder: str) -> str:
    """The key prefix of a folder of an S3 store ("" for its root), ending in "/" unless empty."""
    location = _s3(alias).location.strip("/")
    return "/".join(part for part in (location, folder.strip("/")) if part) + "/" if (location or folder) else ""


def abort_uploads(
    alias: str, folder: str, *, started_before: float | None = None, keep: Callable[[str], bool] | None = None
) -> int:
    """Aborts the unfinished multipart uploads under a folder of an S3 store (those started before
    a time, when given, and not kept by ``keep``, which is given the name in the store); their parts
    are dropped. The number aborted (0 on a local store)."""
    if is_local(alias):
        return 0
    client, bucket = s3_client(alias), _s3(alias).bucket_name
    root, prefix = _prefix(alias, ""), _prefix(alias, folder)
    aborted = 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if started_before is not None and upload["Initiated"].timestamp() > started_before:
                continue
            if keep is not None and keep(upload["Key"][len(root) :]):
                continue
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            aborted += 1
    return aborted


def location(alias: str, folder: str) -> str:
    """A folder of an S3 store as an ``s3://bucket/key/`` URL, to show where files are."""
    return f"s3://{_s3(alias).bucket_name}/{_prefix(alias, folder)}"


@contextmanager
def local_copy(alias: str, name: str) -> Iterator[Path]:
    """A file of this process to read a stored file from: the file itself in a local store, else
    a download (in parts, never whole in memory) into a temporary folder removed afterwards. The
    copy keeps the stored file's own name; when the store has no such file, neither does the path.
    The name ``""`` is no file."""
    if is_local(alias):
        yield local_path(alias, name) if name else Path(tempfile.gettempdir()) / "no-such-upload"
        return
    folder = Path(tempfile.mkdtemp(prefix="annotator-copy-"))
    try:
        target = folder / (PurePosixPath(name).name or "file")
        try:
            with target.open("wb") as out:
                s3_client(alias).download_fileobj(_s3(alias).bucket_name, s3_key(alias, name), out)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise
            target.unlink()  # no such file: the caller finds none, as in a local store
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def open_stream(alias: str, name: str) -> tuple[int, IO[bytes]] | None:
    """A stored file's size and a stream of its bytes (the caller closes it), read as they are
    needed; None when the store has no such file (or the name would leave the store)."""
    if is_local(alias):
        try:
            stream = local_path(alias, name).open("rb")
        except (OSError, SuspiciousFileOperation):
            return None
        return os.fstat(stream.fileno()).st_size, stream
    try:
        answer = s3_client(alias).get_object(Bucket=_s3(alias).bucket_name, Key=s3_key(alias, name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return None
        raise
    except SuspiciousFileOperation:
        return None
    return answer["ContentLength"], answer["Body"]


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# --- serving -------------------------------------------------------------------------------------


def serve(
    alias: str, name: str, *, filename: str, content_type: str | None = None, attachment: bool = True
) -> HttpResponseBase:
    """A download of a stored file: from an S3 store under ``ANNOTATOR_STORAGE_DOWNLOADS=signed``,
    a redirect to a URL signed for ``ANNOTATOR_STORAGE_SIGNED_URL_SECONDS`` that makes the store
    answer with the given type and disposition; otherwise the bytes, streamed through this server."""
    content_type = content_type or _content_type(filename)
    if not is_local(alias) and settings.STORAGE_DOWNLOADS == "signed":
        disposition = "attachment" if attachment else "inline"
        url = _s3(alias).url(
            name,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": f"{disposition}; filename*=UTF-8''{iri_to_uri(filename)}",
            },
            expire=settings.STORAGE_SIGNED_URL_SECONDS,
        )
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "private, no-store"
        return response
    return FileResponse(
        store(alias).open(name, "rb"), content_type=content_type, as_attachment=attachment, filename=filename
    )


# --- staged files (releases) ---------------------------------------------------------------------


@dataclass
class Written:
    """What was written to one staged file: its bytes and sha256, measured as they went by."""

    path: str
    byte_size: int = 0
    sha256: str = ""


class _Hashing(io.RawIOBase):
    """A binary stream that measures what passes through it on its way to ``sink``."""

    def __init__(self, sink: _Sink, written: Written) -> None:
        self.sink = sink
        self.written = written
        self.digest = hashlib.sha256()
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.sink.write(view)
        self.position += len(view)
        return len(view)

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        if not self.closed:
            self.sink.close()
            self.written.byte_size = self.position
            self.written.sha256 = self.digest.hexdigest()
        super().close()


class _Sink:
    def write(self, data: memoryview) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _FileSink(_Sink):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = path.open("wb")

    def write(self, data: memoryview) -> None:
        self.stream.write(data)

    def close(self) -> None:
        self.stream.close()

    def abort(self) -> None:
        self.stream.close()


class _Uploader:
    """Sends the parts of a staging's multipart uploads, ``THREADS`` at a time with one more
    waiting, whatever the number of files: the parts held in memory do not grow with it."""

    THREADS = 2

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[_PartSink, int, bytes] | None] = queue.Queue(maxsize=1)
        self.threads = [
            threading.Thread(target=self._run, name="release parts", daemon=True) for _ in range(self.THREADS)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            sink, number, body = item
            sink.send(number, body)

    def put(self, sink: _PartSink, number: int, body: bytes) -> None:
        self.queue.put((sink, number, body))

    def stop(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()


class _PartSink(_Sink):
    """One multipart upload: bytes gathered into parts of ``STORAGE_PART_BYTES`` that the staging's
    uploader sends while the next fills; completed only by ``complete`` (the object does not exist
    until then) or dropped by ``abort``."""

    def __init__(self, uploader: _Uploader, client: Any, bucket: str, key: str, content_type: str) -> None:
        self.uploader, self.client, self.bucket, self.key = uploader, client, bucket, key
        self.part_bytes = max(settings.STORAGE_PART_BYTES, 5 * 1024 * 1024)
        self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
        self.buffer = bytearray()
        self.number = 0
        self.parts: list[dict] = []
        self.pending = 0
        self.settled = threading.Condition()
        self.error: BaseException | None = None

    def write(self, data: memoryview) -> None:
        self.buffer += data
        while len(self.buffer) >= self.part_bytes:
            self._queue_part(bytes(self.buffer[: self.part_bytes]))
            del self.buffer[: self.part_bytes]

    def _queue_part(self, body: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.number += 1
        with self.settled:
            self.pending += 1
        self.uploader.put(self, self.number, body)

    def send(self, number: int, body: bytes) -> None:
        """On an uploader thread: one part (skipped once the upload has failed or is aborted)."""
        try:
            if self.error is None:
                answer = self.client.upload_part(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
                )
                self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        except BaseException as exc:  # handed to the writer at its next part, or at close
            self.error = exc
        finally:
            with self.settled:
                self.pending -= 1
                self.settled.notify_all()

    def _wait(self) -> None:
        with self.settled:
            self.settled.wait_for(lambda: self.pending == 0)

    def close(self) -> None:
        """Sends the last part (the only one may be short, even empty) and waits for all."""
        if self.buffer or self.number == 0:
            self._queue_part(bytes(self.buffer))
            self.buffer = bytearray()
        self._wait()
        if self.error is not None:
            raise self.error

    def complete(self) -> None:
        parts = sorted(self.parts, key=lambda p: p["PartNumber"])
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        self.error = self.error or RuntimeError("aborted")
        self._wait()
        # An upload gone already is fine; the sweep aborts any left behind.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


class Staging:
    """Files written under ``folder`` of a store, visible together once ``publish`` runs.

    A local store writes them in a hidden folder beside the final one (``.<name>.<token>.partial``)
    that ``publish`` renames into place; an S3 store sends each as a multipart upload to its final
    key and ``publish`` completes them all (an unfinished upload is no object: nothing shows before).
    ``open`` gives a binary stream (with ``tell``) that hashes what it writes; the stream's
    ``Written`` has its size and sha256 once it is closed.
    """

    def __init__(self, alias: str, folder: str, token: str) -> None:
        self.alias = alias
        self.folder = folder.strip("/")
        self.local = is_local(alias)
        self.sinks: list[_Sink] = []
        self.uploader: _Uploader | None = None
        if self.local:
            self.final = local_path(alias, self.folder)
            self.partial = self.final.with_name(f".{self.final.name}.{token}.partial")
            self.partial.mkdir(parents=True, exist_ok=True)

    def open(self, path: str) -> tuple[IO[bytes], Written]:
        written = Written(path=path)
        sink: _Sink
        if self.local:
            sink = _FileSink(self.partial / path)
        else:
            backend = _s3(self.alias)
            if self.uploader is None:
                self.uploader = _Uploader()
            sink = _PartSink(
                self.uploader,
                s3_client(self.alias),
                backend.bucket_name,
                s3_key(self.alias, f"{self.folder}/{path}"),
                _content_type(path),
            )
        self.sinks.append(sink)
        stream: IO[bytes] = _Hashing(sink, written)  # type: ignore[assignment]
        return stream, written

    def publish(self) -> None:
        """Makes every file visible, replacing what the folder held before."""
        if self.local:
            shutil.rmtree(self.final, ignore_errors=True)
            self.partial.rename(self.final)
            return
        self._stop()
        for sink in self.sinks:
            assert isinstance(sink, _PartSink)
            sink.complete()

    def discard(self) -> None:
        for sink in self.sinks:
            sink.abort()
        self._stop()
        if self.local:
            shutil.rmtree(self.partial, ignore_errors=True)

    def _stop(self) -> None:
        if self.uploader is not None:
            self.uploader.stop()
            self.uploader = None
