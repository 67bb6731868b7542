"""The read side of a release: a project's samples with everything a format may write, streamed
in chunks of samples so that memory does not grow with the project.

Each chunk costs a fixed number of queries (samples with their images, turns, revisions, drafts,
imported feedback, flags, adjudications), read as plain values rather than model instances. A turn's
**final** feedback is its adjudication when reviews that disagreed were settled; else the latest
revision of a submitted, unflagged review; failing that, the feedback that came with an imported
dataset. The draft shown beside it is the one the final revision started
from, or else the turn's latest successful draft. A turn whose reviews disagree and wait for an
adjudicator has no final (it is not released) until the adjudication is saved. Gold samples are
never read (``released_samples``), nor anyone's gold check of a sample.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet, TextField
from django.db.models.functions import Cast

from feedback.drafting.models import CallStatus, Draft
from feedback.models import ImportedFeedback, Project, Sample, Turn
from feedback.review.models import Adjudication, AdjudicationCase, Assignment, GoldSample, Revision

CHUNK_SIZE = 1000
IMPORTED = "imported"  # the decision of feedback that came with the dataset, reviewed by nobody


@dataclass(frozen=True)
class ImageInfo:
    file_name: str
    file: str  # storage name under MEDIA_ROOT, empty while the file is missing
    sha256: str
    width: int | None
    height: int | None
    format: str
    byte_size: int | None
    captions: list[str]
    object_boxes: list[dict]
    regions: list[dict]
    notes: str

    @property
    def caption(self) -> str:
        """The first caption: the one DRESS and VLSafe records carry."""
        return self.captions[0] if self.captions else ""


@dataclass(frozen=True)
class DraftInfo:
    id: int
    critique: str
    refinement: str
    scores: dict[str, int]
    overall: int | None
    model: str
    endpoint: str
    prompt_version: str
    prompt_hash: str
    simulated: bool
    status: str
    created_at: datetime


@dataclass(frozen=True)
class Feedback:
    """One version of a turn's feedback: a reviewer's revision, or what the dataset came with.

    Revisions hold one critique and refinement for all criteria; imported datasets hold one per
    criterion (``per_criterion``), with the rating exactly as the source wrote it.
    """

    decision: str  # accepted / edited / rejected, or "imported"
    critique: str
    refinement: str
    scores: dict[str, int]
    reviewer: str = ""
    reviewed_at: datetime | None = None
    reason: str = ""
    time_spent_ms: int = 0
    revision_id: int | None = None
    version: int | None = None
    draft_id: int | None = None
    per_criterion: dict[str, dict[str, Any]] = field(default_factory=dict)
    # On a review: the adjudicator kept this version (as it was or edited); on a final: it is the
    # adjudication's (``reviewer`` the adjudicator, ``revision_id`` the version kept).
    adjudicated: bool = False

    @property
    def imported(self) -> bool:
        return self.decision == IMPORTED

    def critique_for(self, criterion: str) -> str:
        own = self.per_criterion.get(criterion)
        return own["critique"] if own is not None else self.critique

    def refinement_for(self, criterion: str) -> str:
        own = self.per_criterion.get(criterion)
        return own["refinement"] if own is not None else self.refinement

    def rating_for(self, criterion: str) -> str:
        """The score as a string; an imported rating as its source spelled it."""
        own = self.per_criterion.get(criterion)
        if own is not None and own["rating_raw"]:
            return own["rating_raw"]
        score = self.scores.get(criterion)
        return "" if score is None else str(score)


@dataclass(frozen=True)
class Adjudicated:
    """How reviews that disagreed on a turn were settled."""

    adjudicator: str
    revision_id: int  # the reviewer's version kept
    edited: bool
    adjudicated_at: datetime


@dataclass
class ExportTurn:
    id: int
    index: int
    user: str
    model: str | None
    final: Feedback | None = None
    draft: DraftInfo | None = None
    reviews: list[Feedback] = field(default_factory=list)  # each reviewer's latest, oldest first
    adjudication: Adjudicated | None = None

    @property
    def answered(self) -> bool:
        return self.model is not None


@dataclass
class ExportSample:
    id: int
    external_id: str
    target_criterion: str
    reference_answer: str
    source_dataset: str
    source_model: str
    metadata: dict
    image: ImageInfo | None
    turns: list[ExportTurn]
    flags: list[str] = field(default_factory=list)
    split: str = ""
    # What the release's filters make of the sample, kept by ReleaseFilters once worked out.
    released: list[ExportTurn] | None = field(default=None, repr=False, compare=False)
    interaction: list[ExportTurn] | None = field(default=None, repr=False, compare=False)

    @property
    def split_key(self) -> str:
        """What the split rule hashes: the image, so that no image lands in two splits."""
        return self.image.file_name if self.image else f"sample:{self.external_id}"


SAMPLE_FIELDS = (
    "id",
    "external_id",
    "target_criterion",
    "reference_answer",
    "source_dataset",
    "source_model",
    "metadata",
    "image_id",
)
IMAGE_FIELDS = (
    "file_name",
    "file",
    "sha256",
    "width",
    "height",
    "format",
    "byte_size",
    "captions",
    "object_boxes",
    "regions",
    "notes",
)
DRAFT_FIELDS = (
    "id",
    "turn_id",
    "critique",
    "refinement",
    "scores",
    "overall",
    "model",
    "endpoint",
    "prompt_version",
    "prompt_hash",
    "simulated",
    "status",
    "created_at",
)


# JSON columns read as their text and decoded here: through the field, each value costs twice as
# much (a chunk holds about eight per sample).
JSON_FIELDS = frozenset({"metadata", "scores", *(f"image__{name}" for name in ("captions", "object_boxes", "regions"))})
_decode_json = json.JSONDecoder().raw_decode


def _json(text: str | None) -> Any:
    """What the JSONField would give for the column's text."""
    if text is None:
        return None
    try:
        value, end = _decode_json(text)  # the text as the database gives it: no space around it
        if end == len(text):
            return value
    except ValueError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _values(queryset: QuerySet, *names: str) -> Iterator[dict[str, Any]]:
    """``queryset.values(*names)``, with the JSON columns among them decoded here."""
    casts = {f"json_{i}": name for i, name in enumerate(names) if name in JSON_FIELDS}
    plain = [name for name in names if name not in JSON_FIELDS]
    expressions = {alias: Cast(name, output_field=TextField()) for alias, name in casts.items()}
    for row in queryset.values(*plain, **expressions):
        for alias, name in casts.items():
            row[name] = _json(row.pop(alias))
        yield row


def released_samples(project: Project) -> QuerySet[Sample]:
    """The project's samples a release may hold: not its gold samples (the hidden checks' answers),
    which are never released."""
    gold = GoldSample.objects.filter(sample=OuterRef("pk"), retired_at__isnull=True)
    return Sample.objects.filter(project=project).exclude(Exists(gold))


def samples_total(project: Project) -> int:
    return released_samples(project).count()


def sample_chunks(project: Project, *, chunk_size: int = CHUNK_SIZE) -> Iterator[list[ExportSample]]:
    """Every sample of the project in import order, ``chunk_size`` at a time, with all it holds."""
    last_id = 0
    while True:
        rows = list(
            _values(
                released_samples(project).filter(id__gt=last_id).order_by("id")[:chunk_size],
                *SAMPLE_FIELDS,
                *(f"image__{name}" for name in IMAGE_FIELDS),
            )
        )
        if not rows:
            return
        yield _assemble(project, rows)
        last_id = rows[-1]["id"]


def _assemble(project: Project, rows: list[dict]) -> list[ExportSample]:
    lo, hi = rows[0]["id"], rows[-1]["id"]
    # The chunk's samples are those of the project in [lo, hi]. The range is put on the rows'
    # own sample_id, where an index bounds it: put only on the joined sample (its project), it
    # led PostgreSQL to scan every sample of the project for each chunk.
    chunk = Sample.objects.filter(project=project, id__gte=lo, id__lte=hi).values("id")
    in_chunk = {"sample_id__gte": lo, "sample_id__lte": hi, "sample_id__in": chunk}
    by_turn = {"turn__sample_id__gte": lo, "turn__sample_id__lte": hi, "turn__sample_id__in": chunk}

    turns: dict[int, list[ExportTurn]] = defaultdict(list)
    turn_index: dict[int, ExportTurn] = {}
    for t in (
        Turn.objects.filter(**in_chunk)
        .order_by("sample_id", "index")
        .values("id", "sample_id", "index", "user_message", "model_response")
    ):
        turn = ExportTurn(id=t["id"], index=t["index"], user=t["user_message"], model=t["model_response"])
        turns[t["sample_id"]].append(turn)
        turn_index[turn.id] = turn

    drafts: dict[int, DraftInfo] = {}
    latest_draft: dict[int, DraftInfo] = {}
    for d in _values(
        Draft.objects.filter(**by_turn).exclude(status=CallStatus.FAILED).order_by("turn_id", "created_at", "id"),
        *DRAFT_FIELDS,
    ):
        turn_id = d.pop("turn_id")
        info = DraftInfo(**d)
        drafts[info.id] = info
        latest_draft[turn_id] = info  # ordered: the last one wins

    chains: dict[tuple[int, int], dict[str, Any]] = {}
    for r in _values(
        Revision.objects.filter(
            **by_turn, assignment__state=Assignment.State.SUBMITTED, assignment__flag="", assignment__gold=False
        ).order_by("turn_id", "assignment_id", "version"),
        "id",
        "turn_id",
        "assignment_id",
        "version",
        "decision",
        "critique",
        "refinement",
        "scores",
        "reason",
        "time_spent_ms",
        "draft_id",
        "created_at",
        "author__username",
    ):
        chains[(r["turn_id"], r["assignment_id"])] = dict(r)  # ordered by version: the chain's latest wins
    for rev in sorted(chains.values(), key=lambda row: (row["created_at"], row["id"])):
        turn = turn_index[rev["turn_id"]]
        turn.reviews.append(
            Feedback(
                decision=rev["decision"],
                critique=rev["critique"],
                refinement=rev["refinement"],
                scores=dict(rev["scores"] or {}),
                reviewer=rev["author__username"],
                reviewed_at=rev["created_at"],
                reason=rev["reason"],
                time_spent_ms=rev["time_spent_ms"],
                revision_id=rev["id"],
                version=rev["version"],
                draft_id=rev["draft_id"],
            )
        )

    settled: dict[int, dict[str, Any]] = {}
    for a in _values(
        Adjudication.objects.filter(**by_turn),
        "turn_id",
        "revision_id",
        "edited",
        "decision",
        "critique",
        "refinement",
        "scores",
        "reason",
        "created_at",
        "adjudicator__username",
        "revision__draft_id",
    ):
        settled[a["turn_id"]] = a

    imported: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for f in (
        ImportedFeedback.objects.filter(**by_turn)
        .order_by("turn_id", "criterion")
        .values("turn_id", "criterion", "score", "rating_raw", "critique", "refinement")
    ):
        imported[f["turn_id"]][f["criterion"]] = dict(f)

    flags: dict[int, list[str]] = defaultdict(list)
    for sample_id, flag in (
        Assignment.objects.filter(**in_chunk, state=Assignment.State.SUBMITTED, gold=False)
        .exclude(flag="")
        .order_by("sample_id", "id")
        .values_list("sample_id", "flag")
    ):
        flags[sample_id].append(flag)

    # Turns whose reviews disagree and wait for an adjudicator: no final until it is settled.
    pending: set[int] = set()
    for turns_of_case in AdjudicationCase.objects.filter(**in_chunk, settled_at__isnull=True).values_list(
        "turns", flat=True
    ):
        pending.update(int(turn_id) for turn_id in turns_of_case)

    for turn in turn_index.values():
        adjudication = settled.get(turn.id)
        if turn.id in pending and adjudication is None:
            turn.draft = latest_draft.get(turn.id)
        elif adjudication is not None and turn.reviews:
            _settle(turn, adjudication)
            started_from = turn.final.draft_id if turn.final else None
            turn.draft = drafts.get(started_from) if started_from else latest_draft.get(turn.id)
        elif turn.reviews:
            turn.final = turn.reviews[-1]
            started_from = turn.final.draft_id
            turn.draft = drafts.get(started_from) if started_from else latest_draft.get(turn.id)
        else:
            turn.draft = latest_draft.get(turn.id)
            if turn.id in imported:
                turn.final = _imported_feedback(project, imported[turn.id])

    return [
        ExportSample(
            id=row["id"],
            external_id=row["external_id"],
            target_criterion=row["target_criterion"],
            reference_answer=row["reference_answer"],
            source_dataset=row["source_dataset"],
            source_model=row["source_model"],
            metadata=row["metadata"] or {},
            image=_image(row),
            turns=turns.get(row["id"], []),
            flags=flags.get(row["id"], []),
        )
        for row in rows
    ]


def _settle(turn: ExportTurn, row: dict[str, Any]) -> None:
    """The adjudication becomes the turn's final; the reviewer's version it kept is marked."""
    kept = row["revision_id"]
    turn.reviews = [
        Feedback(**{**review.__dict__, "adjudicated": True}) if review.revision_id == kept else review
        for review in turn.reviews
    ]
    turn.adjudication = Adjudicated(
        adjudicator=row["adjudicator__username"],
        revision_id=kept,
        edited=row["edited"],
        adjudicated_at=row["created_at"],
    )
    turn.final = Feedback(
        decision=row["decision"],
        critique=row["critique"],
        refinement=row["refinement"],
        scores=dict(row["scores"] or {}),
        reviewer=row["adjudicator__username"],
        reviewed_at=row["created_at"],
        reason=row["reason"],
        revision_id=kept,
        draft_id=row["revision__draft_id"],
        adjudicated=True,
    )


def _image(row: dict) -> ImageInfo | None:
    if row["image_id"] is None:
        return None
    values = {name: row[f"image__{name}"] for name in IMAGE_FIELDS}
    for name in ("captions", "object_boxes", "regions"):
        values[name] = list(values[name] or [])
    values["file"] = str(values["file"] or "")
    return ImageInfo(**values)


def _imported_feedback(project: Project, by_criterion: dict[str, dict[str, Any]]) -> Feedback:
    """Feedback that came with the dataset, as one Feedback: its criteria in the rubric's order."""
    ordered = sorted(by_criterion, key=lambda c: (project.criteria.index(c) if c in project.criteria else 99, c))
    first = by_criterion[ordered[0]]
    return Feedback(
        decision=IMPORTED,
        critique=first["critique"],
        refinement=first["refinement"],
        scores={c: by_criterion[c]["score"] for c in ordered if by_criterion[c]["score"] is not None},
        per_criterion={
            c: {
                "critique": by_criterion[c]["critique"],
                "refinement": by_criterion[c]["refinement"],
                "rating_raw": by_criterion[c]["rating_raw"],
            }
            for c in ordered
        },
    )
