"""What every importer produces: plain records, checked field by field before the database sees them.

Each format module turns its source into these; the writer stores them. A record that fails a
check raises RecordError naming the field, and the import reports it by line.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..limits import text_limit_error

# The database's integer columns (image width and height) hold no more.
MAX_INTEGER = 2_147_483_647
NUL_MESSAGE = "must not contain a NUL character"

CRITERION_ALIASES = {
    "helpfulness": "helpfulness",
    "helpful": "helpfulness",
    "honesty": "honesty",
    "honest": "honesty",
    "hallucination": "honesty",
    "harmlessness": "harmlessness",
    "harmless": "harmlessness",
    "safety": "harmlessness",
}


class RecordError(ValueError):
    """A record that cannot be imported, with the field at fault (a dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass
class ImageRecord:
    file_name: str
    width: int | None = None
    height: int | None = None
    captions: list[str] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    regions: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""
    ref: str = ""  # where a worker fetches the file from (feedback/references/); "" when it comes as a file


@dataclass
class FeedbackRecord:
    criterion: str
    score: int | None
    rating_raw: str
    critique: str
    refinement: str = ""


@dataclass
class TurnRecord:
    user: str
    model: str | None
    feedback: list[FeedbackRecord] = field(default_factory=list)


@dataclass
class SampleRecord:
    external_id: str
    image: ImageRecord | None
    turns: list[TurnRecord]
    target_criterion: str = ""
    reference_answer: str = ""
    source_dataset: str = ""
    source_model: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def content_hash(self) -> str:
        # The records' own attribute dicts stand for them: no deep copy, as asdict would make.
        canonical = json.dumps(self, default=_state, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _state(record: Any) -> dict[str, Any]:
    """A record's attributes as hashed: an image without a reference hashes as it did before
    references existed, so re-importing a file changes nothing."""
    state = vars(record)
    if isinstance(record, ImageRecord) and not record.ref:
        state = {k: v for k, v in state.items() if k != "ref"}
    return state


def type_name(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        int: "number",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def expect_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(path, f"expected an object, got {type_name(value)}")
    return value


def check_text(value: str, kind: str, where: str) -> str:
    """A text within its bound (``feedback.limits.TEXT_MAX_CHARS[kind]``), else the record is rejected."""
    error = text_limit_error(kind, value)
    if error:
        raise RecordError(where, error)
    return value


def get_str(
    obj: dict[str, Any],
    key: str,
    path: str = "",
    *,
    required: bool = True,
    allow_empty: bool = False,
    limit: str = "",
) -> str:
    """A string field; ``limit`` names its bound in ``feedback.limits.TEXT_MAX_CHARS``."""
    where = f"{path}.{key}" if path else key
    if key not in obj or obj[key] is None:
        if required:
            raise RecordError(where, "is required")
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise RecordError(where, f"expected a string, got {type_name(value)}")
    if "\x00" in value:
        raise RecordError(where, NUL_MESSAGE)
    if required and not allow_empty and not value.strip():
        raise RecordError(where, "must not be empty")
    if limit:
        check_text(value, limit, where)
    return value


def get_list(obj: dict[str, Any], key: str, path: str = "", *, required: bool = True) -> list[Any]:
    where = f"{path}.{key}" if path else key
    if key not in obj or obj[key] is None:
        if required:
            raise RecordError(where, "is required")
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise RecordError(where, f"expected an array, got {type_name(value)}")
    return value


def get_optional_int(obj: dict[str, Any], key: str, path: str = "") -> int | None:
    where = f"{path}.{key}" if path else key
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(where, f"expected an integer, got {type_name(value)}")
    if value < 0:
        raise RecordError(where, "must not be negative")
    if value > MAX_INTEGER:
        raise RecordError(where, f"must not exceed {MAX_INTEGER}")
    return value


def reject_unstorable(value: Any, path: str) -> None:
    """What the database cannot store, found anywhere in a value: NUL in text (PostgreSQL refuses it)
    and the NaN and Infinity that Python's JSON reader accepts but JSON columns refuse."""
    if isinstance(value, str):
        if "\x00" in value:
            raise RecordError(path, NUL_MESSAGE)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(path, f"expected a finite number, got {json.dumps(value)}")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_unstorable(key, path)
            reject_unstorable(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_unstorable(item, f"{path}[{i}]")


def reject_unknown(obj: dict[str, Any], allowed: set[str], path: str = "") -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        where = f"{path}.{unknown[0]}" if path else unknown[0]
        raise RecordError(where, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def extras(obj: dict[str, Any], known: set[str]) -> dict[str, Any]:
    """The fields of a source record that we do not model, kept so that nothing is lost."""
    return {k: v for k, v in obj.items() if k not in known}


def normalize_criterion(value: str, path: str, allowed: list[str]) -> str:
    name = CRITERION_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in allowed:
        raise RecordError(path, f"unknown criterion {value!r} (this project's criteria: {', '.join(allowed)})")
    return name


def parse_score(value: Any, path: str, scale: range) -> tuple[int | None, str]:
    """A rating as a source wrote it (DRESS writes strings such as "4") and its integer."""
    if value is None or value == "":
        return None, ""
    if isinstance(value, bool):
        raise RecordError(path, "expected a number or a numeric string, got boolean")
    if isinstance(value, int):
        raw, number = str(value), value
    elif isinstance(value, float):
        if not value.is_integer():
            raise RecordError(path, f"expected a whole number on the scale, got {value}")
        raw, number = str(value), int(value)
    elif isinstance(value, str):
        raw = value
        try:
            number = int(value.strip())
        except ValueError:
            raise RecordError(path, f"expected a whole number on the scale, got {value!r}") from None
    else:
        raise RecordError(path, f"expected a number or a numeric string, got {type_name(value)}")
    if number not in scale:
        raise RecordError(path, f"score {number} is outside this project's scale {scale.start}-{scale.stop - 1}")
    return number, raw


def parse_bbox(value: Any, path: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 4:
        raise RecordError(path, "expected [x, y, width, height] in pixels")
    for i, part in enumerate(value):
        if isinstance(part, bool) or not isinstance(part, int | float):
            raise RecordError(f"{path}[{i}]", f"expected a number, got {type_name(part)}")
        reject_unstorable(part, f"{path}[{i}]")
    if value[2] < 0 or value[3] < 0:
        raise RecordError(path, "width and height must not be negative")
    return [int(v) if float(v).is_integer() else float(v) for v in value]


def parse_objects(items: list[Any], path: str) -> list[dict[str, Any]]:
    result = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        obj = expect_object(item, where)
        reject_unknown(obj, {"label", "bbox", "score"}, where)
        entry: dict[str, Any] = {
            "label": get_str(obj, "label", where),
            "bbox": parse_bbox(obj.get("bbox"), f"{where}.bbox"),
        }
        if obj.get("score") is not None:  # a detector's confidence, kept as given
            score = obj["score"]
            if isinstance(score, bool) or not isinstance(score, int | float):
                raise RecordError(f"{where}.score", f"expected a number, got {type_name(score)}")
            reject_unstorable(score, f"{where}.score")
            entry["score"] = score
        result.append(entry)
    return result


def parse_regions(items: list[Any], path: str) -> list[dict[str, Any]]:
    result = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        obj = expect_object(item, where)
        reject_unknown(obj, {"description", "bbox"}, where)
        entry: dict[str, Any] = {"description": get_str(obj, "description", where)}
        if obj.get("bbox") is not None:
            entry["bbox"] = parse_bbox(obj["bbox"], f"{where}.bbox")
        result.append(entry)
    return result


def parse_captions(items: list[Any], path: str) -> list[str]:
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise RecordError(f"{path}[{i}]", f"expected a string, got {type_name(item)}")
        check_text(item, "caption", f"{path}[{i}]")
    return [c for c in items if c.strip()]


def image_file_name(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise RecordError(path, f"expected a file name string, got {type_name(value)}")
    name = value.strip()
    if not name:
        raise RecordError(path, "must not be empty")
    if name.startswith("/") or ".." in name.split("/") or "\\" in name or "\x00" in name:
        raise RecordError(path, f"{value!r} is not a relative file name")
    return name


def external_id_from(*parts: str) -> str:
    """A stable id for sources that have none (DRESS, VLSafe): a digest of what identifies the record."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
    return digest
