"""Reads for review: the review page of an assignment, a turn's history, progress and leases.

Each runs a fixed number of queries, whatever the sample holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from feedback.drafting.models import CallStatus, Draft
from feedback.models import Project, Turn

from ..selectors import scores_in_rubric_order
from .diff import Segments, draft_diff, revision_diff, score_changes
from .models import Assignment, QueueState, Revision, WorkingCopy


@dataclass
class HistoryEntry:
    revision: Revision
    critique_diff: list[tuple[str, str]]
    refinement_diff: list[tuple[str, str]]
    score_changes: list[tuple[str, object, object]]
    score_list: list[tuple[str, int]]


@dataclass
class TurnReview:
    turn: Turn
    draft: Draft | None
    draft_count: int
    chain: list[Revision]  # this assignment's revisions of the turn, oldest first
    working: WorkingCopy | None
    history: list[HistoryEntry] = field(default_factory=list)

    @property
    def reviewable(self) -> bool:
        return self.turn.model_response is not None

    @property
    def latest(self) -> Revision | None:
        return self.chain[-1] if self.chain else None

    @property
    def base_version(self) -> int:
        return self.latest.version if self.latest else 0

    @property
    def start(self) -> dict:
        """What the editor opens with: unsaved typing, else the latest revision, else the draft."""
        if self.working is not None:
            return {**self.baseline, **self.working.fields}
        return self.baseline

    @property
    def baseline(self) -> dict:
        source = self.latest or self.draft
        if source is None:
            return {"critique": "", "refinement": "", "scores": {}, "reason": ""}
        return {
            "critique": source.critique,
            "refinement": source.refinement,
            "scores": dict(source.scores),
            "reason": getattr(source, "reason", ""),
        }


@dataclass
class ReviewPage:
    assignment: Assignment
    turns: list[TurnReview]
    can_see_all: bool


@dataclass
class SavedCopy:
    copy: WorkingCopy
    diff: dict


def latest_draft(turn: Turn) -> Draft | None:
    return turn.drafts.exclude(status=CallStatus.FAILED).order_by("-created_at", "-id").first()


def working_diff(turn: Turn, fields: dict, project: Project) -> dict:
    """The live diff of typing on a turn against its latest draft (see ``diff.draft_diff``)."""
    return draft_diff(latest_draft(turn), fields, project.criteria)


def live_diff(view: TurnReview, criteria: list[str]) -> dict | None:
    """The review page's first live diff of a turn: what it opens with against its draft; None when the
    two are the same (nothing to show, nothing computed) or the turn has no draft. A first revision's
    stored diff is that diff already; unsaved typing, or a later revision, is diffed here (bounded)."""
    if view.draft is None:
        return None
    start = view.start
    draft = view.draft
    unchanged = (
        (start.get("critique") or "") == draft.critique
        and (start.get("refinement") or "") == draft.refinement
        and not score_changes(dict(draft.scores), start.get("scores") or {}, criteria)
    )
    if unchanged:
        return None
    latest = view.latest
    if (
        view.working is None
        and latest is not None
        and latest.version == 1
        and latest.draft_id == draft.pk
        and latest.diff
    ):
        # The first revision's stored diff is against this very draft: read, not computed again.
        changes = score_changes(dict(draft.scores), start.get("scores") or {}, criteria)
        return {**latest.diff, "scores": [list(change) for change in changes]}
    return draft_diff(draft, start, criteria)


def assignment_for_page(project: Project, pk: int) -> Assignment:
    return Assignment.objects.select_related("sample__image__reference", "reviewer", "project").get(
        project=project, pk=pk
    )


def review_page(assignment: Assignment, *, can_see_all: bool) -> ReviewPage:
    """The sample's turns with their latest draft, this review's chain, unsaved typing and history.

    ``can_see_all`` (admins) widens the history to every reviewer's revisions of the sample;
    reviewers see their own review only, so that independent reviews stay independent.
    """
    project = assignment.project
    drafts = Draft.objects.exclude(status=CallStatus.FAILED).order_by("created_at", "id")
    revisions = Revision.objects.select_related("author").order_by("assignment_id", "version")
    if not can_see_all:
        revisions = revisions.filter(assignment=assignment)
    turns = list(
        Turn.objects.filter(sample_id=assignment.sample_id)
        .order_by("index")
        .prefetch_related(
            Prefetch("drafts", queryset=drafts, to_attr="ok_drafts"),
            Prefetch("revisions", queryset=revisions, to_attr="visible_revisions"),
        )
    )
    working = {w.turn_id: w for w in WorkingCopy.objects.filter(assignment=assignment)}
    views = []
    for turn in turns:
        ok_drafts = turn.ok_drafts
        visible = turn.visible_revisions
        draft = ok_drafts[-1] if ok_drafts else None
        view = TurnReview(
            turn=turn,
            draft=draft,
            draft_count=len(ok_drafts),
            chain=[r for r in visible if r.assignment_id == assignment.pk],
            working=working.get(turn.pk),
        )
        view.history = history_of(visible, {d.pk: d for d in ok_drafts}, project.criteria)
        views.append(view)
    return ReviewPage(assignment=assignment, turns=views, can_see_all=can_see_all)


def history_of(revisions: list[Revision], drafts: dict[int, Draft], criteria: list[str]) -> list[HistoryEntry]:
    """Each revision against the one before it in its chain (the first against its draft).

    The word diffs are the ones stored on the revisions when they were saved; a revision without one
    (written around ``revision_create``) gets it computed here, once, and stored.
    """
    entries = []
    previous: dict[int, Revision] = {}
    for revision in revisions:
        before = previous.get(revision.assignment_id) or drafts.get(revision.draft_id or 0)
        diff = revision.diff if revision.diff is not None else _store_diff(revision, before)
        entries.append(
            HistoryEntry(
                revision=revision,
                critique_diff=_segments(diff, "critique"),
                refinement_diff=_segments(diff, "refinement"),
                score_changes=score_changes(before.scores if before else {}, revision.scores, criteria),
                score_list=scores_in_rubric_order(revision.scores, criteria),
            )
        )
        previous[revision.assignment_id] = revision
    return entries


def _segments(diff: dict, name: str) -> Segments:
    return [(op, text) for op, text in diff.get(name, [])]


def _store_diff(revision: Revision, before: Revision | Draft | None) -> dict:
    revision.diff = revision_diff(before, critique=revision.critique, refinement=revision.refinement)
    Revision.objects.filter(pk=revision.pk, diff__isnull=True).update(diff=revision.diff)
    return revision.diff


def turn_history(project: Project, turn_id: int, *, reviewer=None) -> list[HistoryEntry]:
    """A turn's revisions with diffs; only the given reviewer's when one is given."""
    turn = Turn.objects.get(pk=turn_id, sample__project=project)
    revisions = Revision.objects.filter(turn=turn).select_related("author").order_by("assignment_id", "version")
    if reviewer is not None:
        revisions = revisions.filter(assignment__reviewer=reviewer)
    drafts = {d.pk: d for d in Draft.objects.filter(turn=turn).exclude(status=CallStatus.FAILED)}
    return history_of(list(revisions), drafts, project.criteria)


def review_progress(project: Project, reviewer) -> dict[str, int]:
    """This reviewer's reviews today and the project's reviewed / total samples."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Assignment.objects.filter(
        project=project, reviewer=reviewer, state=Assignment.State.SUBMITTED, finished_at__gte=today
    ).count()
    # Kept by triggers on the queue items: counting them here took most of the page's database time.
    total, reviewed = QueueState.objects.filter(project=project).values_list("items", "closed").first() or (0, 0)
    return {"mine_today": mine, "total": total, "reviewed": reviewed}


def active_leases(project: Project) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(project=project, state=Assignment.State.LEASED)
        .select_related("reviewer", "sample")
        .order_by("expires_at")
    )
