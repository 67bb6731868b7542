"""The JSON schema the LLM answers with, and a tolerant parser of its answers.

The parser repairs what it safely can (a fenced block, prose around the object, trailing commas,
a score written as "5" or 5.0) and reports anything else as a ParseError that names the field.
A score outside the project's scale is an error, never clamped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

SCHEMA_NAME = "turn_feedback"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def feedback_schema(criteria: list[str], low: int, high: int) -> dict[str, Any]:
    score = {"type": "integer", "minimum": low, "maximum": high}
    return {
        "type": "object",
        "properties": {
            "critique": {"type": "string", "description": "Strengths and weaknesses, per criterion."},
            "refinement": {"type": "string", "description": "Advice toward the reference answer."},
            "scores": {
                "type": "object",
                "properties": {name: dict(score) for name in criteria},
                "required": list(criteria),
                "additionalProperties": False,
            },
            "overall": dict(score),
        },
        "required": ["critique", "refinement", "scores", "overall"],
        "additionalProperties": False,
    }


def response_format(schema: dict[str, Any], mode: str) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


class ParseError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class ParsedFeedback:
    critique: str
    refinement: str
    scores: dict[str, int]
    overall: int
    repaired: bool


def _load_object(text: str) -> tuple[dict[str, Any], bool]:
    stripped = text.strip()
    try:
        value = json.loads(stripped)
        repaired = False
    except json.JSONDecodeError as first_error:
        value = _repair(stripped, first_error)
        repaired = True
    if not isinstance(value, dict):
        raise ParseError("", f"expected a JSON object, got {type(value).__name__}")
    return value, repaired


def _repair(text: str, error: json.JSONDecodeError) -> Any:
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            try:
                return json.loads(attempt)
            except json.JSONDecodeError:
                continue
    raise ParseError("", f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})")


def _text(value: dict[str, Any], field: str) -> str:
    if field not in value:
        raise ParseError(field, "missing")
    text = value[field]
    if not isinstance(text, str):
        raise ParseError(field, f"expected a string, got {type(text).__name__}")
    if not text.strip():
        raise ParseError(field, "empty")
    return text.strip()


def _score(value: Any, field: str, low: int, high: int) -> tuple[int, bool]:
    repaired = False
    if isinstance(value, bool):
        raise ParseError(field, "expected an integer, got a boolean")
    numeric_text = isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value)
    if numeric_text or (isinstance(value, float) and value.is_integer()):
        value, repaired = int(value), True
    if not isinstance(value, int):
        raise ParseError(field, f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ParseError(field, f"{value} is outside the scale {low}-{high}")
    return value, repaired


def parse_feedback(text: str, *, criteria: list[str], low: int, high: int, finish_reason: str) -> ParsedFeedback:
    if finish_reason == "length":
        raise ParseError("", "the answer was cut off at the token limit (finish_reason: length)")
    value, repaired = _load_object(text)
    critique = _text(value, "critique")
    refinement = _text(value, "refinement")
    raw_scores = value.get("scores")
    if raw_scores is None:
        raise ParseError("scores", "missing")
    if not isinstance(raw_scores, dict):
        raise ParseError("scores", f"expected an object, got {type(raw_scores).__name__}")
    scores: dict[str, int] = {}
    for name in criteria:
        if name not in raw_scores:
            raise ParseError(f"scores.{name}", "missing")
        scores[name], fixed = _score(raw_scores[name], f"scores.{name}", low, high)
        repaired = repaired or fixed
    if "overall" not in value:
        raise ParseError("overall", "missing")
    overall, fixed = _score(value["overall"], "overall", low, high)
    return ParsedFeedback(critique, refinement, scores, overall, repaired or fixed)
