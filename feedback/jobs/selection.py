"""Which turns a job covers: the admin's filter, validated, and the query it stands for."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from feedback.models import CallStatus, Draft, Generation, ImportBatch, Project, Sample, Turn

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
        raise ValueError(f"{sorted(unknown)[0]}: not a selection field")
    criterion = (data.get("criterion") or "").strip()
    if criterion and criterion not in project.criteria:
        raise ValueError(f"criterion: {criterion!r} is not one of {', '.join(project.criteria)}")
    status = data.get("status") or "never"
    if status not in STATUSES:
        raise ValueError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    batch = data.get("import_batch")
    if batch in ("", None):
        batch = None
    else:
        try:
            batch = int(str(batch))
        except (TypeError, ValueError):
            raise ValueError(f"import_batch: {batch!r} is not a number") from None
        if not ImportBatch.objects.filter(pk=batch, project=project).exists():
            raise ValueError(f"import_batch: no import {batch} in this project")
    ids = data.get("sample_ids") or []
    if isinstance(ids, str):
        ids = [part for part in ids.replace(",", " ").split() if part]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("sample_ids: expected a list of sample ids")
    limit = data.get("limit")
    if limit in ("", None):
        limit = None
    else:
        try:
            limit = int(str(limit))
        except (TypeError, ValueError):
            raise ValueError(f"limit: {limit!r} is not a number") from None
        if limit < 1:
            raise ValueError("limit: must be at least 1")
    return Selection(criterion=criterion, status=status, import_batch=batch, sample_ids=ids, limit=limit)


def _samples(project: Project, selection: Selection) -> QuerySet[Sample]:
    samples = Sample.objects.filter(project=project)
    if selection.criterion:
        samples = samples.filter(target_criterion=selection.criterion)
    if selection.import_batch is not None:
        samples = samples.filter(import_batch_id=selection.import_batch)
    if selection.sample_ids:
        samples = samples.filter(external_id__in=selection.sample_ids)
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
