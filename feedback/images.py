"""Image files: checked by Pillow, stored once under their sha256, found by their original name.

Every file is refused with a clear message unless Pillow can read its header, the header claims
no more pixels than IMAGE_MAX_PIXELS, and the whole image decodes (a truncated file fails).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .models import Image


class ImageRefused(ValueError):
    """A file that is not an image we accept; the message says why."""


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
            with PILImage.open(io.BytesIO(data)) as img:
                width, height, fmt = img.width, img.height, img.format or ""
                if width * height > limit:
                    raise ImageRefused(
                        f"the header claims {width}x{height} = {width * height:,} pixels, "
                        f"over the limit of {limit:,} (ANNOTATOR_IMAGE_MAX_PIXELS)"
                    )
                img.verify()
            with PILImage.open(io.BytesIO(data)) as img:
                img.load()
    except ImageRefused:
        raise
    except UnidentifiedImageError:
        raise ImageRefused("not an image Pillow can read") from None
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


def store_bytes(data: bytes, name: str) -> None:
    """Write once: identical content already stored under its hash is not written again."""
    target = Path(settings.MEDIA_ROOT) / name
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, target)


def apply_file(image: Image, data: bytes) -> ImageInfo:
    """Check and store the bytes, and set the image's file fields (the caller saves)."""
    info = inspect_image(data)
    name = stored_name(info)
    store_bytes(data, name)
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
        return path.read_bytes() if path else None

    def names(self) -> list[str]:
        return [str(p.relative_to(self.root)) for p in sorted(self.root.rglob("*")) if p.is_file()]


class ZipSource(ImageSource):
    def __init__(self, path: Path) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise ValueError(f"{path.name} is not a zip file") from None
        self.by_name: dict[str, zipfile.ZipInfo] = {}
        by_base: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            if info.is_dir():
                continue
            self.by_name[info.filename] = info
            by_base.setdefault(PurePosixPath(info.filename).name, info)
        self.by_base = by_base

    def read(self, file_name: str) -> bytes | None:
        info = self.by_name.get(file_name) or self.by_base.get(PurePosixPath(file_name).name)
        return self.zip.read(info) if info else None

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def close(self) -> None:
        self.zip.close()


def open_source(path: str | Path | None) -> ImageSource | None:
    if not path:
        return None
    path = Path(path)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        return ZipSource(path)
    raise ValueError(f"image folder or zip {path} does not exist")
