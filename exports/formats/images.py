"""The image files of a release: ``images.tar`` at the top of the release (one for all splits).

Each image a released sample refers to is stored once, as ``images/<file_name>`` (the image's
original file name, the ``image_id`` / ``image`` of the other formats; a name that would leave
``images/`` loses its ``..`` and leading ``/``). The bytes are read from the media store and
streamed into an uncompressed tar (images are compressed already) with fixed owner, mode and
time, so that the same images give the same tar. The file's ``rows`` is the number of images in it.

An image whose file is missing (registered before its file arrived, or gone from disk) is
skipped; the names of all such images are listed, one per line, in ``images_missing.txt`` at
the top of the tar (present only when something is missing), and a warning is logged with their
number.

The writer keeps the names it has seen (to store each image once), nothing of their bytes.
"""

from __future__ import annotations

import logging
import tarfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from io import BytesIO
from pathlib import PurePosixPath
from typing import IO

from feedback import storage

from ..records import ExportSample
from .base import ExportContext, ExportFormat, ReleaseSink, WrittenFile

log = logging.getLogger(__name__)

FILE_NAME = "images.tar"
FOLDER = "images"
MISSING_LIST = "images_missing.txt"


def arcname(file_name: str) -> str:
    """Where an image goes in the tar: ``images/<file_name>``, kept inside ``images/``."""
    parts = [p for p in PurePosixPath(file_name.replace("\\", "/")).parts if p not in ("/", ".", "..")]
    return "/".join([FOLDER, *parts]) if parts else ""


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# From an object store, images are fetched this many ahead of the one the tar takes (each a round
# trip of its own), on as many threads; one of at most PREFETCH_MAX_BYTES is read whole by its
# thread, a larger one streamed when its turn comes. Memory: PREFETCH x PREFETCH_MAX_BYTES at most.
PREFETCH = 16
PREFETCH_MAX_BYTES = 4 * 1024 * 1024

Fetched = tuple[int, IO[bytes]] | None


def _fetch(name: str) -> Fetched:
    opened = storage.open_stream(storage.MEDIA, name)
    if opened is None or opened[0] > PREFETCH_MAX_BYTES:
        return opened
    size, stream = opened
    with stream:
        return size, BytesIO(stream.read())


class ImagesWriter:
    def __init__(self, sink: ReleaseSink, ctx: ExportContext):
        self.sink = sink
        self.seen: set[str] = set()
        self.missing: list[str] = []
        self.tar: tarfile.TarFile | None = None
        self.record: WrittenFile | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque[tuple[str, str, Future[Fetched] | None]] = deque()

    def _open(self) -> tarfile.TarFile:
        if self.tar is None:
            stream, self.record = self.sink.binary(FILE_NAME, split="", format=FORMAT.name)
            # Open across write() calls; close() ends it (the sink closes the stream).
            self.tar = tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
            if not storage.is_local(storage.MEDIA):
                self.pool = ThreadPoolExecutor(PREFETCH, thread_name_prefix="images-tar")
        return self.tar

    def write(self, sample: ExportSample) -> None:
        image = sample.image
        if image is None:
            return
        name = arcname(image.file_name)
        if not name or name in self.seen:
            return
        self.seen.add(name)
        self._open()
        if self.pool is None:
            self._add(name, image.file_name, storage.open_stream(storage.MEDIA, image.file) if image.file else None)
            return
        self.pending.append((name, image.file_name, self.pool.submit(_fetch, image.file) if image.file else None))
        while len(self.pending) > PREFETCH:
            self._take()

    def _take(self) -> None:
        name, file_name, future = self.pending.popleft()
        self._add(name, file_name, future.result() if future is not None else None)

    def _add(self, name: str, file_name: str, source: Fetched) -> None:
        """The next image of the tar (in the samples' order, whatever order the fetches end in)."""
        assert self.tar is not None and self.record is not None
        if source is None:
            self.missing.append(file_name)
            return
        size, stream = source
        with stream:
            self.tar.addfile(_member(name, size), stream)
        self.record.rows += 1

    def close(self) -> None:
        if self.tar is None:
            return
        try:
            while self.pending:
                self._take()
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
                self.pool = None
        if self.missing:
            listing = "".join(f"{name}\n" for name in self.missing).encode()
            self.tar.addfile(_member(MISSING_LIST, len(listing)), BytesIO(listing))
            log.warning("images.tar: %d image file(s) missing, listed in %s", len(self.missing), MISSING_LIST)
        self.tar.close()
        self.tar = None


FORMAT = ExportFormat(
    name="images",
    label="Image files (tar)",
    description="images.tar: each image of the release once, as images/<file_name>; missing ones listed "
    "in images_missing.txt.",
    writer=ImagesWriter,
)
