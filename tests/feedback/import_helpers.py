"""Helpers for the importer tests: source files written on the fly and real image bytes."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from feedback.importers.service import import_file
from feedback.models import Image, ImportBatch, ImportedFeedback, Project, Sample, Turn

FORMATS_DIR = Path(__file__).resolve().parents[2] / "demo" / "fixtures" / "formats"
DRESS_EXAMPLE = FORMATS_DIR / "dress_nlf_example.jsonl"
VLSAFE_EXAMPLE = FORMATS_DIR / "vlsafe_example.jsonl"


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    """One line per item: dicts and lists as JSON, str and bytes as written (for broken lines)."""
    with path.open("wb") as out:
        for line in lines:
            if isinstance(line, bytes):
                out.write(line)
            elif isinstance(line, str):
                out.write(line.encode("utf-8"))
            else:
                out.write(json.dumps(line, ensure_ascii=False).encode("utf-8"))
            out.write(b"\n")
    return path


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")
    return path


def run_import(project: Project, format: str, path: Path, **options) -> ImportBatch:
    batch = import_file(project=project, format=format, path=path, **options)
    batch.refresh_from_db()
    return batch


def counts(batch: ImportBatch) -> dict[str, int]:
    return {
        "read": batch.records_read,
        "created": batch.created,
        "updated": batch.updated,
        "skipped": batch.skipped,
        "rejected": batch.rejected,
    }


def native_record(
    external_id: str, image: Any = None, *, user: Any = "What is shown?", model: Any = "A cat."
) -> dict[str, Any]:
    """A native record; its fields take any value, since tests send wrong types on purpose."""
    record: dict[str, Any] = {"id": external_id, "turns": [{"user": user, "model": model}]}
    if image is not None:
        record["image"] = image
    return record


def dress_record(image_id: str, *turns: tuple[Any, Any, Any, Any], caption: str = "A caption.") -> dict[str, Any]:
    """A DRESS record of (user, model, rating, critique) turns, of any types (tests send wrong ones)."""
    return {
        "image_id": image_id,
        "caption": caption,
        "interaction": [
            {"user": user, "model": model, "rating": rating, "critique NLF": critique}
            for user, model, rating, critique in turns
        ],
    }


def image_bytes(
    fmt: str = "PNG", size: tuple[int, int] = (40, 30), color: tuple[int, int, int] = (200, 30, 40)
) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims width x height 8-bit grey pixels, with one row of data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" + b"\x00" * min(width, 1024))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def row_counts() -> dict[str, int]:
    return {
        "samples": Sample.objects.count(),
        "turns": Turn.objects.count(),
        "feedback": ImportedFeedback.objects.count(),
        "images": Image.objects.count(),
    }
