"""Keeping the summary tables (``quality.models``) current: one revision at a time, as reviewers
save, and whole projects at once (``quality_rebuild``, the data migration)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, Count, F, IntegerField, Value, When

from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.models import Project, Sample
from feedback.review.models import Assignment, AssignmentState, Revision

from . import cube, stats
from .models import ReviewedScore, ReviewedTurn, Source

BATCH = 2000
# The columns a score row copies from its turn row.
COPIED = (
    "project_id",
    "sample_id",
    "turn_id",
    "assignment_id",
    "reviewer_id",
    "submitted",
    "shared",
    "decision",
    "prompt_version",
    "draft_model",
    "import_batch_id",
    "responder_model",
    "responder_source",
    "created_at",
)


def week_of(moment: datetime | None) -> date | None:
    """The Monday (UTC) of the week of ``moment``."""
    if moment is None:
        return None
    day = moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    return day - timedelta(days=day.weekday())


def score_of(value: Any) -> int | None:
    """A score as a whole number; None for anything else (missing, blank, not a number)."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if -32768 <= number <= 32767 else None


def distance(text: str, drafted: str | None) -> float | None:
    """Normalised word edit distance of a final text to its draft's (None without a draft)."""
    if drafted is None:
        return None
    if text == drafted:
        return 0.0
    return float(stats.word_edit_distance(drafted, text))


@dataclass
class Chain:
    """What a row is made of: the latest revision of an (assignment, turn) chain and its context."""

    revision_id: int
    assignment_id: int
    turn_id: int
    turn_index: int
    sample_id: int
    project_id: int
    reviewer_id: int
    submitted: bool
    shared: bool
    decision: str
    critique: str
    refinement: str
    scores: dict
    created_at: Any
    time_spent_ms: int
    draft_id: int | None
    draft_critique: str | None
    draft_refinement: str | None
    draft_scores: dict | None
    draft_model: str
    prompt_version: str
    import_batch_id: int | None
    responder_model: str
    responder_source: str
    next_scores: dict = field(default_factory=dict)

    def finals(self, criteria: Iterable[str]) -> dict[str, int | None]:
        scores = self.scores if isinstance(self.scores, dict) else {}
        return {c: score_of(scores.get(c)) for c in criteria}

    def row(self) -> ReviewedTurn:
        return ReviewedTurn(
            project_id=self.project_id,
            sample_id=self.sample_id,
            turn_id=self.turn_id,
            turn_index=self.turn_index,
            assignment_id=self.assignment_id,
            revision_id=self.revision_id,
            reviewer_id=self.reviewer_id,
            submitted=self.submitted,
            shared=self.shared,
            decision=self.decision,
            draft_id=self.draft_id,
            prompt_version=self.prompt_version,
            draft_model=self.draft_model,
            import_batch_id=self.import_batch_id,
            responder_model=self.responder_model,
            responder_source=self.responder_source,
            created_at=self.created_at,
            time_spent_ms=self.time_spent_ms,
            critique_distance=distance(self.critique or "", self.draft_critique),
            refinement_distance=distance(self.refinement or "", self.draft_refinement),
        )

    def score_rows(self, row: ReviewedTurn, criteria: Iterable[str]) -> list[ReviewedScore]:
        drafted = self.draft_scores if isinstance(self.draft_scores, dict) else {}
        finals = self.finals(criteria)
        copied = {name: getattr(row, name) for name in COPIED}
        copied["week"] = week_of(row.created_at)
        return [
            ReviewedScore(
                row=row,
                criterion=c,
                draft_score=score_of(drafted.get(c)) if self.draft_id else None,
                final_score=finals[c],
                next_score=self.next_scores.get(c),
                **copied,
            )
            for c in criteria
        ]


def responder(sample: Sample, generation_model: str | None) -> tuple[str, str]:
    """The model under study that wrote the turn's response, and how we know."""
    if generation_model:
        return generation_model, Source.GENERATED
    return sample.source_model or "", Source.IMPORTED


# --------------------------------------------------------------------------------------------
# One revision at a time (the receivers)


def revision_saved(revision: Revision) -> None:
    """Rewrites the row of the revision's chain (the revision is its latest) and the next-turn
    scores linking it to the reviewer's rows of the turns before and after it.

    The turn and the draft are the revision's own (already loaded when saved by ``revision_create``);
    the assignment's state is read again, with its project and sample, in one query."""
    context = (
        Assignment.objects.filter(pk=revision.assignment_id)
        .values("state", "reviewer_id", "project_id", "sample_id", "project__criteria", "sample__source_model")
        .annotate(import_batch_id=F("sample__import_batch_id"))
        .get()
    )
    turn = revision.turn
    draft = revision.draft if revision.draft_id else None
    generated = (
        Generation.objects.filter(turn_id=turn.pk)
        .exclude(status=CallStatus.FAILED)
        .order_by("-created_at", "-id")
        .values_list("model", flat=True)
        .first()
    )
    submitted = context["state"] == AssignmentState.SUBMITTED
    shared = submitted and (
        Assignment.objects.filter(sample_id=context["sample_id"], state=AssignmentState.SUBMITTED, gold=False).count()
        >= 2
    )
    existing = (
        ReviewedTurn.objects.filter(assignment_id=revision.assignment_id, turn_id=turn.pk)
        .values("pk", "revision_id", "time_spent_ms")
        .first()
    )
    spent = revision.time_spent_ms or 0
    if existing and existing["revision_id"] != revision.pk:
        spent += existing["time_spent_ms"]
    model, source = responder(Sample(source_model=context["sample__source_model"] or ""), generated)
    criteria = list(context["project__criteria"])
    chain = Chain(
        revision_id=revision.pk,
        assignment_id=revision.assignment_id,
        turn_id=turn.pk,
        turn_index=turn.index,
        sample_id=context["sample_id"],
        project_id=context["project_id"],
        reviewer_id=context["reviewer_id"],
        submitted=submitted,
        shared=shared,
        decision=revision.decision,
        critique=revision.critique,
        refinement=revision.refinement,
        scores=revision.scores,
        created_at=revision.created_at,
        time_spent_ms=spent,
        draft_id=draft.pk if draft else None,
        draft_critique=draft.critique if draft else None,
        draft_refinement=draft.refinement if draft else None,
        draft_scores=draft.scores if draft else None,
        draft_model=draft.model if draft else "",
        prompt_version=draft.prompt_version if draft else "",
        import_batch_id=context["import_batch_id"],
        responder_model=model,
        responder_source=source,
    )
    mine = ReviewedScore.objects.filter(assignment_id=revision.assignment_id)
    following = mine.filter(row__turn_index=turn.index + 1, final_score__isnull=False)
    chain.next_scores = dict(following.values_list("criterion", "final_score"))
    row = chain.row()
    finals = chain.finals(criteria)
    with transaction.atomic():
        cube.lock(chain.project_id)
        # The rows this save changes: its own (rewritten) and the one of the turn before (its
        # next-turn scores); their cells out before, back in after.
        before = list(
            ReviewedTurn.objects.filter(assignment_id=revision.assignment_id, turn_index=turn.index - 1).values_list(
                "pk", flat=True
            )
        )
        delta = cube.Delta(chain.project_id).rows([*before, *([existing["pk"]] if existing else [])], -1)
        if existing:
            row.pk = existing["pk"]
            mine.filter(row_id=row.pk).delete()
            row.save(force_update=True)
        else:
            row.save(force_insert=True)
        ReviewedScore.objects.bulk_create(chain.score_rows(row, criteria))
        given = [When(criterion=c, then=Value(s)) for c, s in finals.items() if s is not None]
        # A CASE of NULLs alone would be text to PostgreSQL: no score at all is a plain NULL.
        linked = Case(*given, default=None, output_field=IntegerField()) if given else None
        mine.filter(row__turn_index=turn.index - 1).update(next_score=linked)
        delta.rows([*before, row.pk], 1).apply()


def assignment_saved(assignment_id: int, sample_id: int, state: str, project_id: int) -> None:
    """Counts an assignment's rows in the figures exactly while it is submitted.

    A save that changes no row (a claim, an expiry of an assignment without rows) takes no lock."""
    submitted = state == AssignmentState.SUBMITTED
    flipping = ReviewedTurn.objects.filter(assignment_id=assignment_id).exclude(submitted=submitted)
    shared = _shared(sample_id)
    if not flipping.exists() and not ReviewedTurn.objects.filter(sample_id=sample_id).exclude(shared=shared).exists():
        return
    with transaction.atomic():
        cube.lock(project_id)
        ids = list(flipping.values_list("pk", flat=True))
        delta = cube.Delta(project_id).rows(ids, -1)
        ReviewedTurn.objects.filter(pk__in=ids).update(submitted=submitted)
        ReviewedScore.objects.filter(row_id__in=ids).update(submitted=submitted)
        delta.rows(ids, 1).apply()
        sync_shared(sample_id)


def _shared(sample_id: int) -> bool:
    return Assignment.objects.filter(sample_id=sample_id, state=AssignmentState.SUBMITTED, gold=False).count() >= 2


def sync_shared(sample_id: int) -> None:
    """Marks the sample's rows as shared (reviewed by two or more) when it has two submitted reviews.
    (Not a dimension of the cube: the reviewer figures read the shared rows themselves.)"""
    shared = _shared(sample_id)
    ReviewedTurn.objects.filter(sample_id=sample_id).exclude(shared=shared).update(shared=shared)
    ReviewedScore.objects.filter(sample_id=sample_id).exclude(shared=shared).update(shared=shared)


# --------------------------------------------------------------------------------------------
# Whole projects (quality_rebuild, the data migration)

CHAIN_FIELDS = (
    "id",
    "assignment_id",
    "turn_id",
    "version",
    "decision",
    "critique",
    "refinement",
    "scores",
    "created_at",
    "time_spent_ms",
    "draft_id",
    "turn__index",
    "turn__sample_id",
    "turn__sample__source_model",
    "turn__sample__import_batch_id",
    "assignment__project_id",
    "assignment__reviewer_id",
    "assignment__state",
)


def _chains(project: Project, generated: dict[int, str], shared: set[int]) -> Iterator[list[Chain]]:
    """The project's chains, one assignment's at a time (each list: one assignment's turns)."""
    revisions = (
        Revision.objects.filter(assignment__project=project, assignment__gold=False)
        .order_by("assignment_id", "turn_id", "-version")
        .values(*CHAIN_FIELDS)
    )
    group: list[Chain] = []
    current: tuple[int, int] | None = None
    spent = 0
    latest: dict | None = None

    def close() -> Chain | None:
        if latest is None:
            return None
        sample = Sample(source_model=latest["turn__sample__source_model"] or "")
        model, source = responder(sample, generated.get(latest["turn_id"]))
        return Chain(
            revision_id=latest["id"],
            assignment_id=latest["assignment_id"],
            turn_id=latest["turn_id"],
            turn_index=latest["turn__index"],
            sample_id=latest["turn__sample_id"],
            project_id=latest["assignment__project_id"],
            reviewer_id=latest["assignment__reviewer_id"],
            submitted=latest["assignment__state"] == AssignmentState.SUBMITTED,
            shared=latest["turn__sample_id"] in shared,
            decision=latest["decision"],
            critique=latest["critique"],
            refinement=latest["refinement"],
            scores=latest["scores"],
            created_at=latest["created_at"],
            time_spent_ms=spent,
            draft_id=latest["draft_id"],
            draft_critique=None,
            draft_refinement=None,
            draft_scores=None,
            draft_model="",
            prompt_version="",
            import_batch_id=latest["turn__sample__import_batch_id"],
            responder_model=model,
            responder_source=source,
        )

    for values in revisions.iterator(chunk_size=BATCH):
        key = (values["assignment_id"], values["turn_id"])
        if key != current:
            chain = close()
            if chain is not None:
                if group and group[0].assignment_id != chain.assignment_id:
                    yield group
                    group = []
                group.append(chain)
            current, latest, spent = key, values, 0
        spent += values["time_spent_ms"] or 0
    chain = close()
    if chain is not None:
        if group and group[0].assignment_id != chain.assignment_id:
            yield group
            group = []
        group.append(chain)
    if group:
        yield group


def _with_drafts(chains: list[Chain]) -> None:
    ids = {c.draft_id for c in chains if c.draft_id}
    drafts = {
        d["id"]: d
        for d in Draft.objects.filter(pk__in=ids).values(
            "id", "critique", "refinement", "scores", "model", "prompt_version"
        )
    }
    for chain in chains:
        draft = drafts.get(chain.draft_id) if chain.draft_id else None
        if draft is None:
            chain.draft_id = None
            continue
        chain.draft_critique = draft["critique"]
        chain.draft_refinement = draft["refinement"]
        chain.draft_scores = draft["scores"]
        chain.draft_model = draft["model"]
        chain.prompt_version = draft["prompt_version"]


def _write(chains: list[Chain], criteria: list[str]) -> None:
    _with_drafts(chains)
    rows = ReviewedTurn.objects.bulk_create([chain.row() for chain in chains])
    ReviewedScore.objects.bulk_create(
        [score for chain, row in zip(chains, rows, strict=True) for score in chain.score_rows(row, criteria)],
        batch_size=BATCH,
    )


def rebuild_project(project: Project, progress=None) -> int:
    """Rebuilds the project's summary rows from its revisions; returns how many rows it holds."""
    criteria = list(project.criteria)
    generated = dict(
        Generation.objects.filter(turn__sample__project=project)
        .exclude(status=CallStatus.FAILED)
        .order_by("created_at", "id")
        .values_list("turn_id", "model")
    )
    shared = set(
        Assignment.objects.filter(project=project, state=AssignmentState.SUBMITTED, gold=False)
        .values("sample_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .values_list("sample_id", flat=True)
    )
    written = 0
    with transaction.atomic():
        cube.lock(project.pk)
        # Plain DELETEs: the rows' own deletion receiver (a cascade's) would recompute the cube,
        # which this does at the end anyway.
        with connection.cursor() as cursor:
            for model in (ReviewedScore, ReviewedTurn):
                cursor.execute(
                    f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE project_id = %s",  # noqa: S608
                    [project.pk],
                )
        pending: list[Chain] = []
        for group in _chains(project, generated, shared):
            by_index = {chain.turn_index: chain for chain in group}
            for chain in group:
                following = by_index.get(chain.turn_index + 1)
                if following is not None:
                    finals = following.finals(criteria)
                    chain.next_scores = {c: s for c, s in finals.items() if s is not None}
            pending.extend(group)
            if len(pending) >= BATCH:
                _write(pending, criteria)
                written += len(pending)
                pending = []
                if progress:
                    progress(written)
        if pending:
            _write(pending, criteria)
            written += len(pending)
            if progress:
                progress(written)
        cube.recompute(project.pk)
    return written


def rebuild(projects: Iterable[Project] | None = None, progress=None) -> dict[str, int]:
    """Rebuilds the given projects (all when None); returns rows per project slug."""
    chosen = Project.objects.order_by("pk") if projects is None else projects
    return {project.slug: rebuild_project(project, progress) for project in chosen}
