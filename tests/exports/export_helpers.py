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
