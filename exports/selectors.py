"""Reads about releases for the pages and the API, each in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch, QuerySet

from feedback.models import Project

from .models import Release, ReleaseFile

# What the list shows of a release's files: the data, not the manifest and card (the detail page has those).
META_FORMATS = ("manifest", "card")


def releases_of(project: Project) -> QuerySet[Release]:
    """The project's releases, newest first, with their creator and files (one query each)."""
    return (
        Release.objects.filter(project=project)
        .select_related("created_by")
        .prefetch_related(Prefetch("files", queryset=ReleaseFile.objects.order_by("path")))
    )


def release_of(project: Project, pk: int) -> Release:
    """One release of the project with its creator and files; Release.DoesNotExist otherwise."""
    return releases_of(project).get(pk=pk)


def release_progress(release: Release) -> dict[str, Any]:
    """What the live counters show; read from the row alone."""
    total = release.samples_total
    return {
        "id": release.pk,
        "state": release.state,
        "finished": release.finished,
        "samples_total": total,
        "samples_done": release.samples_done,
        "samples_released": release.samples_released,
        "percent": round(100 * release.samples_done / total) if total else (100 if release.finished else 0),
        "error": release.error,
        "started_at": release.started_at.isoformat() if release.started_at else None,
        "finished_at": release.finished_at.isoformat() if release.finished_at else None,
    }


def releases_progress(project: Project, ids: Iterable[int]) -> list[dict[str, Any]]:
    """The progress of some of the project's releases (the ones a page shows), in one query."""
    wanted = [int(i) for i in ids][:200]
    return [release_progress(r) for r in Release.objects.filter(project=project, pk__in=wanted).order_by("-pk")]


def data_files(release: Release) -> list[ReleaseFile]:
    """The release's data files (from the prefetched files)."""
    return [f for f in release.files.all() if f.format not in META_FORMATS]


def card_file(release: Release) -> ReleaseFile | None:
    return next((f for f in release.files.all() if f.format == "card"), None)
