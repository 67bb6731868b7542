"""Shared setup for the release tests: releases built in-process, and their files read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exports.models import Release
from exports.service import release_build, release_create, release_folder
from feedback.models import Project


def build(project: Project, formats: list[str], *, user=None, **options) -> Release:
    """A release created and built in this process (the worker's part called directly)."""
    release = release_create(project=project, user=user, formats=formats, enqueue=False, **options)
    built = release_build(release_id=release.pk)
    assert built is not None
    assert built.state == Release.State.COMPLETED, built.error
    return built


def folder(release: Release) -> Path:
    return release_folder(release)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream]


def file_rows(release: Release) -> dict[str, int]:
    return dict(release.files.values_list("path", "rows"))


def make_image_samples(project: Project, count: int, *, per_image: int = 1, **options) -> list:
    """``count`` drafted samples of their own images (``per_image`` samples share one)."""
    from feedback.models import Image
    from tests.feedback.review_helpers import make_drafted_samples

    samples = make_drafted_samples(project, count, **options)
    for i, sample in enumerate(samples):
        image, _ = Image.objects.get_or_create(
            project=project,
            file_name=f"img{i // per_image:05d}.jpg",
            defaults={"captions": [f"Picture {i // per_image}."], "width": 64, "height": 48},
        )
        sample.image = image
        sample.save(update_fields=["image"])
    return samples


def review_all(project: Project, reviewer, decide=None, *, limit: int | None = None) -> int:
    """Claims and decides every sample open to ``reviewer`` (``limit`` of them at most):
    ``decide(turn)`` gives each save's arguments; without it, each review is ``decide_all``'s
    (drafts accepted). The number of samples reviewed."""
    from feedback.models import Turn
    from feedback.review.claims import sample_claim
    from feedback.review.revisions import revision_create
    from tests.feedback.review_helpers import decide_all

    done = 0
    while (limit is None or done < limit) and (assignment := sample_claim(project=project, reviewer=reviewer)):
        if decide is None:
            decide_all(assignment)
        else:
            for turn in Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False).order_by(
                "index"
            ):
                revision_create(assignment=assignment, turn=turn, author=reviewer, base_version=0, **decide(turn))
        done += 1
    return done
