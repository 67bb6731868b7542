"""The simulator's Batch API: files (``purpose`` ``batch``) and batches of chat completions.

It speaks the OpenAI shapes: ``POST /v1/files`` (multipart), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``DELETE /v1/files/{id}``, ``POST /v1/batches``,
``GET /v1/batches`` (``limit``, ``after``), ``GET /v1/batches/{id}`` and
``POST /v1/batches/{id}/cancel``. A batch is validated, then its lines are answered in a thread
of their own by the live endpoint's answer (same content, same content faults), a share
``batch_fail_rate`` of them going to the error file as a 500 instead, and it completes no sooner
than ``batch_delay_s`` after it was created. The index of files and batches is in memory; the
files' bytes are in a temporary folder of the simulator's own (removed when it stops), so memory
stays flat whatever their size. Every size is bounded: a file's bytes and lines, the bytes and
files held, the batches kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

# OpenAI's own limits for one input file.
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_FILE_LINES = 50_000
# Bytes of one line of an input file, and of the multipart headers of an upload.
MAX_LINE_BYTES = 8 * 1024 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
# What the simulator holds at once: files (input, output and error) and their bytes; finished
# batches past MAX_BATCHES are forgotten, oldest first.
MAX_FILES = 2000
MAX_STORED_BYTES = 4 * 1024 * 1024 * 1024
MAX_BATCHES = 2000
COPY_CHUNK = 256 * 1024
LIST_LIMIT_MAX = 100
ENDPOINT = "/v1/chat/completions"
# The error body of a line that ``batch_fail_rate`` fails.
LINE_FAULT = {
    "message": "The server had an error processing this request (a fault injected by the simulator).",
    "type": "server_error",
    "param": None,
    "code": None,
}
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,80}$")
_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.I)
_DISPOSITION_NAME = re.compile(r'\bname="([^"]{0,200})"', re.I)
_DISPOSITION_FILE = re.compile(r'\bfilename="([^"]{0,500})"', re.I)


class BatchAPIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def new_id(prefix: str) -> str:
    return f"{prefix}-sim-{os.urandom(12).hex()}"


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    size: int
    lines: int
    path: str
    created_at: int = field(default_factory=lambda: int(time.time()))

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None
    delay_s: float
    created_at: float = field(default_factory=time.time)
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    completed: int = 0
    failed: int = 0
    stamps: dict[str, int] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    model: str | None = None

    def public(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created_at),
            "errors": {"object": "list", "data": list(self.errors)} if self.errors else None,
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
            "model": self.model,
            "expires_at": int(self.created_at) + 24 * 3600,
        }
        for stamp in ("in_progress", "finalizing", "completed", "failed", "cancelling", "cancelled", "expired"):
            data[f"{stamp}_at"] = self.stamps.get(stamp)
        return data


# The answer to one line's body: (HTTP status, JSON body); given by the server, so batch lines and
# the live endpoint answer alike.
Answer = Callable[[bytes, random.Random], tuple[int, dict[str, Any]]]


class BatchStore:
    """Files and batches in memory (their bytes in spooled temporary files), all bounded."""

    def __init__(self, answer: Answer, settings: Callable[[], tuple[float, float, int]]) -> None:
        self._answer = answer
        self._settings = settings  # () -> (batch_delay_s, batch_fail_rate, seed)
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._batches: OrderedDict[str, Batch] = OrderedDict()
        self._stored = 0
        self._folder = tempfile.TemporaryDirectory(prefix="annotator-simulator-")
        self.stopping = threading.Event()
        self.counts = {"files": 0, "batches": 0, "lines": 0, "failed_lines": 0, "cancelled": 0}

    def new_path(self) -> str:
        return os.path.join(self._folder.name, os.urandom(12).hex())

    def close(self) -> None:
        """Stop the batches' threads and remove every file."""
        self.stopping.set()
        with self._lock:
            self._files.clear()
            self._stored = 0
        self._folder.cleanup()

    # --- files ------------------------------------------------------------------------------------

    def _reserve(self, size: int) -> None:
        with self._lock:
            if len(self._files) >= MAX_FILES:
                raise BatchAPIError(400, f"The simulator holds {MAX_FILES} files; delete some first.", "file")
            if self._stored + size > MAX_STORED_BYTES:
                raise BatchAPIError(400, "The simulator's file storage is full; delete some files first.", "file")
            self._stored += size

    def _add(self, stored: StoredFile) -> None:
        with self._lock:
            self._files[stored.id] = stored
            self.counts["files"] += 1

    def upload(self, content_type: str, length: int, rfile: Any) -> dict[str, Any]:
        """A multipart upload read as a stream: the file part goes to a spool, never whole into memory."""
        match = _BOUNDARY.search(content_type or "")
        if not content_type.lower().startswith("multipart/form-data") or match is None:
            raise BatchAPIError(400, "Upload the file as multipart/form-data.", "file")
        if length <= 0:
            raise BatchAPIError(411, "A Content-Length is required.", "file")
        if length > MAX_FILE_BYTES + MAX_PART_HEADER_BYTES:
            raise BatchAPIError(413, f"A file is at most {MAX_FILE_BYTES} bytes.", "file")
        reader = _Bounded(rfile, length)
        fields, upload = _read_multipart(reader, match.group(1).encode("latin-1"), self.new_path())
        reader.drain()
        if upload is None:
            raise BatchAPIError(400, "The request has no 'file' part.", "file")
        path, filename, size, lines = upload
        if fields.get("purpose") != "batch":
            _remove(path)
            raise BatchAPIError(400, "The simulator takes files of purpose 'batch' only.", "purpose")
        if size == 0:
            _remove(path)
            raise BatchAPIError(400, "The file is empty.", "file")
        try:
            self._reserve(size)
        except BatchAPIError:
            _remove(path)
            raise
        stored = StoredFile(new_id("file"), filename[:200] or "upload.jsonl", "batch", size, lines, path)
        self._add(stored)
        return stored.public()

    def file(self, file_id: str) -> StoredFile:
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            raise BatchAPIError(404, f"No such File object: {file_id[:80]}", "id", "file_not_found")
        return found

    def delete_file(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            found = self._files.pop(file_id, None)
            if found is not None:
                self._stored -= found.size
        if found is None:
            raise BatchAPIError(404, f"No such File object: {file_id[:80]}", "id", "file_not_found")
        _remove(found.path)
        return {"id": file_id, "object": "file", "deleted": True}

    def open_content(self, file_id: str) -> tuple[IO[bytes], int]:
        """A reader of the file's bytes (a handle of its own; files never change once stored) and
        its size. A file deleted while read stays readable through the handle."""
        stored = self.file(file_id)
        try:
            return open(stored.path, "rb"), stored.size
        except FileNotFoundError:
            raise BatchAPIError(404, f"No such File object: {file_id[:80]}", "id", "file_not_found") from None

    # --- batches ----------------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        input_file_id = body.get("input_file_id")
        if not isinstance(input_file_id, str) or not input_file_id:
            raise BatchAPIError(400, "input_file_id is required", "input_file_id")
        endpoint = body.get("endpoint")
        if endpoint != ENDPOINT:
            raise BatchAPIError(400, f"The simulator batches {ENDPOINT} only.", "endpoint")
        if body.get("completion_window") != "24h":
            raise BatchAPIError(400, "completion_window must be '24h'.", "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or len(metadata) > 16
            or any(
                not isinstance(k, str) or not isinstance(v, str) or len(k) > 64 or len(v) > 512
                for k, v in metadata.items()
            )
        ):
            raise BatchAPIError(400, "metadata: at most 16 string pairs (keys 64, values 512 characters).", "metadata")
        stored = self.file(input_file_id)
        delay, _, _ = self._settings()
        batch = Batch(new_id("batch"), input_file_id, endpoint, "24h", metadata, delay, total=stored.lines)
        with self._lock:
            self._batches[batch.id] = batch
            self.counts["batches"] += 1
            self._forget_old()
        threading.Thread(target=self._run, args=(batch, stored), name=f"batch-{batch.id}", daemon=True).start()
        return batch.public()

    def _forget_old(self) -> None:
        while len(self._batches) > MAX_BATCHES:
            oldest = next((b for b in self._batches.values() if b.status in FINAL), None)
            if oldest is None:
                break
            del self._batches[oldest.id]

    def batch(self, batch_id: str) -> Batch:
        with self._lock:
            found = self._batches.get(batch_id)
        if found is None:
            raise BatchAPIError(404, f"No such Batch object: {batch_id[:80]}", "id", "batch_not_found")
        return found

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = self.batch(batch_id)
        with self._lock:
            return batch.public()

    def listing(self, limit: int, after: str | None) -> dict[str, Any]:
        """Newest first, as the API lists them; ``after`` is the id the previous page ended with."""
        with self._lock:
            ordered = list(reversed(self._batches.values()))
            if after:
                ids = [b.id for b in ordered]
                ordered = ordered[ids.index(after) + 1 :] if after in ids else []
            page = ordered[:limit]
            data = [b.public() for b in page]
            more = len(ordered) > limit
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }

    def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = self.batch(batch_id)
        with self._lock:
            if batch.status in FINAL or batch.status == "cancelling":
                if batch.status != "cancelled" and batch.status != "cancelling":
                    raise BatchAPIError(
                        409, f"Cannot cancel a batch with status '{batch.status}'.", None, "invalid_state"
                    )
                return batch.public()
            batch.status = "cancelling"
            batch.stamps["cancelling"] = int(time.time())
            batch.cancel.set()
            self.counts["cancelled"] += 1
            return batch.public()

    def _set(self, batch: Batch, status: str, **values: Any) -> None:
        with self._lock:
            if batch.status == "cancelling" and status not in ("cancelled",):
                return
            batch.status = status
            batch.stamps[status] = int(time.time())
            for key, value in values.items():
                setattr(batch, key, value)

    def _run(self, batch: Batch, stored: StoredFile) -> None:
        try:
            self._process(batch, stored)
        except Exception as exc:  # a bug must end the batch, not leave it in progress for ever
            self._set(batch, "failed", errors=[{"code": "simulator_error", "message": f"{type(exc).__name__}: {exc}"}])

    def _process(self, batch: Batch, stored: StoredFile) -> None:
        source, _ = self.open_content(stored.id)
        with source:
            problem = _validate(source)
            if problem is not None:
                self._set(batch, "failed", errors=[problem])
                return
            source.seek(0)
            first = json.loads(source.readline())
            batch.model = (first.get("body") or {}).get("model")
            source.seek(0)
            self._set(batch, "in_progress")
            _, fail_rate, seed = self._settings()
            output_path, errors_path = self.new_path(), self.new_path()
            with open(output_path, "wb") as output, open(errors_path, "wb") as errors:
                self._answer_lines(batch, source, output, errors, fail_rate, seed)
            if not batch.cancel.is_set():
                # Completes no sooner than the delay after creation (the provider's queue).
                remaining = batch.created_at + batch.delay_s - time.time()
                if remaining > 0:
                    _wait_any((batch.cancel, self.stopping), remaining)
            if not batch.cancel.is_set():
                self._set(batch, "finalizing")
            ids = {"output_file_id": self._keep(output_path, f"{batch.id}_output.jsonl")}
            ids["error_file_id"] = self._keep(errors_path, f"{batch.id}_error.jsonl")
            self._set(batch, "cancelled" if batch.cancel.is_set() else "completed", **ids)

    def _answer_lines(
        self, batch: Batch, source: IO[bytes], output: IO[bytes], errors: IO[bytes], fail_rate: float, seed: int
    ) -> None:
        rng = random.Random(f"{seed}:{batch.id}")
        for raw in source:
            if batch.cancel.is_set() or self.stopping.is_set():
                break
            line = json.loads(raw)
            if rng.random() < fail_rate:
                status, answer = 500, {"error": dict(LINE_FAULT)}
            else:
                status, answer = self._answer(json.dumps(line["body"]).encode(), rng)
            record = {
                "id": new_id("batch_req"),
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": new_id("req"), "body": answer},
                "error": None,
            }
            target = output if status == 200 else errors
            target.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            with self._lock:
                if status == 200:
                    batch.completed += 1
                    self.counts["lines"] += 1
                else:
                    batch.failed += 1
                    self.counts["failed_lines"] += 1

    def _keep(self, path: str, name: str) -> str | None:
        """Store a finished output or error file; None when it is empty (or storage is full)."""
        size = os.path.getsize(path)
        if size == 0:
            _remove(path)
            return None
        with open(path, "rb") as f:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(COPY_CHUNK), b""))
        try:
            self._reserve(size)
        except BatchAPIError:
            _remove(path)
            return None
        stored = StoredFile(new_id("file"), name, "batch_output", size, lines, path)
        self._add(stored)
        return stored.id

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by_status: dict[str, int] = {}
            for batch in self._batches.values():
                by_status[batch.status] = by_status.get(batch.status, 0) + 1
            return {
                **self.counts,
                "files_held": len(self._files),
                "bytes_held": self._stored,
                "batches_by_status": by_status,
            }


def _validate(source: IO[bytes]) -> dict[str, Any] | None:
    """The first problem of an input file, in the API's error shape, or None."""
    seen: set[str] = set()
    model: str | None = None
    for number, raw in enumerate(source, start=1):

        def problem(message: str, param: str | None = None) -> dict[str, Any]:
            return {"code": "invalid_request", "message": message, "param": param, "line": number}  # noqa: B023

        if number > MAX_FILE_LINES:
            return problem(f"A batch holds at most {MAX_FILE_LINES} requests.")
        try:
            line = json.loads(raw)
        except ValueError:
            return problem("The line is not valid JSON.")
        if not isinstance(line, dict):
            return problem("The line is not a JSON object.")
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
            return problem("custom_id must be a non-empty string.", "custom_id")
        if custom_id in seen:
            return problem(f"Duplicate custom_id {custom_id[:80]!r}.", "custom_id")
        seen.add(custom_id)
        if line.get("method") != "POST" or line.get("url") != ENDPOINT:
            return problem(f"Each line must be a POST to {ENDPOINT}.", "url")
        body = line.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return problem("body must be an object with a model.", "body")
        if model is None:
            model = body["model"]
        elif body["model"] != model:
            return problem("Every line of a batch must name the same model.", "body.model")
    if model is None:
        return {"code": "empty_file", "message": "The input file has no requests.", "param": None, "line": None}
    return None


class _Bounded:
    """Reads at most ``length`` bytes of a stream (the request's body, on a connection kept alive)."""

    def __init__(self, raw: Any, length: int) -> None:
        self.raw = raw
        self.left = length

    def readline(self, limit: int) -> bytes:
        if self.left <= 0:
            return b""
        line = self.raw.readline(min(limit, self.left))
        self.left -= len(line)
        return line

    def drain(self) -> None:
        while self.left > 0:
            chunk = self.raw.read(min(COPY_CHUNK, self.left))
            if not chunk:
                break
            self.left -= len(chunk)


def _read_multipart(
    reader: _Bounded, boundary: bytes, path: str
) -> tuple[dict[str, str], tuple[str, str, int, int] | None]:
    """The text fields and the ``file`` part (written to ``path``: its path, name, bytes and lines)
    of a multipart body."""
    delimiter = b"--" + boundary
    line = reader.readline(MAX_PART_HEADER_BYTES)
    while line and line.strip() != delimiter:
        line = reader.readline(MAX_PART_HEADER_BYTES)
    if not line:
        raise BatchAPIError(400, "The multipart body has no part.", "file")
    fields: dict[str, str] = {}
    upload: tuple[str, str, int, int] | None = None
    while True:
        headers: dict[str, str] = {}
        size = 0
        while True:
            header = reader.readline(MAX_PART_HEADER_BYTES)
            size += len(header)
            if not header or size > MAX_PART_HEADER_BYTES:
                raise BatchAPIError(400, "A part's headers are cut short or too long.", "file")
            if header in (b"\r\n", b"\n"):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name_match = _DISPOSITION_NAME.search(disposition)
        name = name_match.group(1) if name_match else ""
        if name == "file":
            file_match = _DISPOSITION_FILE.search(disposition)
            try:
                with open(path, "wb") as sink:
                    ended, written, lines = _copy_part(reader, delimiter, sink)
            except BatchAPIError:
                _remove(path)
                raise
            upload = (path, file_match.group(1) if file_match else "", written, lines)
        else:
            text_sink = _TextSink()
            ended, _, _ = _copy_part(reader, delimiter, text_sink)
            fields[name] = text_sink.text()
        if ended:
            return fields, upload


class _TextSink:
    """A small field's value (``purpose``), bounded."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > MAX_PART_HEADER_BYTES:
            raise BatchAPIError(400, "A form field is too long.", "file")
        self.parts.append(data)
        return len(data)

    def text(self) -> str:
        return b"".join(self.parts).decode("utf-8", "replace")


def _copy_part(reader: _Bounded, delimiter: bytes, sink: Any) -> tuple[bool, int, int]:
    """Copy a part's content up to the next delimiter; (was it the last part, bytes, lines).

    The line break before a delimiter belongs to the delimiter, so each line's break is held back
    until the next line shows it was not the last."""
    held = b""
    written = breaks = 0
    last = b""
    while True:
        line = reader.readline(MAX_LINE_BYTES + 2)
        if not line:
            raise BatchAPIError(400, "The multipart body ends inside a part.", "file")
        if line.startswith(delimiter):
            rest = line[len(delimiter) :].strip()
            if rest in (b"", b"--"):
                lines = breaks + (1 if written and last != b"\n" else 0)
                return rest == b"--", written, lines
        if held:
            sink.write(held)
            written += len(held)
            breaks += 1
            last = b"\n"
        if line.endswith(b"\r\n"):
            body, held = line[:-2], b"\r\n"
        elif line.endswith(b"\n"):
            body, held = line[:-1], b"\n"
        else:
            if len(line) > MAX_LINE_BYTES:
                raise BatchAPIError(400, f"A line is at most {MAX_LINE_BYTES} bytes.", "file")
            body, held = line, b""
        if body:
            sink.write(body)
            written += len(body)
            last = body[-1:]
        if written > MAX_FILE_BYTES:
            raise BatchAPIError(413, f"A file is at most {MAX_FILE_BYTES} bytes.", "file")


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _wait_any(events: tuple[threading.Event, ...], seconds: float) -> None:
    """Sleep up to ``seconds``, waking early when any of ``events`` is set."""
    end = time.monotonic() + seconds
    while not any(e.is_set() for e in events):
        left = end - time.monotonic()
        if left <= 0:
            return
        events[0].wait(min(left, 0.2))
