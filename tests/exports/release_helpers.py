"""Shared setup for the tests of the release pages, API, command and worker: reviewed samples
and the URLs of a release."""

from __future__ import annotations

import hashlib

from django.urls import reverse

from exports.models import Release
from feedback.models import Project, Role, Sample
from tests.conftest import make_user
from tests.exports.export_helpers import review_all
from tests.feedback.review_helpers import make_drafted_samples


def reviewed_samples(project: Project, count: int, *, reviewer=None, **options) -> list[Sample]:
    """``count`` drafted samples, each accepted by one reviewer (made when not given)."""
    samples = make_drafted_samples(project, count, **options)
    review_all(project, reviewer or make_user("reviewer", project=project, role=Role.ANNOTATOR))
    return samples


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def streamed(response) -> bytes:
    return b"".join(response.streaming_content)


def page_urls(release: Release, path: str = "manifest.json") -> dict[str, str]:
    slug, pk = release.project.slug, release.pk
    return {
        "list": reverse("exports:release-list", args=[slug]),
        "new": reverse("exports:release-new", args=[slug]),
        "detail": reverse("exports:release-detail", args=[slug, pk]),
        "file": reverse("exports:release-file", args=[slug, pk, path]),
    }


def api_urls(release: Release, path: str = "manifest.json") -> dict[str, str]:
    slug, pk = release.project.slug, release.pk
    return {
        "list": f"/api/projects/{slug}/releases/",
        "detail": f"/api/projects/{slug}/releases/{pk}/",
        "file": f"/api/projects/{slug}/releases/{pk}/files/{path}",
    }
