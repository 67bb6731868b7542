"""Bounds on untrusted input, in one place: every import, form and endpoint checks against these.

The README's *Security* section lists them. A value past its bound is refused with an error that
names the field (and, in imports, the line); nothing longer is ever stored.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Free text, in characters. Generous for real feedback (the published DRESS critiques are under
# 3,000 characters), small enough that a diff or a page of them stays cheap.
TEXT_MAX_CHARS: dict[str, int] = {
    "critique": 20_000,
    "refinement": 20_000,
    "reason": 5_000,
    "flag_note": 5_000,
    "user_message": 20_000,
    "model_response": 50_000,
    "reference_answer": 20_000,
    "caption": 5_000,
    "note": 20_000,
}

# JSON nesting, in arrays and objects, for API bodies and imported records alike. Real records
# nest four or five deep.
JSON_MAX_DEPTH = 64

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class TooDeep(ValueError):
    """A JSON text nested deeper than ``JSON_MAX_DEPTH``."""


def text_limit_error(field: str, value: str) -> str | None:
    """The message for a text past its field's bound, else None."""
    limit = TEXT_MAX_CHARS[field]
    if len(value) > limit:
        return f"at most {limit:,} characters (got {len(value):,})"
    return None


def json_depth(text: str | bytes, limit: int = JSON_MAX_DEPTH) -> int:
    """The nesting depth of a JSON text, counted without parsing it (strings are skipped), stopping
    as soon as it passes ``limit``: cheap enough to run before every ``json.loads``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        else:
            depth -= 1
    return deepest


def loads_bounded(text: str | bytes, limit: int = JSON_MAX_DEPTH) -> Any:
    """``json.loads`` that refuses a text nested deeper than ``limit`` before parsing it."""
    if json_depth(text, limit) > limit:
        raise TooDeep(f"JSON nested deeper than {limit} levels")
    return json.loads(text)
