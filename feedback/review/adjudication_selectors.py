"""Reads for adjudication: the queue of disagreeing samples and one sample's reviews side by side.

Each runs a fixed number of queries, whatever the queue or the sample holds. Diffs are the
review's (``diff.py``): each reviewer's version against the draft it started from, and against
the first reviewer's version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, QuerySet

from feedback.drafting.models import CallStatus, Draft
from feedback.models import Project, Sample, Turn

from ..selectors import scores_in_rubric_order
from .diff import Segments, score_changes, word_diff
from .disagreement import reviews_by_turn
from .models import Adjudication, AdjudicationCase, Revision

QUEUE_STATES = ("pending", "settled", "all")
QUEUE_MAX = 200  # rows of one page of the queue


@dataclass
class VersionDiff:
    """What one version changes against another: word diffs and (criterion, before, after) scores."""

    critique: Segments
    refinement: Segments
    scores: list[tuple[str, object, object]]


@dataclass
class ReviewVersion:
    revision: Revision
    scores: list[tuple[str, int]]  # in the rubric's order, missing ones as None
    against_draft: VersionDiff | None
    against_first: VersionDiff | None  # None for the first review itself
    all_scores: list[tuple[str, object]] = field(default_factory=list)  # every criterion, None if not given


@dataclass
class TurnAdjudication:
    turn: Turn
    draft: Draft | None
    reviews: list[ReviewVersion]
    reasons: list[str]  # why the reviews disagree (empty: they agree on this turn)
    adjudication: Adjudication | None
    criteria: list[str] = field(default_factory=list)

    @property
    def first(self) -> ReviewVersion | None:
        return self.reviews[0] if self.reviews else None


@dataclass
class AdjudicationPage:
    case: AdjudicationCase
    sample: Sample
    turns: list[TurnAdjudication]

    @property
    def settled(self) -> bool:
        return self.case.settled_at is not None


def adjudication_queue(project: Project, *, state: str = "pending", limit: int = QUEUE_MAX) -> QuerySet:
    """The project's cases, oldest first; ``state`` pending (not settled), settled or all."""
    cases = AdjudicationCase.objects.filter(project=project).select_related("sample")
    if state == "pending":
        cases = cases.filter(settled_at__isnull=True)
    elif state == "settled":
        cases = cases.filter(settled_at__isnull=False).order_by("-settled_at", "-id")
    return cases.annotate(adjudicated=Count("adjudications"))[:limit]


def queue_counts(project: Project) -> dict[str, int]:
    cases = AdjudicationCase.objects.filter(project=project)
    pending = cases.filter(settled_at__isnull=True).count()
    return {"pending": pending, "settled": cases.count() - pending}


def _diff(before, after: Revision, criteria: list[str]) -> VersionDiff:
    return VersionDiff(
        critique=word_diff(before.critique or "", after.critique),
        refinement=word_diff(before.refinement or "", after.refinement),
        scores=score_changes(dict(before.scores or {}), dict(after.scores or {}), criteria),
    )


def adjudication_page(project: Project, case: AdjudicationCase) -> AdjudicationPage:
    """Per answered turn of the case's sample: the latest draft, each submitted review's version
    with its diffs, why they disagree, and the adjudication once saved."""
    sample = Sample.objects.select_related("image").get(pk=case.sample_id)
    drafts = Draft.objects.exclude(status=CallStatus.FAILED).order_by("created_at", "id")
    turns = list(
        Turn.objects.filter(sample=sample, model_response__isnull=False)
        .order_by("index")
        .prefetch_related(Prefetch("drafts", queryset=drafts, to_attr="ok_drafts"))
    )
    reviews = reviews_by_turn(sample.pk)
    settled = {a.turn_id: a for a in Adjudication.objects.filter(case=case).select_related("adjudicator", "revision")}
    criteria = list(project.criteria)
    views = []
    for turn in turns:
        by_id = {d.pk: d for d in turn.ok_drafts}
        latest = turn.ok_drafts[-1] if turn.ok_drafts else None
        versions: list[ReviewVersion] = []
        first: Revision | None = None
        for revision in reviews.get(turn.pk, []):
            started = by_id.get(revision.draft_id or 0)
            versions.append(
                ReviewVersion(
                    revision=revision,
                    scores=scores_in_rubric_order(revision.scores, criteria),
                    against_draft=_diff(started, revision, criteria) if started is not None else None,
                    against_first=_diff(first, revision, criteria) if first is not None else None,
                    all_scores=[(name, (revision.scores or {}).get(name)) for name in criteria],
                )
            )
            first = first or revision
        views.append(
            TurnAdjudication(
                turn=turn,
                draft=latest,
                reviews=versions,
                reasons=list(case.turns.get(str(turn.pk), [])),
                adjudication=settled.get(turn.pk),
                criteria=criteria,
            )
        )
    return AdjudicationPage(case=case, sample=sample, turns=views)
