"""Which turns a job covers: the admin's filter, validated, and the query it stands for."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.errors import InvalidInput
from feedback.models import EXTERNAL_ID_MAX, ImportBatch, Project, Sample, Turn

# Bounds on a job's selection: a list of sample ids is checked and stored with the job, so it is
# bounded like any other input; a limit past the number of turns any project holds means nothing.
MAX_SAMPLE_IDS = 100_000
MAX_LIMIT = 100_000_000
MAX_ID = 2**63 - 1

STATUSES = {
    "never": "never drafted",
    "failed": "drafting failed, no draft yet",
    "undrafted": "no draft yet (never drafted, or failed)",
    "all": "all",
}


@dataclass(frozen=True)
class Selection:
    criterion: str = ""
    status: str = "never"
    import_batch: int | None = None
    sample_ids: list[str] = field(default_factory=list)
    limit: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def selection_from(project: Project, data: dict[str, Any]) -> Selection:
    """A Selection from user input; a ValueError names the field that is wrong."""
    unknown = set(data) - set(Selection.__dataclass_fields__)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "not a selection field")
    criterion = data.get("criterion") or ""
    if not isinstance(criterion, str) or (criterion.strip() and criterion.strip() not in project.criteria):
        raise InvalidInput("criterion", f"{str(criterion)[:100]!r} is not one of {', '.join(project.criteria)}")
    criterion = criterion.strip()
    status = data.get("status") or "never"
    if not isinstance(status, str) or status not in STATUSES:
        raise InvalidInput("status", f"{str(status)[:50]!r} is not one of {', '.join(STATUSES)}")
    batch = whole_number("import_batch", data.get("import_batch"), low=1, high=MAX_ID)
    if batch is not None and not ImportBatch.objects.filter(pk=batch, project=project).exists():
        raise InvalidInput("import_batch", f"no import {batch} in this project")
    ids = data.get("sample_ids") or []
    if isinstance(ids, str):
        ids = [part for part in ids.replace(",", " ").split() if part]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput("sample_ids", "expected a list of sample ids")
    if len(ids) > MAX_SAMPLE_IDS:
        raise InvalidInput("sample_ids", f"at most {MAX_SAMPLE_IDS:,} ids (got {len(ids):,}); select by import instead")
    for position, sample_id in enumerate(ids):
        if not sample_id or len(sample_id) > EXTERNAL_ID_MAX:
            raise InvalidInput("sample_ids", f"id {position + 1} is empty or longer than {EXTERNAL_ID_MAX} characters")
    limit = whole_number("limit", data.get("limit"), low=1, high=MAX_LIMIT)
    return Selection(criterion=criterion, status=status, import_batch=batch, sample_ids=ids, limit=limit)


def whole_number(name: str, value: Any, *, low: int, high: int) -> int | None:
    """An optional whole number from user input within [low, high]; a ValueError names the field."""
    if value in ("", None):
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise InvalidInput(name, f"{value!r} is not a whole number")
    text = str(value).strip()
    if len(text) > 30:
        raise InvalidInput(name, f"must be from {low:,} to {high:,}")
    try:
        number = int(float(text)) if isinstance(value, float) else int(text)
    except (TypeError, ValueError):
        raise InvalidInput(name, f"{text!r} is not a whole number") from None
    if not low <= number <= high:
        raise InvalidInput(name, f"must be from {low:,} to {high:,}")
    return number


def _listed(ids: list[str]) -> RawSQL:
    """The ids as one query parameter, not one per id: SQLite allows 32,766 variables a statement,
    and a long IN list is slow to plan on PostgreSQL."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", (ids,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(ids),))


def _samples(project: Project, selection: Selection) -> QuerySet[Sample]:
    samples = Sample.objects.filter(project=project)
    if selection.criterion:
        samples = samples.filter(target_criterion=selection.criterion)
    if selection.import_batch is not None:
        samples = samples.filter(import_batch_id=selection.import_batch)
    if selection.sample_ids:
        samples = samples.filter(external_id__in=_listed(selection.sample_ids))
    return samples


def turns_to_draft(project: Project, selection: Selection) -> QuerySet[Turn]:
    """Turns with a response to review, in sample and turn order."""
    turns = Turn.objects.filter(sample__in=_samples(project, selection), model_response__isnull=False)
    succeeded = Exists(Draft.objects.filter(turn=OuterRef("pk")).exclude(status=CallStatus.FAILED))
    failed = Exists(Draft.objects.filter(turn=OuterRef("pk"), status=CallStatus.FAILED))
    if selection.status == "never":
        turns = turns.filter(~succeeded & ~failed)
    elif selection.status == "failed":
        turns = turns.filter(failed & ~succeeded)
    elif selection.status == "undrafted":
        turns = turns.filter(~succeeded)
    turns = turns.order_by("sample_id", "index")
    return turns[: selection.limit] if selection.limit else turns


def samples_to_respond(project: Project, selection: Selection) -> QuerySet[Sample]:
    """Samples whose DRESS loop a respond job advances: "never" and "undrafted" take those with a turn
    awaiting its response, "failed" those whose response generation failed, "all" every selected sample."""
    samples = _samples(project, selection)
    awaiting = Exists(Turn.objects.filter(sample=OuterRef("pk"), model_response__isnull=True))
    if selection.status in ("never", "undrafted"):
        samples = samples.filter(awaiting)
    elif selection.status == "failed":
        samples = samples.filter(
            awaiting, Exists(Generation.objects.filter(turn__sample=OuterRef("pk"), status=CallStatus.FAILED))
        )
    samples = samples.order_by("id")
    return samples[: selection.limit] if selection.limit else samples
