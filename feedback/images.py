"""Image files: checked by Pillow, stored once under their sha256, found by their original name.

Every file is refused with a clear message unless it is one of the raster formats we serve
(ACCEPTED_FORMATS; Pillow is never asked to try another), the header claims no more pixels than
IMAGE_MAX_PIXELS, and the whole image decodes (a truncated file fails). Files are read no further
than IMAGE_MAX_BYTES; a zip's entries are checked against their declared sizes and compression
ratio before they are read, and the archive as a whole against ZIP_MAX_BYTES and ZIP_MAX_ENTRIES.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO
from zlib import error as zlib_error

from django.conf import settings
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from . import storage
from .errors import InvalidInput
from .models import Image


class ImageRefused(ValueError):
    """A file that is not an image we accept; the message says why."""


# Pillow's names of the raster formats accepted at import, and the content type each is served
# with. Pillow reports a JPEG holding several pictures as MPO.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
READ_BLOCK = 1 << 20


def served_content_type(fmt: str) -> str | None:
    """The content type an image of this (import-checked) format is served inline with, else None."""
    return CONTENT_TYPES.get(fmt)


def _too_large(size: int, limit: int) -> ImageRefused:
    return ImageRefused(f"{size:,} bytes or more, over the limit of {limit:,} (ANNOTATOR_IMAGE_MAX_BYTES)")


def read_capped(stream: IO[bytes], limit: int) -> bytes:
    """At most ``limit`` bytes from a stream, refusing it past that: a declared size is never trusted."""
    chunks, total = [], 0
    while block := stream.read(min(READ_BLOCK, limit + 1 - total)):
        chunks.append(block)
        total += len(block)
        if total > limit:
            raise _too_large(total, limit)
    return b"".join(chunks)


@dataclass(frozen=True)
class ImageInfo:
    sha256: str
    width: int
    height: int
    format: str
    byte_size: int


def inspect_image(data: bytes, *, max_pixels: int | None = None) -> ImageInfo:
    limit = max_pixels or settings.IMAGE_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            # The check below holds the image to our limit, which may be above Pillow's warning level.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as img:
                width, height, fmt = img.width, img.height, img.format or ""
                if width * height > limit:
                    raise ImageRefused(
                        f"the header claims {width}x{height} = {width * height:,} pixels, "
                        f"over the limit of {limit:,} (ANNOTATOR_IMAGE_MAX_PIXELS)"
                    )
                img.verify()
            with PILImage.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as img:
                img.load()
    except ImageRefused:
        raise
    except UnidentifiedImageError:
        raise ImageRefused(f"not an image in an accepted format ({', '.join(ACCEPTED_FORMATS)})") from None
    except PILImage.DecompressionBombError as exc:
        # Pillow refuses past twice its own limit before the check above can run.
        if limit < 2 * (PILImage.MAX_IMAGE_PIXELS or 0):
            raise ImageRefused(
                f"the header claims too many pixels, over the limit of {limit:,} (ANNOTATOR_IMAGE_MAX_PIXELS)"
            ) from None
        raise ImageRefused(f"too many pixels for the image library: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(f"damaged or truncated image: {exc}") from None
    return ImageInfo(hashlib.sha256(data).hexdigest(), width, height, fmt, len(data))


# The suffix follows the content, not the original name, so that identical bytes get one name.
FORMAT_SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "TIFF": ".tif"}


def stored_name(info: ImageInfo) -> str:
    suffix = FORMAT_SUFFIXES.get(info.format, f".{info.format.lower() or 'img'}")
    return f"images/{info.sha256[:2]}/{info.sha256}{suffix}"


def store_bytes(data: bytes, name: str, content_type: str | None = None) -> None:
    """Write once, through the media store: identical content already stored under its hash is
    not written again."""
    storage.store_image(data, name, content_type)


def apply_file(image: Image, data: bytes) -> ImageInfo:
    """Check and store the bytes, and set the image's file fields (the caller saves)."""
    info = inspect_image(data)
    name = stored_name(info)
    store_bytes(data, name, served_content_type(info.format))
    image.file.name = name
    image.sha256 = info.sha256
    image.width, image.height = info.width, info.height
    image.format = info.format
    image.byte_size = info.byte_size
    return info


class ImageSource:
    """Where image files come from at import time: a folder or a zip, matched by file name.

    A name is looked up as given (COCO's ``000000151112.jpg``, LLaVA's ``coco/train2017/...``),
    then by its last component.
    """

    def read(self, file_name: str) -> bytes | None:  # pragma: no cover - interface
        raise NotImplementedError

    def names(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class FolderSource(ImageSource):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, file_name: str) -> Path | None:
        for candidate in (self.root / file_name, self.root / PurePosixPath(file_name).name):
            resolved = candidate.resolve()
            if resolved.is_relative_to(self.root) and resolved.is_file():
                return resolved
        return None

    def read(self, file_name: str) -> bytes | None:
        path = self._path(file_name)
        if path is None:
            return None
        limit = settings.IMAGE_MAX_BYTES
        size = path.stat().st_size
        if size > limit:
            raise _too_large(size, limit)
        with path.open("rb") as f:
            return read_capped(f, limit)  # the file may have grown since

    def names(self) -> list[str]:
        return [str(p.relative_to(self.root)) for p in sorted(self.root.rglob("*")) if p.is_file()]


class ZipSource(ImageSource):
    """A zip of images. The archive is refused whole when it declares more entries or more bytes
    than allowed; an entry is refused alone (ImageRefused, reported as a warning naming it) when
    it declares too many bytes or too high a compression ratio, or turns out longer than declared."""

    # Below this many bytes, an entry's compression ratio does not matter.
    RATIO_FLOOR = 1024 * 1024

    def __init__(self, path: Path) -> None:
        # The count in the archive's end record, checked before the zip library reads an object
        # per entry into memory; the entries it then lists are checked again.
        self._check_entries(path, declared_entries(path))
        try:
            self.zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise InvalidInput("images", f"{path.name} is not a zip file") from None
        infos = self.zip.infolist()
        try:
            self._check_entries(path, len(infos))
        except InvalidInput:
            self.zip.close()
            raise
        declared = sum(info.file_size for info in infos)
        if declared > settings.ZIP_MAX_BYTES:
            self.zip.close()
            raise InvalidInput(
                "images",
                f"{path.name} would unpack to {declared:,} bytes, over the limit of {settings.ZIP_MAX_BYTES:,} "
                "(ANNOTATOR_ZIP_MAX_BYTES)",
            )
        self.bytes_read = 0
        self.by_name: dict[str, zipfile.ZipInfo] = {}
        by_base: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.is_dir():
                continue
            self.by_name[info.filename] = info
            by_base.setdefault(PurePosixPath(info.filename).name, info)
        self.by_base = by_base

    @staticmethod
    def _check_entries(path: Path, count: int | None) -> None:
        if count is not None and count > settings.ZIP_MAX_ENTRIES:
            raise InvalidInput(
                "images",
                f"{path.name} holds {count:,} entries, over the limit of {settings.ZIP_MAX_ENTRIES:,} "
                "(ANNOTATOR_ZIP_MAX_ENTRIES)",
            )

    def read(self, file_name: str) -> bytes | None:
        info = self.by_name.get(file_name) or self.by_base.get(PurePosixPath(file_name).name)
        if info is None:
            return None
        return self._read_entry(info)

    def _read_entry(self, info: zipfile.ZipInfo) -> bytes:
        entry = f"zip entry {info.filename!r}"
        limit = settings.IMAGE_MAX_BYTES
        if info.file_size > limit:
            raise ImageRefused(
                f"{entry} declares {info.file_size:,} bytes, over the limit of {limit:,} (ANNOTATOR_IMAGE_MAX_BYTES)"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > self.RATIO_FLOOR and ratio > settings.ZIP_MAX_RATIO:
            raise ImageRefused(
                f"{entry} would expand {ratio:,.0f} times, over the limit of {settings.ZIP_MAX_RATIO} "
                "(ANNOTATOR_ZIP_MAX_RATIO)"
            )
        remaining = settings.ZIP_MAX_BYTES - self.bytes_read
        try:
            with self.zip.open(info) as stream:
                # The declared size may lie: read no further than the smaller cap.
                data = read_capped(stream, min(limit, remaining))
        except ImageRefused as exc:
            if remaining < limit:
                raise ImageRefused(
                    f"{entry}: the archive has unpacked {settings.ZIP_MAX_BYTES:,} bytes already "
                    "(ANNOTATOR_ZIP_MAX_BYTES)"
                ) from None
            raise ImageRefused(f"{entry}: {exc}") from None
        except (zipfile.BadZipFile, OSError, EOFError, zlib_error) as exc:
            raise ImageRefused(f"{entry} cannot be unpacked: {exc}") from None
        self.bytes_read += len(data)
        return data

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def close(self) -> None:
        self.zip.close()


# Bytes of central directory allowed per permitted entry (a record is 46 bytes and its name).
CENTRAL_DIRECTORY_BYTES_PER_ENTRY = 512
CENTRAL_DIRECTORY_SIGNATURE = b"PK\x01\x02"


def declared_entries(path: Path) -> int | None:
    """The entries of a zip, counted without listing them: the zip library reads its whole central
    directory into memory and makes an object per entry, so its size and the number of records in
    it (whatever the end record claims) are checked first. None when the file has no end record
    (it is then no zip, as the zip library says next)."""
    limit = settings.ZIP_MAX_ENTRIES
    with path.open("rb") as f:
        try:
            end = zipfile._EndRecData(f)  # type: ignore[attr-defined]  # the library's own reader
        except OSError:
            return None
        if not end:
            return None
        size = int(end[zipfile._ECD_SIZE])  # type: ignore[attr-defined]
        if size > limit * CENTRAL_DIRECTORY_BYTES_PER_ENTRY:
            raise InvalidInput(
                "images",
                f"{path.name} has a central directory of {size:,} bytes, more than "
                f"{limit:,} entries need (ANNOTATOR_ZIP_MAX_ENTRIES)",
            )
        location = int(end[zipfile._ECD_LOCATION])  # type: ignore[attr-defined]
        f.seek(max(0, location - size - 76))  # 76: a zip64 end record and its locator
        count, tail = int(end[zipfile._ECD_ENTRIES_TOTAL]), b""  # type: ignore[attr-defined]
        records = 0
        remaining = location - f.tell()
        while remaining > 0 and (block := f.read(min(READ_BLOCK, remaining))):
            remaining -= len(block)
            records += (tail + block).count(CENTRAL_DIRECTORY_SIGNATURE)
            tail = block[-3:]
    return max(count, records)


def open_source(path: str | Path | None) -> ImageSource | None:
    if not path:
        return None
    path = Path(path)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        return ZipSource(path)
    raise InvalidInput("images", f"image folder or zip {path} does not exist")
