"""Releases: create one (validated, queued on the ``exports`` queue after commit) and build it.

The build streams the project's samples chunk by chunk through the chosen formats into the
releases store (``feedback.storage.Staging``: a hidden folder beside the final one, renamed into
place when complete; or multipart uploads to an object store, completed together when the build
is), measuring each file's rows, size and sha256 as it is written, then adds the manifest (with
the quality figures) and the dataset card. A completed release is never written again.
"""

from __future__ import annotations

import gc
import logging
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Case, F, Sum, When
from django.utils import timezone

from feedback import attempts, storage
from feedback.errors import Conflict, InvalidInput, NotFound
from feedback.models import Project
from feedback.sending import send

from .card import card_text
from .filters import ReleaseFilters, filters_from
from .formats import FORMATS
from .formats.base import ExportContext, ReleaseSink, WrittenFile, json_line
from .formats.rich import SCHEMA_FORMAT, SCHEMA_VERSION
from .models import Release, ReleaseFile
from .quality_figures import release_quality
from .records import ExportSample, sample_chunks, samples_total
from .splits import split_rule_from

# The release build's task name (exports/tasks.py declares it; CELERY_TASK_ROUTES routes it).
RELEASE_BUILD = "exports.tasks.release_build_task"

log = logging.getLogger(__name__)

Progress = Callable[[Release], None]


def release_prefix(release: Release) -> str:
    """The release's folder in the releases store."""
    return f"{release.project.slug}/{release.pk}"


def release_folder(release: Release) -> Path:
    """The release's folder on this machine (a local releases store only)."""
    return storage.local_path(storage.RELEASES, release_prefix(release))


def release_location(release: Release) -> str:
    """Where the release's files are, to show: a folder, or the object store's URL of it."""
    if storage.is_local(storage.RELEASES):
        return str(release_folder(release))
    return storage.location(storage.RELEASES, release_prefix(release))


@transaction.atomic  # the project's row lock below holds until the release is created
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
        raise InvalidInput("formats", f"Choose at least one format ({', '.join(FORMATS)}).")
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise InvalidInput("formats", f"Unknown formats: {', '.join(unknown)} (one of {', '.join(FORMATS)}).")
    try:
        cleaned = filters_from(project, filters)
    except InvalidInput as exc:  # named as in the request: filters.decisions, say
        raise exc.nested("filters") from None
    rule = split_rule_from(split)
    Project.objects.select_for_update().filter(pk=project.pk).first()  # one quota check at a time
    quota_check(project)
    release = Release.objects.create(
        project=project,
        name=(name or "").strip()[:200] or f"{project.name} release",
        formats=chosen,
        filters=cleaned.as_dict(),
        split=rule.as_dict(),
        include_images=bool(include_images),
        created_by=user if user is not None and user.is_authenticated else None,
        heartbeat_at=timezone.now(),  # queued now: the sweep sends it again if no worker takes it
    )
    if enqueue:
        send(RELEASE_BUILD, release.pk)
    return release


def release_build(*, release_id: int, progress: Progress | None = None) -> Release | None:
    """Builds a queued release from scratch, as the one attempt that claims it; None when it is not
    queued (finished, cancelled, or another attempt builds it). A release whose worker was lost is
    queued again by the sweep, and its earlier attempt's partial folder is removed here."""
    token = attempts.new_token()
    claimed = Release.objects.filter(pk=release_id, state=Release.State.QUEUED).update(
        state=Release.State.RUNNING,
        attempt=token,
        attempt_owner=attempts.owner_here(),
        heartbeat_at=timezone.now(),
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        samples_done=0,
        samples_released=0,
        error="",
    )
    if not claimed:
        return None
    release = Release.objects.select_related("project", "created_by").get(pk=release_id)
    release.samples_total = samples_total(release.project)
    staging: storage.Staging | None = None
    try:
        _held(release, token, samples_total=release.samples_total)
        remove_partials(release)
        staging = storage.Staging(storage.RELEASES, release_prefix(release), token)
        sink, counts = _write(release, token, staging, progress)
        written = sink.close()
        quality = release_quality(release.project, filters_from(release.project, release.filters))
        manifest = _manifest(release, written, counts, quality)
        last = [
            sink.add("manifest.json", json_line(manifest).encode(), format="manifest"),
            sink.add("README.md", card_text(release, manifest).encode(), format="card"),
        ]
        sink.close()
        _check_quota(release, sink.bytes_written())
        _publish(release, token, staging, written + last, manifest)
    except attempts.StaleAttempt:
        if staging is not None:
            staging.discard()
        log.warning("release %s: attempt %s no longer holds it (cancelled or taken over); stopped", release.pk, token)
    except Exception as exc:
        if staging is not None:
            staging.discard()
        log.exception("release %s failed", release.pk)
        Release.objects.filter(pk=release.pk, attempt=token).update(
            state=Release.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
    release.refresh_from_db()
    return release


def _held(release: Release, token: str, **values) -> None:
    """Writes progress and renews the lease while this attempt still builds the release."""
    if not Release.objects.filter(pk=release.pk, attempt=token, state=Release.State.RUNNING).update(
        heartbeat_at=timezone.now(), **values
    ):
        raise attempts.StaleAttempt(token)


def _publish(
    release: Release, token: str, staging: storage.Staging, written: list[WrittenFile], manifest: dict
) -> None:
    """Makes the files visible and records them, in one transaction that first makes sure the
    attempt still holds the release (its row stays locked until the commit)."""
    with transaction.atomic():
        if not Release.objects.filter(pk=release.pk, attempt=token, state=Release.State.RUNNING).update(
            manifest=manifest, state=Release.State.COMPLETED, finished_at=timezone.now()
        ):
            raise attempts.StaleAttempt(token)
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
        staging.publish()


def partial_folders(release: Release) -> list[Path]:
    """Hidden folders of this release's attempts (``.<id>.<token>.partial``, ``.<id>.partial``) in a
    local releases store (an object store holds unfinished uploads instead, never objects)."""
    if not storage.is_local(storage.RELEASES):
        return []
    final = release_folder(release)
    return sorted(final.parent.glob(f".{final.name}.*partial")) if final.parent.is_dir() else []


def remove_partials(release: Release) -> None:
    """Drops what earlier attempts left unfinished: their hidden folders, or their uploads."""
    for path in partial_folders(release):
        shutil.rmtree(path, ignore_errors=True)
    storage.abort_uploads(storage.RELEASES, release_prefix(release))


def _write(
    release: Release, token: str, staging: storage.Staging, progress: Progress | None
) -> tuple[ReleaseSink, dict]:
    project = release.project
    filters = filters_from(project, release.filters)
    rule = split_rule_from(release.split)
    sink = ReleaseSink(staging, rule.names)
    ctx = ExportContext(project=project, filters=filters, criteria=filters.criteria_of(project))
    names = list(release.formats) + (["images"] if release.include_images and "images" not in release.formats else [])
    writers = [FORMATS[name].writer(sink, ctx) for name in names]
    counts = _Counts(ctx)
    with _fewer_collections():
        for chunk in sample_chunks(project, chunk_size=settings.RELEASE_CHUNK_SIZE):
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
            _held(release, token, samples_done=release.samples_done, samples_released=release.samples_released)
            _check_quota(release, sink.bytes_written())
            if progress:
                progress(release)
    for writer in writers:
        writer.close()
    for companion in dict.fromkeys(path for name in names for path in FORMATS[name].companions):
        sink.copy(companion, format=SCHEMA_FORMAT)
    return sink, counts.as_dict()


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


def _manifest(release: Release, files: list[WrittenFile], counts: dict, quality: dict) -> dict:
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
        "quality": quality,
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


def release_cancel(*, release: Release, user=None) -> Release:
    """Stops a queued or building release: its build notices at its next chunk (its token is gone),
    removes its partial folder and writes nothing more. A cancelled release may then be deleted."""
    who = user.get_username() if user is not None and user.is_authenticated else "an admin"
    if not Release.objects.filter(pk=release.pk, state__in=(Release.State.QUEUED, Release.State.RUNNING)).update(
        state=Release.State.CANCELLED, attempt="", error=f"Cancelled by {who}.", finished_at=timezone.now()
    ):
        release.refresh_from_db()
        raise Conflict(f"Only a queued or building release can be cancelled; this one is {release.state}.")
    release.refresh_from_db()
    return release


def release_delete(*, release: Release) -> None:
    """Deletes a release with its files (and any partial folder), to free their space and its
    quota; never one that is queued or being built: cancel it first."""
    with transaction.atomic():
        locked = Release.objects.select_for_update(of=("self",)).select_related("project").get(pk=release.pk)
        if locked.active:
            raise Conflict("This release is being built; cancel it first, then delete it.")
        folder = release_prefix(locked)
        partials = partial_folders(locked)
        locked.delete()

        def remove() -> None:
            storage.delete_folder(storage.RELEASES, folder)
            for path in partials:
                shutil.rmtree(path, ignore_errors=True)

        transaction.on_commit(remove)


# --- quota ---------------------------------------------------------------------------------------

QUOTA_STATES = (Release.State.QUEUED, Release.State.RUNNING, Release.State.COMPLETED)


def quota_usage(project: Project, *, excluding: int | None = None) -> tuple[int, int]:
    """The project's releases that count (queued, building, completed) and their files' bytes."""
    releases = Release.objects.filter(project=project, state__in=QUOTA_STATES)
    files = ReleaseFile.objects.filter(release__project=project, release__state=Release.State.COMPLETED)
    if excluding is not None:
        releases, files = releases.exclude(pk=excluding), files.exclude(release_id=excluding)
    return releases.count(), files.aggregate(total=Sum("byte_size"))["total"] or 0


def quota_check(project: Project) -> None:
    count, size = quota_usage(project)
    if count >= settings.RELEASE_QUOTA_COUNT:
        raise Conflict(
            f"This project has {count} releases, its quota (ANNOTATOR_RELEASE_QUOTA_COUNT "
            f"= {settings.RELEASE_QUOTA_COUNT}); delete a release to make a new one."
        )
    if size >= settings.RELEASE_QUOTA_BYTES:
        raise Conflict(
            f"This project's releases hold {size} bytes, its quota (ANNOTATOR_RELEASE_QUOTA_BYTES "
            f"= {settings.RELEASE_QUOTA_BYTES}); delete a release to make a new one."
        )


class QuotaExceeded(Exception):
    pass


def _check_quota(release: Release, written: int) -> None:
    """A build stops once its files would take the project past its byte quota."""
    used = quota_usage(release.project, excluding=release.pk)[1]
    if used + written > settings.RELEASE_QUOTA_BYTES:
        raise QuotaExceeded(
            f"the release passed the project's quota (ANNOTATOR_RELEASE_QUOTA_BYTES = "
            f"{settings.RELEASE_QUOTA_BYTES}): other releases hold {used} bytes and this one had "
            f"written {written}; delete releases, or leave out the images"
        )


# --- recovery ------------------------------------------------------------------------------------


def releases_recover(now) -> dict[str, int]:
    """The sweep's part for releases (feedback/recovery.py): a build whose attempt is dead is
    queued again (built from scratch, its partial folder removed), a queued release no worker
    took within a lease is sent again, and partial folders of no live attempt are removed."""
    done = {"releases_requeued": 0, "releases_resent": 0, "partials_removed": 0}
    running = Release.objects.filter(state=Release.State.RUNNING).annotate(
        stale=Case(When(attempts.expired(now), then=True), default=False, output_field=BooleanField())
    )
    for pk, token, owner, stale in running.values_list("pk", "attempt", "attempt_owner", "stale"):
        if (stale or attempts.process_gone(owner)) and Release.objects.filter(
            pk=pk, state=Release.State.RUNNING, attempt=token
        ).update(state=Release.State.QUEUED, attempt="", heartbeat_at=now):
            send(RELEASE_BUILD, pk)
            done["releases_requeued"] += 1
    for pk in Release.objects.filter(attempts.expired(now), state=Release.State.QUEUED).values_list("pk", flat=True):
        if Release.objects.filter(attempts.expired(now), pk=pk, state=Release.State.QUEUED).update(heartbeat_at=now):
            send(RELEASE_BUILD, pk)
            done["releases_resent"] += 1
    done["partials_removed"] = _remove_orphan_partials()
    return done


def _remove_orphan_partials() -> int:
    """Partial folders (or, in an object store, unfinished uploads) whose attempt no longer builds
    its release, once a lease old (one just begun by a build that claimed its release after the
    query below is left alone). An upload names its release, not its attempt: those of a release
    being built wait until it is no longer."""
    old = time.time() - settings.WORK_LEASE
    if not storage.is_local(storage.RELEASES):
        building = {
            release_prefix(r) for r in Release.objects.filter(state=Release.State.RUNNING).select_related("project")
        }
        return storage.abort_uploads(
            storage.RELEASES, "", started_before=old, keep=lambda name: "/".join(name.split("/")[:2]) in building
        )
    root = Path(settings.RELEASES_ROOT)
    if not root.is_dir():
        return 0
    live = set(Release.objects.filter(state=Release.State.RUNNING).values_list("pk", "attempt"))
    removed = 0
    for path in root.glob("*/.*partial"):
        if path.stat().st_mtime > old:
            continue
        parts = path.name.split(".")  # "", id, token, "partial"  (or "", id, "partial")
        if len(parts) == 4 and parts[1].isdigit() and (int(parts[1]), parts[2]) in live:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def release_file_name(release: Release, path: str) -> str:
    """The name in the releases store of one of a completed release's files; NotFound for anything
    else (the path must be one the release recorded)."""
    if release.state != Release.State.COMPLETED or not release.files.filter(path=path).exists():
        raise NotFound("No such file in this release.")
    parts = PurePosixPath(path).parts
    if not parts or any(part in ("", ".", "..") for part in parts) or path.startswith("/"):
        raise NotFound("No such file in this release.")
    return f"{release_prefix(release)}/{path}"
