"""What every export format shares: the files of a release being written, and the format registry.

A format is a writer factory: given the release's sink and context, it returns an object whose
``write`` takes one sample at a time and whose ``close`` finishes its files. Formats never hold
more than the sample at hand (and what a file format must buffer, such as a Parquet row group),
so a release's memory does not grow with the project.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from feedback.models import Project

from ..filters import ReleaseFilters
from ..records import ExportSample

HASH_BLOCK = 1 << 20


# What json.dumps(value, ensure_ascii=False) builds anew on every call, made once.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def json_line(value: Any) -> str:
    """One JSONL line as the published DRESS files write it: UTF-8, ", " and ": " separators."""
    return _ENCODER.encode(value) + "\n"


def json_string(value: str) -> str:
    """A JSON string exactly as ``json.dumps(value, ensure_ascii=False)`` writes it, faster."""
    return orjson.dumps(value).decode()


def compact_json_line(value: Any) -> str:
    """One compact JSONL line (no spaces), for our own formats, where the bytes follow no published
    file: a tenth of the standard encoder's time on large records. Values it cannot encode (an
    integer beyond 64 bits in imported metadata, say) take the standard encoder."""
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class ExportContext:
    project: Project
    filters: ReleaseFilters
    criteria: list[str]  # the criteria released, in the rubric's order
    media_root: Path


@dataclass
class WrittenFile:
    path: str  # relative to the release folder
    format: str
    split: str
    rows: int = 0
    byte_size: int = 0
    sha256: str = ""


class TextFile:
    """A UTF-8 file of the release, written row by row."""

    def __init__(self, absolute: Path, record: WrittenFile):
        absolute.parent.mkdir(parents=True, exist_ok=True)
        self.record = record
        self._stream: IO[str] = absolute.open("w", encoding="utf-8", newline="\n", buffering=HASH_BLOCK)

    def write_row(self, text: str) -> None:
        self._stream.write(text)
        self.record.rows += 1

    def write(self, text: str) -> None:
        """Text that is not a row of its own (a JSON list's brackets, say)."""
        self._stream.write(text)

    def close(self) -> None:
        self._stream.close()


class ReleaseSink:
    """The files of one release: where each goes, and their rows, sizes and hashes once closed.

    With one split, files sit at the top of the release folder under their own names (so a DRESS
    release holds ``helpfulness_nlf.jsonl`` as published); with several, under ``<split>/``.
    """

    def __init__(self, root: Path, splits: list[str]):
        self.root = root
        self.splits = splits
        self._files: dict[str, WrittenFile] = {}
        self._open: dict[str, TextFile] = {}

    def path_for(self, name: str, split: str) -> str:
        return name if len(self.splits) <= 1 or not split else f"{split}/{name}"

    def text(self, name: str, *, split: str, format: str) -> TextFile:
        """The text file ``name`` of ``split``, opened on first use."""
        path = self.path_for(name, split)
        handle = self._open.get(path)
        if handle is None:
            record = self._register(path, format, split)
            handle = self._open[path] = TextFile(self.root / path, record)
        return handle

    def binary(self, name: str, *, split: str, format: str) -> tuple[Path, WrittenFile]:
        """A file the format writes itself (Parquet, tar): its absolute path and its record, whose
        ``rows`` the format keeps."""
        path = self.path_for(name, split)
        record = self._files.get(path) or self._register(path, format, split)
        absolute = self.root / path
        absolute.parent.mkdir(parents=True, exist_ok=True)
        return absolute, record

    def copy(self, source: Path, *, format: str) -> None:
        """A file shipped as it is (a schema, say), at the top of the release under its own name;
        once, however many formats ask for it."""
        if source.name in self._files:
            return
        self._register(source.name, format, "")
        shutil.copyfile(source, self.root / source.name)

    def close(self) -> list[WrittenFile]:
        """Closes every file and measures it; the files in path order."""
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        for record in self._files.values():
            record.byte_size, record.sha256 = file_digest(self.root / record.path)
        return sorted(self._files.values(), key=lambda f: f.path)

    def _register(self, path: str, format: str, split: str) -> WrittenFile:
        if path in self._files:
            raise ValueError(f"two formats write {path}")
        record = self._files[path] = WrittenFile(path=path, format=format, split=split)
        return record


def file_digest(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while block := stream.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


class Writer(Protocol):
    def write(self, sample: ExportSample) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str
    description: str
    writer: Callable[[ReleaseSink, ExportContext], Writer]
    # Files a release of this format ships beside its data (the rich records' JSON Schema).
    companions: tuple[Path, ...] = ()


class JsonlWriter:
    """A writer of one JSONL file per split, one record per sample that ``record`` returns one for."""

    file_name = ""
    format_name = ""
    encode = staticmethod(json_line)

    def __init__(self, sink: ReleaseSink, ctx: ExportContext):
        self.sink = sink
        self.ctx = ctx

    def record(self, sample: ExportSample) -> dict | None:
        raise NotImplementedError

    def write(self, sample: ExportSample) -> None:
        record = self.record(sample)
        if record is not None:
            self.sink.text(self.file_name, split=sample.split, format=self.format_name).write_row(self.encode(record))

    def close(self) -> None:
        """The sink closes the files."""
