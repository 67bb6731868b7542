"""Reading source files record by record, with line numbers, without loading a JSONL file whole."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..limits import JSON_MAX_DEPTH, TooDeep, loads_bounded
from .records import RecordError

TOO_DEEP = f"nested deeper than {JSON_MAX_DEPTH} levels of arrays and objects"
# A JSON string (escapes included) or a bracket: what the nesting depth is counted from.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class SourceError(ValueError):
    """The file as a whole cannot be read (not JSON at all, wrong top-level shape)."""


@dataclass
class RawRecord:
    line: int
    position: int  # bytes read so far, for progress
    value: Any = None
    error: RecordError | None = None
    # Whether the text may hold what a database cannot store (NUL, NaN, Infinity); only then is
    # the decoded value walked in search of it.
    suspect: bool = True


UNSTORABLE_TOKENS = ("\\u0000", "NaN", "Infinity")


def may_hold_unstorable(text: str) -> bool:
    """A raw NUL cannot appear inside a JSON string, so these tokens are the only ways in."""
    return any(token in text for token in UNSTORABLE_TOKENS)


def iter_jsonl(stream: BinaryIO) -> Iterator[RawRecord]:
    """One record per non-blank line; a bad line is reported, and the lines around it still read."""
    position = 0
    for line_no, raw in enumerate(stream, start=1):
        position += len(raw)
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawRecord(
                line_no, position, error=RecordError("", f"not valid UTF-8 (byte {exc.start + 1} of the line)")
            )
            continue
        try:
            value = loads_bounded(text)
        except TooDeep:
            yield RawRecord(line_no, position, error=RecordError("", TOO_DEEP))
            continue
        except json.JSONDecodeError as exc:
            yield RawRecord(line_no, position, error=RecordError("", f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        yield RawRecord(line_no, position, value=value, suspect=may_hold_unstorable(text))


def load_json_document(path: Path) -> str:
    """A whole JSON document (LLaVA lists, COCO files): errors say where the document breaks."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SourceError(f"line {line}: not valid UTF-8") from None


def iter_json_array(path: Path) -> Iterator[RawRecord]:
    """The items of a top-level JSON array, each with the line it starts on.

    Items are decoded one at a time, so one malformed item is reported with its line; as JSON
    has no record separator, the items after a syntax error cannot be told apart and the error
    says so.
    """
    text = load_json_document(path)
    if not text:
        return
    decoder = json.JSONDecoder()
    total = len(text)
    pos = _skip_ws(text, 0)
    if pos >= total or text[pos] != "[":
        raise SourceError("expected a JSON array of records at the top level")
    pos = _skip_ws(text, pos + 1)
    line = 1 + text.count("\n", 0, pos)
    counted_to = pos
    if pos < total and text[pos] == "]":
        return
    while pos < total:
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        end, depth = _element_end(text, pos)
        if depth > JSON_MAX_DEPTH:
            if end is None:
                yield RawRecord(line, total, error=RecordError("", f"{TOO_DEEP}; the rest of the file is unreadable"))
                return
            # The record is skipped whole; the ones after it still read.
            yield RawRecord(line, end, error=RecordError("", TOO_DEEP))
        else:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                yield RawRecord(
                    line,
                    total,
                    error=RecordError(
                        "", f"invalid JSON: {exc.msg} at line {exc.lineno}; the rest of the file is unreadable"
                    ),
                )
                return
            yield RawRecord(line, end, value=value, suspect=may_hold_unstorable(text[pos:end]))
        pos = _skip_ws(text, end)
        if pos < total and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos < total and text[pos] == "]":
            return
        else:
            line += text.count("\n", counted_to, pos)
            yield RawRecord(
                line,
                total,
                error=RecordError("", "expected ',' or ']' after this record; the rest of the file is unreadable"),
            )
            return


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _element_end(text: str, pos: int) -> tuple[int | None, int]:
    """Where the array or object starting at ``pos`` ends, and how deep it nests, found without
    parsing it (the parser recurses once per level). A scalar: (None, 0). Unclosed: (None, depth)."""
    if text[pos] not in "[{":
        return None, 0
    depth = deepest = 0
    for match in _TOKEN.finditer(text, pos):
        found = match.group()
        if found in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif found in "]}":
            depth -= 1
            if depth == 0:
                return match.end(), deepest
    return None, deepest
