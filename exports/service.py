"""Releases: create one (validated, queued on the ``exports`` queue after commit) and build it.

The build streams the project's samples chunk by chunk through the chosen formats into a folder
of its own, written beside the final one and renamed into place when complete, then records
each file's rows, size and sha256, the manifest and the dataset card. A completed release is
never written again.
"""

from __future__ import annotations

import gc
import logging
import shutil
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.models import Project

from .card import card_text
from .filters import ReleaseFilters, filters_from
from .formats import FORMATS
from .formats.base import ExportContext, ReleaseSink, WrittenFile, file_digest, json_line
from .formats.rich import SCHEMA_VERSION
from .models import Release, ReleaseFile
from .records import ExportSample, sample_chunks, samples_total
from .splits import split_rule_from

log = logging.getLogger(__name__)

Progress = Callable[[Release], None]


def release_folder(release: Release) -> Path:
    return Path(settings.RELEASES_ROOT) / release.project.slug / str(release.pk)


def release_create(
    *,
    project: Project,
    user,
    formats: list[str],
    name: str = "",
    filters: dict | None = None,
    split: dict | None = None,
    include_images: bool = False,
    enqueue: bool = True,
) -> Release:
    """A queued release; its build starts on a worker once the transaction commits."""
    chosen = list(dict.fromkeys(formats or []))
    if not chosen:
        raise ValidationError({"formats": f"Choose at least one format ({', '.join(FORMATS)})."})
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise ValidationError({"formats": f"Unknown formats: {', '.join(unknown)} (one of {', '.join(FORMATS)})."})
    cleaned = filters_from(project, filters)
    rule = split_rule_from(split)
    release = Release.objects.create(
        project=project,
        name=(name or "").strip()[:200] or f"{project.name} release",
        formats=chosen,
        filters=cleaned.as_dict(),
        split=rule.as_dict(),
        include_images=bool(include_images),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    if enqueue:
        from .tasks import release_build_task

        transaction.on_commit(lambda: release_build_task.delay(release.pk))
    return release


def release_build(*, release_id: int, progress: Progress | None = None) -> Release | None:
    """Builds a queued release, or one whose worker was lost mid-way (it starts again from
    scratch). A finished release is left as it is."""
    with transaction.atomic():
        release = (
            Release.objects.select_for_update(of=("self",))
            .select_related("project", "created_by")
            .filter(pk=release_id, state__in=(Release.State.QUEUED, Release.State.RUNNING))
            .first()
        )
        if release is None:
            return None
        release.state = Release.State.RUNNING
        release.started_at = timezone.now()
        release.samples_total = samples_total(release.project)
        release.samples_done = release.samples_released = 0
        release.save(update_fields=["state", "started_at", "samples_total", "samples_done", "samples_released"])
    final = release_folder(release)
    partial = final.with_name(f".{final.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        written, counts = _write(release, partial, progress)
        manifest = _manifest(release, written, counts)
        written.append(_write_text(partial, "manifest.json", json_line(manifest), "manifest"))
        written.append(_write_text(partial, "README.md", card_text(release, manifest), "card"))
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
    except Exception as exc:
        shutil.rmtree(partial, ignore_errors=True)
        log.exception("release %s failed", release.pk)
        Release.objects.filter(pk=release.pk).update(
            state=Release.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        release.refresh_from_db()
        return release
    with transaction.atomic():
        ReleaseFile.objects.filter(release=release).delete()
        ReleaseFile.objects.bulk_create(
            ReleaseFile(
                release=release,
                path=f.path,
                format=f.format,
                split=f.split,
                rows=f.rows,
                byte_size=f.byte_size,
                sha256=f.sha256,
            )
            for f in written
        )
        release.manifest = manifest
        release.state = Release.State.COMPLETED
        release.finished_at = timezone.now()
        release.save(update_fields=["manifest", "state", "finished_at"])
    return release


def _write(release: Release, root: Path, progress: Progress | None) -> tuple[list[WrittenFile], dict]:
    project = release.project
    filters = filters_from(project, release.filters)
    rule = split_rule_from(release.split)
    root.mkdir(parents=True, exist_ok=True)
    sink = ReleaseSink(root, rule.names)
    ctx = ExportContext(
        project=project,
        filters=filters,
        criteria=filters.criteria_of(project),
        media_root=Path(settings.MEDIA_ROOT),
    )
    names = list(release.formats) + (["images"] if release.include_images and "images" not in release.formats else [])
    writers = [FORMATS[name].writer(sink, ctx) for name in names]
    counts = _Counts(ctx)
    with _fewer_collections():
        for chunk in sample_chunks(project):
            released = 0
            for sample in chunk:
                if not filters.sample_passes(sample) or not filters.released_turns(sample):
                    continue
                sample.split = rule.split_of(sample.split_key)
                for writer in writers:
                    writer.write(sample)
                counts.add(sample, filters)
                released += 1
            release.samples_done += len(chunk)
            release.samples_released += released
            Release.objects.filter(pk=release.pk).update(
                samples_done=release.samples_done, samples_released=release.samples_released
            )
            if progress:
                progress(release)
    for writer in writers:
        writer.close()
    return sink.close(), counts.as_dict()


# A build makes and drops some sixty objects per sample, a chunk at a time and none of them in
# cycles; at the collector's default threshold (700) it ran thousands of collections per 63,000
# samples, a third of the build's time. While any build runs, collections wait for this many.
GC_THRESHOLD = 100_000
_gc_lock = threading.Lock()
_gc_builds = 0
_gc_saved: tuple[int, ...] = ()


@contextmanager
def _fewer_collections() -> Iterator[None]:
    global _gc_builds, _gc_saved
    with _gc_lock:
        if _gc_builds == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
        _gc_builds += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_builds -= 1
            if _gc_builds == 0:
                gc.set_threshold(*_gc_saved)


class _Counts:
    """What the manifest and card count: samples and turns per split, turns per criterion and
    decision, the prompt versions and models behind the drafts."""

    def __init__(self, ctx: ExportContext):
        self.ctx = ctx
        self.samples: Counter[str] = Counter()
        self.turns: Counter[str] = Counter()
        self.decisions: Counter[str] = Counter()
        self.per_criterion: dict[str, Counter[str]] = defaultdict(Counter)
        self.prompts: dict[str, set[str]] = defaultdict(set)
        self.models: Counter[str] = Counter()
        self.simulated = 0

    def add(self, sample: ExportSample, filters: ReleaseFilters) -> None:
        self.samples[sample.split] += 1
        for turn in filters.released_turns(sample):
            final = turn.final
            assert final is not None
            self.turns[sample.split] += 1
            self.decisions[final.decision] += 1
            for criterion in self.ctx.criteria:
                if criterion in final.scores:
                    self.per_criterion[criterion][final.decision] += 1
            if turn.draft is not None:
                self.prompts[turn.draft.prompt_version].add(turn.draft.prompt_hash)
                self.models[turn.draft.model] += 1
                self.simulated += turn.draft.simulated

    def as_dict(self) -> dict:
        return {
            "samples": sum(self.samples.values()),
            "turns": sum(self.turns.values()),
            "samples_per_split": dict(sorted(self.samples.items())),
            "turns_per_split": dict(sorted(self.turns.items())),
            "turns_per_decision": dict(sorted(self.decisions.items())),
            "turns_per_criterion_and_decision": {
                c: dict(sorted(self.per_criterion[c].items())) for c in self.ctx.criteria
            },
            "draft_models": dict(sorted(self.models.items())),
            "drafts_simulated": self.simulated,
            "prompt_versions": {v: sorted(h) for v, h in sorted(self.prompts.items())},
        }


def _manifest(release: Release, files: list[WrittenFile], counts: dict) -> dict:
    project = release.project
    return {
        "schema_version": SCHEMA_VERSION,
        "release": {
            "id": release.pk,
            "name": release.name,
            "project": project.slug,
            "created_by": release.created_by.get_username() if release.created_by else None,
            "created_at": release.created_at.isoformat(),
            "built_at": timezone.now().isoformat(),
        },
        "formats": release.formats,
        "include_images": release.include_images,
        "filters": release.filters,
        "split": release.split,
        "rubric": {
            "criteria": project.criteria,
            "score_min": project.score_min,
            "score_max": project.score_max,
            "level_descriptions": project.level_descriptions,
        },
        "project_prompt_version": project.prompt_version,
        "counts": counts,
        "files": [
            {
                "path": f.path,
                "format": f.format,
                "split": f.split,
                "rows": f.rows,
                "bytes": f.byte_size,
                "sha256": f.sha256,
            }
            for f in files
        ],
    }


def _write_text(root: Path, name: str, text: str, kind: str) -> WrittenFile:
    path = root / name
    path.write_text(text, encoding="utf-8", newline="\n")
    size, digest = file_digest(path)
    return WrittenFile(path=name, format=kind, split="", rows=0, byte_size=size, sha256=digest)


def release_delete(*, release: Release) -> None:
    """Deletes a release with its files, to free their space; never one a worker is building."""
    with transaction.atomic():
        locked = Release.objects.select_for_update(of=("self",)).select_related("project").get(pk=release.pk)
        if locked.state == Release.State.RUNNING:
            raise ValidationError({"state": "This release is being built; delete it once it has finished."})
        folder = release_folder(locked)
        locked.delete()
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def release_file_path(release: Release, path: str) -> Path:
    """The absolute path of one of a completed release's files; ValueError for anything else."""
    if release.state != Release.State.COMPLETED or not release.files.filter(path=path).exists():
        raise ValueError(f"release {release.pk} has no file {path!r}")
    root = release_folder(release).resolve()
    absolute = (root / path).resolve()
    if root not in absolute.parents:
        raise ValueError(f"release {release.pk} has no file {path!r}")
    return absolute
