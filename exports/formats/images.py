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
from io import BytesIO
from pathlib import PurePosixPath

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


class ImagesWriter:
    def __init__(self, sink: ReleaseSink, ctx: ExportContext):
        self.sink = sink
        self.seen: set[str] = set()
        self.missing: list[str] = []
        self.tar: tarfile.TarFile | None = None
        self.record: WrittenFile | None = None

    def _open(self) -> tarfile.TarFile:
        if self.tar is None:
            stream, self.record = self.sink.binary(FILE_NAME, split="", format=FORMAT.name)
            # Open across write() calls; close() ends it (the sink closes the stream).
            self.tar = tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        return self.tar

    def write(self, sample: ExportSample) -> None:
        image = sample.image
        if image is None:
            return
        name = arcname(image.file_name)
        if not name or name in self.seen:
            return
        self.seen.add(name)
        tar = self._open()
        source = storage.open_stream(storage.MEDIA, image.file) if image.file else None
        if source is None:
            self.missing.append(image.file_name)
            return
        size, stream = source
        with stream:
            tar.addfile(_member(name, size), stream)
        assert self.record is not None
        self.record.rows += 1

    def close(self) -> None:
        if self.tar is None:
            return
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
