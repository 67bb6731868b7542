"""Reads: what a user may see, and the counts the pages show (a fixed number of queries each)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from feedback.drafting.models import CallStatus, Draft
from feedback.models import Image, ImportedFeedback, Project, Sample, Turn

from .errors import InvalidInput
from .permissions import is_platform_admin


def project_by_key(key: str) -> Project:
    query = Q(slug=key) | Q(name=key)
    if key.isdigit():
        query |= Q(pk=int(key))
    project = Project.objects.filter(query).first()
    if project is None:
        raise InvalidInput("project", f"no project with slug, name or id {key[:100]!r}")
    return project


def projects_for_user(user, *, archived: bool = False) -> QuerySet[Project]:
    """The projects ``user`` may see; archived ones only when asked (``archived``: those alone)."""
    projects = Project.objects.filter(archived_at__isnull=not archived)
    if not is_platform_admin(user):
        projects = projects.filter(memberships__user=user).distinct()
    return projects.annotate(sample_count=_count_of(Sample), image_count=_count_of(Image))


def _count_of(model) -> Coalesce:
    """A per-project count as a subquery: joining both tables at once would multiply rows."""
    per_project = model.objects.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Count("id"))
    return Coalesce(Subquery(per_project.values("n")), 0)


def project_counts(project: Project) -> dict[str, int]:
    samples = Sample.objects.filter(project=project).aggregate(
        samples=Count("id"),
        without_image=Count("id", filter=Q(image__isnull=True)),
        image_missing=Count("id", filter=Q(image__file="")),
    )
    images = Image.objects.filter(project=project).aggregate(
        images=Count("id"), images_missing=Count("id", filter=Q(file=""))
    )
    drafted = Exists(Draft.objects.filter(turn=OuterRef("pk")).exclude(status=CallStatus.FAILED))
    turns = Turn.objects.filter(sample__project=project).aggregate(
        turns=Count("id"),
        awaiting_response=Count("id", filter=Q(model_response__isnull=True)),
        drafted_turns=Count("id", filter=Q(drafted)),
    )
    feedback = ImportedFeedback.objects.filter(turn__sample__project=project).count()
    return {**samples, **images, **turns, "imported_feedback": feedback}


def sample_page_queryset(project: Project, *, criterion: str | None = None, missing_image: bool = False):
    samples = (
        Sample.objects.filter(project=project)
        .select_related("image")
        .annotate(turn_count=Count("turns"))
        .order_by("id")
    )
    if criterion is not None:
        samples = samples.filter(target_criterion=criterion)
    if missing_image:
        samples = samples.filter(Q(image__file="") | Q(image__isnull=True))
    return samples


def sample_detail(project: Project, pk: int) -> Sample:
    return (
        Sample.objects.select_related("image__reference", "import_batch")
        .prefetch_related("turns__imported_feedback", "turns__drafts", "turns__generations")
        .get(project=project, pk=pk)
    )


@dataclass(frozen=True)
class DraftView:
    """A draft as the sample page shows it: the row, and its scores in the rubric's order."""

    draft: Draft
    score_list: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class TurnView:
    turn: Turn
    drafts: tuple[DraftView, ...]


@dataclass(frozen=True)
class SamplePage:
    sample: Sample
    turns: tuple[TurnView, ...]


def sample_page(project: Project, pk: int) -> SamplePage:
    """The sample page's reads: the sample and, per turn, its drafts with their scores in rubric order."""
    sample = sample_detail(project, pk)
    turns = tuple(
        TurnView(
            turn=turn,
            drafts=tuple(
                DraftView(draft=d, score_list=tuple(scores_in_rubric_order(d.scores, project.criteria)))
                for d in turn.drafts.all()
            ),
        )
        for turn in sample.turns.all()
    )
    return SamplePage(sample=sample, turns=turns)


def scores_in_rubric_order(scores: dict, criteria: list[str]) -> list[tuple[str, int]]:
    """The project's criteria first, in its order (JSON columns may reorder keys), then any others."""
    ordered = [(name, scores[name]) for name in criteria if name in scores]
    return ordered + [(name, value) for name, value in scores.items() if name not in criteria]


def samples_by_criterion(project: Project) -> list[dict]:
    return list(
        Sample.objects.filter(project=project)
        .values("target_criterion")
        .annotate(count=Count("id"))
        .order_by("target_criterion")
    )
