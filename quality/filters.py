"""The filters of the quality figures, parsed from query parameters (API, page) or options (command).

Every value is bounded and every key known: a misspelt filter is an error naming it, not a filter
silently ignored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from feedback.errors import InvalidInput

# Longest value accepted for a text filter: the longest of the columns it is compared with
# (a drafting or responder model name, 200 characters).
TEXT_MAX = 200
# Query parameters a client may send besides the filters (DRF's format override).
IGNORED_KEYS = frozenset({"format"})
# The import filter's query key (``import`` is a keyword in Python).
KEYS = {
    "criterion": "criterion",
    "prompt_version": "prompt_version",
    "model": "model",
    "import": "import_id",
    "since": "since",
    "until": "until",
}


@dataclass(frozen=True)
class QualityFilters:
    """criterion: one of the project's; prompt_version: of the drafts; model: a drafting model or
    a responder model (a row matches either); import_id: the import batch of the samples; since,
    until: days, inclusive, of the review's latest save (UTC)."""

    criterion: str | None = None
    prompt_version: str | None = None
    model: str | None = None
    import_id: int | None = None
    since: date | None = None
    until: date | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any], *, criteria: list[str] | None = None) -> QualityFilters:
        """From query parameters (a QueryDict or a dict of strings). ``criteria``: the project's,
        to refuse an unknown criterion."""
        errors: dict[str, list[str]] = {}
        stray = sorted(str(k) for k in params if k not in KEYS and k not in IGNORED_KEYS)
        for key in stray[:5]:
            errors[key[:40]] = [f"Unknown filter; the filters are {', '.join(KEYS)}."]
        values: dict[str, Any] = {}
        for key, name in KEYS.items():
            raw = _one(params, key, errors)
            if raw is None or raw == "":
                continue
            if len(raw) > TEXT_MAX:
                errors[key] = [f"At most {TEXT_MAX} characters (got {len(raw):,})."]
                continue
            if not raw.isprintable():
                errors[key] = ["No control characters."]
                continue
            if name == "import_id":
                if not raw.isdigit() or len(raw) > 18:
                    errors[key] = [f"The id of an import (a whole number), not {raw[:40]!r}."]
                    continue
                values[name] = int(raw)
            elif name in ("since", "until"):
                try:
                    values[name] = date.fromisoformat(raw)
                except ValueError:
                    errors[key] = [f"A day as YYYY-MM-DD, not {raw[:40]!r}."]
            else:
                values[name] = raw
        if criteria is not None and values.get("criterion") and values["criterion"] not in criteria:
            errors["criterion"] = [f"Not a criterion of this project; one of {', '.join(criteria)}."]
        if "since" in values and "until" in values and values["since"] > values["until"]:
            errors["until"] = ["On or after since."]
        if errors:
            raise InvalidInput.of(errors)
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        """The filters as the figures JSON states them (dates as YYYY-MM-DD, the import as ``import``)."""
        data = asdict(self)
        return {
            "criterion": data["criterion"],
            "prompt_version": data["prompt_version"],
            "model": data["model"],
            "import": data["import_id"],
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def _one(params: Mapping[str, Any], key: str, errors: dict[str, list[str]]) -> str | None:
    if key not in params:
        return None
    if hasattr(params, "getlist"):
        values = params.getlist(key)
        if len(values) > 1:
            errors[key] = ["Give this filter once."]
            return None
        value = values[0] if values else None
    else:
        value = params[key]
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, str | int):
        errors[key] = ["A text value."]
        return None
    return str(value).strip()
