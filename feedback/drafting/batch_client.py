"""The Batch API of an OpenAI-compatible endpoint: upload a file of requests, create, find, poll and
cancel a batch, read its output and error files as a stream of lines.

Like client.py, it goes through the ``openai`` package with its retries off, and every failure
becomes an LLMError saying whether trying again could help; no message carries the key. Files are
sent from disk and read back in chunks, so a worker's memory does not grow with their size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final

import openai

from .client import LLMError, _client, error_summary, retry_after_seconds

ENDPOINT: Final = "/v1/chat/completions"
# Bytes of one line of an output or error file; a longer one is reported, never held whole.
MAX_LINE_BYTES = 16 * 1024 * 1024
# Pages of the provider's batch list searched for a batch made from a given file (newest first).
FIND_PAGES = 5
FIND_PAGE_SIZE = 100
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
_CHUNK = 256 * 1024


class LineTooLong(Exception):
    """A line of a file past MAX_LINE_BYTES: skipped, its request treated as unanswered."""


@dataclass(frozen=True)
class RemoteBatch:
    id: str
    status: str
    input_file_id: str
    output_file_id: str
    error_file_id: str
    completed: int
    failed: int
    total: int
    errors: str

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES


def _remote(batch: Any) -> RemoteBatch:
    counts = batch.request_counts
    errors = ""
    if batch.errors is not None and batch.errors.data:
        first = batch.errors.data[0]
        where = f" (line {first.line})" if first.line is not None else ""
        errors = f"{first.code or 'error'}: {str(first.message or '')[:200]}{where}"
    return RemoteBatch(
        id=batch.id,
        status=batch.status,
        input_file_id=batch.input_file_id,
        output_file_id=batch.output_file_id or "",
        error_file_id=batch.error_file_id or "",
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        total=counts.total if counts else 0,
        errors=errors,
    )


@contextmanager
def _translated(api_key: str, what: str, timeout: float) -> Iterator[None]:
    """openai's exceptions as LLMError, in the words client.chat uses."""
    try:
        yield
    except openai.APITimeoutError:
        raise LLMError(f"{what}: no answer within {timeout:g} s", retryable=True) from None
    except openai.APIConnectionError as exc:
        raise LLMError(f"{what}: connection failed: {type(exc.__cause__ or exc).__name__}", retryable=True) from None
    except openai.APIStatusError as exc:
        try:
            body = exc.response.text
        except Exception:  # a body that cannot be decoded, or one streamed and not read
            body = ""
        transient = exc.status_code >= 500 or exc.status_code in (408, 409, 429)
        raise LLMError(
            f"{what}: {error_summary(exc.status_code, body, api_key)}",
            retryable=transient,
            throttled=exc.status_code == 429,
            retry_after=retry_after_seconds(exc.response.headers),
        ) from None
    except openai.APIError as exc:
        raise LLMError(f"{what}: unusable answer: {type(exc).__name__}", retryable=True) from None


def upload(*, base_url: str, api_key: str, path: str, filename: str, timeout: float) -> str:
    """Upload a JSONL file of requests (purpose ``batch``); its file id."""
    client = _client(base_url, api_key, timeout)
    with _translated(api_key, "upload", timeout), open(path, "rb") as f:
        return client.files.create(file=(filename, f, "application/jsonl"), purpose="batch").id


def create(*, base_url: str, api_key: str, input_file_id: str, metadata: dict[str, str], timeout: float) -> RemoteBatch:
    client = _client(base_url, api_key, timeout)
    with _translated(api_key, "create batch", timeout):
        return _remote(
            client.batches.create(
                input_file_id=input_file_id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
            )
        )


def find(*, base_url: str, api_key: str, input_file_id: str, timeout: float) -> RemoteBatch | None:
    """The batch made from ``input_file_id``, among the newest few pages of the provider's list:
    after a worker was lost between creating a batch and recording it, the batch is found, not
    made twice."""
    client = _client(base_url, api_key, timeout)
    after: str | None = None
    with _translated(api_key, "list batches", timeout):
        for _ in range(FIND_PAGES):
            page = (
                client.batches.list(limit=FIND_PAGE_SIZE, after=after)
                if after
                else client.batches.list(limit=FIND_PAGE_SIZE)
            )
            for batch in page.data:
                if batch.input_file_id == input_file_id:
                    return _remote(batch)
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id
    return None


def retrieve(*, base_url: str, api_key: str, batch_id: str, timeout: float) -> RemoteBatch:
    client = _client(base_url, api_key, timeout)
    with _translated(api_key, "poll batch", timeout):
        return _remote(client.batches.retrieve(batch_id))


def cancel(*, base_url: str, api_key: str, batch_id: str, timeout: float) -> RemoteBatch:
    client = _client(base_url, api_key, timeout)
    with _translated(api_key, "cancel batch", timeout):
        return _remote(client.batches.cancel(batch_id))


def delete_file(*, base_url: str, api_key: str, file_id: str, timeout: float) -> None:
    """Remove a file the job no longer needs; a failure is ignored (the provider expires files)."""
    client = _client(base_url, api_key, timeout)
    with suppress(openai.APIError):
        client.files.delete(file_id)


@contextmanager
def lines(*, base_url: str, api_key: str, file_id: str, timeout: float) -> Iterator[Iterator[bytes | LineTooLong]]:
    """The lines of a file, read in chunks; a line past MAX_LINE_BYTES comes as LineTooLong."""
    client = _client(base_url, api_key, timeout)
    with _translated(api_key, "download", timeout), client.files.with_streaming_response.content(file_id) as response:
        yield _split(response.iter_bytes(_CHUNK))


def _split(chunks: Iterator[bytes]) -> Iterator[bytes | LineTooLong]:
    held = b""
    skipping = False
    for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if not skipping:
                    held += chunk[start:]
                    if len(held) > MAX_LINE_BYTES:
                        held, skipping = b"", True
                        yield LineTooLong()
                break
            if skipping:
                skipping = False
            else:
                line = held + chunk[start:end]
                held = b""
                if line.strip():
                    yield line
            start = end + 1
    if held.strip() and not skipping:
        yield held
