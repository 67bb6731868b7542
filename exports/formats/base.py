"""What every export format shares: the files of a release being written, and the format registry.

A format is a writer factory: given the release's sink and context, it returns an object whose
``write`` takes one sample at a time and whose ``close`` finishes its files. Formats never hold
more than the sample at hand (and what a file format must buffer, such as a Parquet row group),
so a release's memory does not grow with the project.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from feedback import storage
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

    def __init__(self, stream: IO[bytes], record: WrittenFile):
        self.record = record
        self._stream = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")

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

    Files are streams into the release's staging (``feedback.storage.Staging``: a hidden folder, or
    multipart uploads to an object store), each measured (bytes, sha256) as it is written. With
    one split, files sit at the top of the release under their own names (so a DRESS release holds
    ``helpfulness_nlf.jsonl`` as published); with several, under ``<split>/``.
    """

    def __init__(self, staging: storage.Staging, splits: list[str]):
        self.staging = staging
        self.splits = splits
        self._files: dict[str, WrittenFile] = {}
        self._open: dict[str, TextFile] = {}
        self._streams: list[tuple[IO[bytes], storage.Written, WrittenFile]] = []

    def path_for(self, name: str, split: str) -> str:
        return name if len(self.splits) <= 1 or not split else f"{split}/{name}"

    def _stream(self, path: str, record: WrittenFile) -> IO[bytes]:
        raw, measured = self.staging.open(path)
        stream: IO[bytes] = io.BufferedWriter(raw, HASH_BLOCK)  # type: ignore[arg-type]
        self._streams.append((stream, measured, record))
        return stream

    def text(self, name: str, *, split: str, format: str) -> TextFile:
        """The text file ``name`` of ``split``, opened on first use."""
        path = self.path_for(name, split)
        handle = self._open.get(path)
        if handle is None:
            record = self._register(path, format, split)
            handle = self._open[path] = TextFile(self._stream(path, record), record)
        return handle

    def binary(self, name: str, *, split: str, format: str) -> tuple[IO[bytes], WrittenFile]:
        """A file the format writes itself (Parquet, tar): a binary stream (the sink closes it) and
        its record, whose ``rows`` the format keeps."""
        path = self.path_for(name, split)
        record = self._register(path, format, split)
        return self._stream(path, record), record

    def add(self, name: str, data: bytes, *, format: str) -> WrittenFile:
        """A whole file at the top of the release (the manifest, the card)."""
        record = self._register(name, format, "")
        stream = self._stream(name, record)
        stream.write(data)
        return record

    def copy(self, source: Path, *, format: str) -> None:
        """A file shipped as it is (a schema, say), at the top of the release under its own name;
        once, however many formats ask for it."""
        if source.name not in self._files:
            self.add(source.name, source.read_bytes(), format=format)

    def bytes_written(self) -> int:
        """Bytes written so far by every file (the quota's measure while the build runs)."""
        return sum(stream.tell() for stream, _, _ in self._streams if not stream.closed) + sum(
            measured.byte_size for stream, measured, _ in self._streams if stream.closed
        )

    def close(self) -> list[WrittenFile]:
        """Closes every file and records its size and sha256; the files in path order."""
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        for stream, measured, record in self._streams:
            if not stream.closed:
                stream.close()
            record.byte_size, record.sha256 = measured.byte_size, measured.sha256
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
