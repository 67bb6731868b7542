"""The quality figures a release carries in its manifest (``quality``) and its card (a short table).

They are the project's figures (``quality.figures.compute``: aggregate queries over the review
summary, a fixed number whatever the project's size) under the release's filters mapped onto the
quality filters: one criterion, one prompt version, the dates of the review. The release's other
filters have no counterpart there (several criteria or prompt versions, decisions, reviewers,
score ranges, leaving out imported or simulated feedback); the manifest names those it used in
``not_applied``, since with them the figures also count reviews the release leaves out.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from feedback.models import Project
from quality.figures import compute, markdown_table
from quality.filters import QualityFilters

from .filters import DECISIONS, ReleaseFilters

COVERS = (
    "The project's quality figures (only submitted reviews count) under the release's filters that "
    "the figures take, in `filters`; the release's filters in `not_applied` have no counterpart "
    "there, so the figures also count reviews this release leaves out."
)


def quality_filters(filters: ReleaseFilters) -> tuple[QualityFilters, list[str]]:
    """The release's filters as the quality figures' filters, and the names of the release's
    filters in use that they cannot take."""
    not_applied = []
    if len(filters.criteria) > 1:
        not_applied.append("criteria")
    if len(filters.prompt_versions) > 1:
        not_applied.append("prompt_versions")
    if set(filters.decisions) != set(DECISIONS):
        not_applied.append("decisions")
    not_applied += [name for name in ("reviewers", "score_ranges") if getattr(filters, name)]
    not_applied += [name for name in ("include_imported", "include_simulated") if not getattr(filters, name)]
    mapped = QualityFilters(
        criterion=filters.criteria[0] if len(filters.criteria) == 1 else None,
        prompt_version=filters.prompt_versions[0] if len(filters.prompt_versions) == 1 else None,
        since=date.fromisoformat(filters.date_from) if filters.date_from else None,
        until=date.fromisoformat(filters.date_to) if filters.date_to else None,
    )
    return mapped, not_applied


def release_quality(project: Project, filters: ReleaseFilters) -> dict[str, Any]:
    """The manifest's ``quality``: what the figures cover, and the figures."""
    mapped, not_applied = quality_filters(filters)
    return {
        "covers": COVERS,
        "filters": mapped.as_json(),
        "not_applied": not_applied,
        "figures": compute(project, mapped),
    }


def card_section(quality: dict[str, Any]) -> str:
    """The card's Quality section: what the figures cover and their short table."""
    applied = {name: value for name, value in quality["filters"].items() if value is not None}
    scope = (
        "the project's figures under " + ", ".join(f"{name} {value}" for name, value in applied.items())
        if applied
        else "the project's figures"
    )
    not_applied = (
        f" The release's filters {', '.join(quality['not_applied'])} have no counterpart in the figures, "
        "which also count reviews this release leaves out."
        if quality["not_applied"]
        else ""
    )
    return (
        "## Quality\n\n"
        f"How the LLM drafts compare with the human finals, how reviewers agree and how the models under "
        f"study score: {scope} (only submitted reviews count).{not_applied}\n\n"
        + markdown_table(quality["figures"])
        + "\n`manifest.json` holds every figure under `quality`, with its confidence interval and *n*.\n\n"
    )
