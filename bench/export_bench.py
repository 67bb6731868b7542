"""Export benchmark: time and memory of a dataset release (DRESS and rich JSONL) as the project grows.

    .venv/bin/python bench/export_bench.py [--sizes 6300,63000,630000] [--alone-up-to 63000]
        [--profile FILE] [--profile-size 63000] [--database-url URL] [--keep]
    .venv/bin/python bench/export_bench.py --smoke    # 300 and 1,200 samples: seconds, no targets

Set-up: a PostgreSQL database of its own (dropped and created, then migrated; its name must contain
"bench"), seeded with PostgreSQL COPY (bench/_harness.py ``copy_rows``) in chunks of 10,000
samples, foreign-key triggers off (session_replication_role = replica: the rows are consistent by
construction; it needs a superuser, as dropping and creating the database does). One project grows
to each size in turn (6,300, then 63,000, ...), so seeding costs the largest size once. Every
sample has an annotated image (no file) and two answered turns; each turn has one successful draft,
and each sample one submitted assignment whose reviewer saved a revision per turn, so every turn
has real final feedback:
  - decisions: two turns in three accepted (the draft's critique, refinement and scores), one in
    three edited (text and scores of the reviewer's own); every 7th sample's first turn has a
    chain of two revisions (accepted, then edited: the latest is final); every 50th sample's
    second turn is rejected (left out by the default filters, so its DRESS interaction has one turn);
  - target_criterion: empty for nine samples in ten (a record in all three DRESS files), else one
    criterion in turn;
  - every 250th sample's review is flagged (the sample is left out of the release).

At each size three releases are built, all with the default filters and one train split:
["dress", "rich"] together, then each format alone (at sizes up to --alone-up-to; 0: never).

Each build runs ``release_build`` in a child process of its own (this script again, with a hidden
flag): the child sets Django up, creates the release, reads its RSS, resets its peak-RSS mark
(VmHWM, through /proc/self/clear_refs) and builds; the peak RSS reported is the highest resident
memory of that whole process during the build (Django and all), and the growth is peak minus the
RSS just before. Memory is the process's RSS, not tracemalloc (which would slow the build down).
RSS is also read at every chunk's progress call (first / middle / last shown).

Rows: the records written (lines of the JSONL files: per DRESS criterion file, plus rich.jsonl),
checked against what the seeding rules make; and samples read per second.

Other developers' tests may run on the same 2-core machine: the share of the machine busy during
each build is printed beside it, so a noisy figure can be told from a slow one.

It prints its figures and the targets met or missed; it fails only when a release fails or writes
other rows than expected, never on time or memory.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CHILD_FLAG,
    COLOURS,
    SMOKE_NOTE,
    SUBJECTS,
    Database,
    add_common_arguments,
    bench_environment,
    close_database,
    code_version,
    copy_rows,
    cpu_snapshot,
    migrate,
    peak_rss_kb,
    print_profile,
    proc_status_kb,
    raise_on_sigterm,
    reset_peak_rss,
    reset_sequences,
    run_in_child,
    setup_django,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/annotator_export_bench"
DEFAULT_SIZES = "6300,63000,630000"
SMOKE_SIZES = "300,1200"
SLUG = "export-bench"
CRITERIA = ["helpfulness", "honesty", "harmlessness"]
LABELS = ["person", "car", "dog", "cup", "chair", "bench", "bottle", "bicycle", "bus", "umbrella"]
REVIEWERS = 20
CHUNK = 10_000
T0 = datetime(2024, 6, 1, tzinfo=UTC)

TARGET_SAMPLES = 63_000
TARGET_SECONDS = 15.0
TARGET_PEAK_MB = 250.0
# Memory counts as flat when the peak at the largest size exceeds the peak at the smallest by no
# more than this many MB, or this fraction, whichever is larger; time as linear when the seconds per
# 1,000 samples at the largest size are at most this multiple of the lowest at any size.
FLAT_TOLERANCE_MB = 20.0
FLAT_TOLERANCE_FRACTION = 0.10
LINEAR_TOLERANCE = 1.3


# --------------------------------------------------------------------------------------------
# What the seeding makes (the expected rows are worked out from the same rules)


def flagged(n: int) -> bool:
    return n % 250 == 249


def target_of(n: int) -> str:
    return CRITERIA[(n // 10) % 3] if n % 10 == 7 else ""


def decision_of(n: int, index: int) -> str:
    if index == 1 and n % 50 == 0:
        return "rejected"
    return "edited" if (n + index) % 3 == 0 else "accepted"


def chained(n: int, index: int) -> bool:
    """A chain of two revisions: accepted first, then edited (the final one)."""
    return index == 0 and n % 7 == 3


def expected_rows(count: int) -> dict[str, int]:
    """Rows of each format's files for the first ``count`` samples, under the default filters: a
    sample is released unless flagged (its first turn is never rejected); DRESS writes it to each
    criterion it targets (all three when it targets none)."""
    dress = rich = 0
    for n in range(count):
        if flagged(n):
            continue
        rich += 1
        dress += 1 if target_of(n) else len(CRITERIA)
    return {"dress": dress, "rich": rich}


@functools.lru_cache(maxsize=4096)
def _fill(template: str, k: int) -> str:
    subject, place = SUBJECTS[k % len(SUBJECTS)]
    return template.format(s=subject, p=place, c=COLOURS[k % len(COLOURS)])


def fill(template: str, n: int) -> str:
    """The template about sample n's subject, place and colour (which repeat every 80 samples)."""
    return _fill(template, n % (len(SUBJECTS) * len(COLOURS)))


QUESTION = [
    "What is the {s} in this picture doing, and what does the setting tell us about the time of day?",
    "Describe the {c} {s} again, and only what is actually visible around it.",
]
ANSWER = [
    "The image shows a {c} {s} {p}. In the foreground the {s} takes up most of the frame, with soft light "
    "falling from the left. The background is slightly blurred, and a small sign on the right is too small "
    "to read. Judging by the shadows, the picture was most likely taken in the late afternoon.",
    "A {c} {s} {p}. Around it there are a few people in the distance and a second object partly hidden "
    "behind the {s}, possibly a bag or a box. Nothing in the scene looks dangerous.",
]
DRAFT_CRITIQUE = (
    "The response describes the {s} accurately but invents a sign that is not in the image, and it guesses "
    "the time of day without evidence. It misses the second object next to the {s}."
)
DRAFT_REFINEMENT = (
    "Please describe only what can be seen: drop the sign, mention the second object behind the {c} {s}, "
    "and avoid guessing the time of day."
)
EDITED_CRITIQUE = (
    "The answer names the {s} and where it is ({p}), but the claim about the light is speculation presented "
    "as fact, and the {c} colour is never mentioned although it is the most visible thing in the picture."
)
EDITED_REFINEMENT = "Say that the {s} is {c}, and remove the guess about the light and the time of day."


ASSIGNMENT_FIELDS = [
    *("id", "project_id", "sample_id", "reviewer_id", "lane", "state", "flag"),
    *("claimed_at", "expires_at", "finished_at"),
]
REVISION_FIELDS = [
    *("id", "assignment_id", "turn_id", "version", "author_id", "draft_id", "decision", "reason"),
    *("critique", "refinement", "scores", "time_spent_ms", "created_at"),
]


def scores_of(n: int, index: int, salt: int) -> dict[str, int]:
    return {c: 1 + (n * 7 + index * 3 + k * 5 + salt) % 7 for k, c in enumerate(CRITERIA)}


class Seeder:
    """Grows the bench project with COPY, sample numbers ``0 .. size-1``; ids follow the numbers."""

    def __init__(self) -> None:
        from django.contrib.auth import get_user_model

        from feedback.models import Project

        User = get_user_model()
        self.project = Project.objects.create(name="Export bench", slug=SLUG, criteria=CRITERIA)
        self.reviewers = [User.objects.create_user(username=f"bench-reviewer-{i:02d}").pk for i in range(REVIEWERS)]
        self.count = 0
        self.revision_id = 0

    def grow(self, size: int) -> None:
        from django.db import connection, transaction

        from feedback.drafting.models import Draft
        from feedback.models import Image, Sample, Turn
        from feedback.review.models import Assignment, Revision

        for start in range(self.count, size, CHUNK):
            numbers = range(start, min(start + CHUNK, size))
            with transaction.atomic(), connection.cursor() as cursor:
                # The rows are consistent by construction: skip the foreign-key triggers, which
                # would otherwise cost more than the COPY itself (superuser, this transaction only).
                cursor.execute("SET LOCAL session_replication_role = replica")
                self._chunk(cursor, numbers)
        self.count = max(self.count, size)
        with connection.cursor() as cursor:
            reset_sequences(cursor, [Image, Sample, Turn, Draft, Assignment, Revision])
            cursor.execute("VACUUM ANALYZE")

    def _chunk(self, cursor: Any, numbers: range) -> None:
        from feedback.drafting.models import CallStatus, Draft
        from feedback.models import Image, Sample, Turn
        from feedback.review.models import Assignment, Revision

        project_id = self.project.pk
        copy_rows(
            cursor,
            Image,
            ["id", "project_id", "file_name", "width", "height", "captions", "object_boxes"],
            (
                (
                    n + 1,
                    project_id,
                    f"{n:012d}.jpg",
                    640,
                    480,
                    [fill("A {c} {s} {p}.", n), fill("A photograph of a {s}.", n)],
                    [
                        {"label": LABELS[(n + k) % len(LABELS)], "bbox": [(n * 13 + k * 37) % 400, k * 90, 120, 90]}
                        for k in range(3)
                    ],
                )
                for n in numbers
            ),
        )
        copy_rows(
            cursor,
            Sample,
            ["id", "project_id", "external_id", "image_id", "target_criterion", "reference_answer", "content_hash"],
            (
                (n + 1, project_id, f"bench-{n:07d}", n + 1, target_of(n), fill("A {c} {s} {p}.", n), f"{n:064x}")
                for n in numbers
            ),
        )
        copy_rows(
            cursor,
            Turn,
            ["id", "sample_id", "index", "user_message", "model_response"],
            (
                (2 * n + 1 + index, n + 1, index, fill(QUESTION[index], n), fill(ANSWER[index], n))
                for n in numbers
                for index in (0, 1)
            ),
        )
        copy_rows(
            cursor,
            Draft,
            [
                "id",
                "turn_id",
                "status",
                "model",
                "endpoint",
                "critique",
                "refinement",
                "scores",
                "overall",
                "prompt_version",
                "prompt_hash",
                "created_at",
            ],
            (
                (
                    2 * n + 1 + index,
                    2 * n + 1 + index,
                    CallStatus.OK.value,
                    "bench-judge",
                    "http://127.0.0.1:8001/v1",
                    fill(DRAFT_CRITIQUE, n),
                    fill(DRAFT_REFINEMENT, n),
                    scores_of(n, index, 0),
                    1 + n % 7,
                    "v1",
                    "0" * 64,
                    T0 + timedelta(seconds=n),
                )
                for n in numbers
                for index in (0, 1)
            ),
        )
        copy_rows(
            cursor,
            Assignment,
            ASSIGNMENT_FIELDS,
            (
                (
                    n + 1,
                    project_id,
                    n + 1,
                    self.reviewers[n % REVIEWERS],
                    1,
                    Assignment.State.SUBMITTED.value,
                    "bad_image" if flagged(n) else "",
                    T0 + timedelta(days=1, seconds=n),
                    T0 + timedelta(days=1, seconds=n + 3600),
                    T0 + timedelta(days=1, seconds=n + 120),
                )
                for n in numbers
            ),
        )
        copy_rows(
            cursor,
            Revision,
            REVISION_FIELDS,
            self._revisions(numbers),
        )

    def _revisions(self, numbers: range):
        for n in numbers:
            reviewer = self.reviewers[n % REVIEWERS]
            for index in (0, 1):
                turn = draft = 2 * n + 1 + index
                steps = ["accepted", "edited"] if chained(n, index) else [decision_of(n, index)]
                for version, decision in enumerate(steps, 1):
                    self.revision_id += 1
                    if decision == "accepted":
                        text = (fill(DRAFT_CRITIQUE, n), fill(DRAFT_REFINEMENT, n), scores_of(n, index, 0))
                    else:
                        text = (fill(EDITED_CRITIQUE, n), fill(EDITED_REFINEMENT, n), scores_of(n, index, 3))
                    yield (
                        self.revision_id,
                        n + 1,
                        turn,
                        version,
                        reviewer,
                        draft,
                        decision,
                        "The answer is about another picture." if decision == "rejected" else "",
                        *text,
                        20_000 + (n * 37) % 60_000,
                        T0 + timedelta(days=1, seconds=n + 60 * index + version),
                    )


# --------------------------------------------------------------------------------------------
# One release build, in a child process


def run_child(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    setup_django()
    import gc
    import resource

    from django.db import connection

    from exports.models import Release
    from exports.service import release_build, release_create, release_folder
    from feedback.models import Project

    project = Project.objects.get(slug=spec["project"])
    release = release_create(project=project, user=None, formats=spec["formats"], name=spec["label"], enqueue=False)
    rss_trace: list[tuple[int, int]] = []

    def on_progress(r: Release) -> None:
        rss_trace.append((r.samples_done, proc_status_kb("VmRSS")))

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    gc.collect()
    rss_before = proc_status_kb("VmRSS")
    peak_reset = reset_peak_rss()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with connection.execute_wrapper(count):
        if profiler:
            profiler.enable()
        built = release_build(release_id=release.pk, progress=on_progress)
        if profiler:
            profiler.disable()
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    peak = peak_rss_kb()
    if profiler:
        profiler.dump_stats(spec["profile"])
    assert built is not None
    files = list(built.files.values("path", "format", "rows", "byte_size"))
    result = {
        "seconds": seconds,
        "cpu": (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
        "rss_before_kb": rss_before,
        "peak_kb": peak,
        "peak_reset": peak_reset,
        "rss_trace": rss_trace,
        "queries": queries,
        "state": built.state,
        "error": built.error,
        "samples_done": built.samples_done,
        "samples_released": built.samples_released,
        "files": files,
    }
    shutil.rmtree(release_folder(built), ignore_errors=True)  # gigabytes at the largest size
    connection.close()
    Path(spec["result"]).write_text(json.dumps(result))


def run_build(work: Path, label: str, formats: list[str], profile: str = "") -> dict:
    spec = {"project": SLUG, "formats": formats, "label": label, "profile": profile}
    me = os.getpid()
    before = cpu_snapshot({"bench": me})
    result = run_in_child(__file__, work, label, spec)
    cpu = cpu_snapshot({"bench": me}).minus(before)
    result["machine_busy"] = cpu["machine busy"] / cpu["machine total"] if cpu["machine total"] else 0.0
    result["postgresql_cpu"] = cpu["postgresql"]
    return result


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class Row:
    size: int
    formats: list[str]
    result: dict

    @property
    def name(self) -> str:
        return "+".join(self.formats)

    @property
    def seconds(self) -> float:
        return self.result["seconds"]

    @property
    def records(self) -> int:
        return sum(f["rows"] for f in self.result["files"] if f["format"] in self.formats)

    @property
    def written_mb(self) -> float:
        return sum(f["byte_size"] for f in self.result["files"]) / 1e6

    @property
    def peak_mb(self) -> float:
        return self.result["peak_kb"] / 1024

    @property
    def growth_mb(self) -> float:
        return (self.result["peak_kb"] - self.result["rss_before_kb"]) / 1024

    @property
    def per_1k(self) -> float:
        return self.seconds / self.size * 1000

    def failures(self) -> list[str]:
        r = self.result
        problems = []
        if r["state"] != "completed":
            problems.append(f"state {r['state']}: {r['error']}")
            return problems
        want = expected_rows(self.size)
        for fmt in self.formats:
            rows = sum(f["rows"] for f in r["files"] if f["format"] == fmt)
            if rows != want[fmt]:
                problems.append(f"{fmt} wrote {rows:,} rows, expected {want[fmt]:,}")
        if r["samples_done"] != self.size:
            problems.append(f"read {r['samples_done']:,} samples of {self.size:,}")
        return problems


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'samples':>8} {'formats':<11} {'seconds':>8} {'s/1k smp':>8} {'samples/s':>10} {'records':>9} "
        f"{'records/s':>10} {'MB out':>7} {'RSS0 MB':>7} {'peak MB':>7} {'growth':>6} {'queries':>7} "
        f"{'CPU s':>6} {'PG CPU':>6} {'busy':>5}  check"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.result
        print(
            f"{row.size:>8,} {row.name:<11} {row.seconds:>8.2f} {row.per_1k:>8.3f} {row.size / row.seconds:>10,.0f} "
            f"{row.records:>9,} {row.records / row.seconds:>10,.0f} {row.written_mb:>7.0f} "
            f"{r['rss_before_kb'] / 1024:>7.1f} {row.peak_mb:>7.1f} {row.growth_mb:>6.1f} {r['queries']:>7,} "
            f"{r['cpu']:>6.1f} {r['postgresql_cpu']:>6.1f} {100 * r['machine_busy']:>4.0f}%  "
            f"{'FAIL' if row.failures() else 'ok'}"
        )
    print(
        "  s/1k smp: seconds per 1,000 samples read; records: JSONL lines written; RSS0: the child's RSS just "
        "before the build;\n  peak: its highest RSS during the build (VmHWM after a reset); growth: peak - RSS0; "
        "CPU s: the build process's CPU;\n  PG CPU: PostgreSQL's CPU meanwhile (all sessions); busy: the whole "
        "machine's CPU use meanwhile (2 cores; others' tests count)"
    )


def print_memory_trace(rows: list[Row]) -> None:
    print("\nRSS during each build (MB at the progress call after the first chunk / half way / the last chunk):")
    for row in rows:
        trace = row.result["rss_trace"]
        if trace:
            picks = [trace[0], trace[len(trace) // 2], trace[-1]]
            text = " / ".join(f"{kb / 1024:.1f} @{done:,}" for done, kb in picks)
            print(f"  {row.size:>8,} {row.name:<11} {text}")


def print_targets(rows: list[Row], *, smoke: bool = False) -> bool:
    ok = True
    if smoke:
        print(f"\n{SMOKE_NOTE}")
    else:
        print_target_figures(rows)
    for row in rows:
        for problem in row.failures():
            ok = False
            print(f"FAIL {row.name} at {row.size:,}: {problem}")
    return ok


def print_target_figures(rows: list[Row]) -> None:
    print("\nTargets (figures only; the bench never fails on them):")
    both = {r.size: r for r in rows if len(r.formats) > 1}
    if both:
        big = both.get(TARGET_SAMPLES) or both[max(both)]
        projected = big.seconds * TARGET_SAMPLES / big.size
        how = f"{big.seconds:.1f} s"
        if big.size != TARGET_SAMPLES:
            how = f"~{projected:.1f} s projected from {big.size:,}"
        print(
            f"  [{'PASS' if projected < TARGET_SECONDS else 'MISS'}] dress+rich: {TARGET_SAMPLES:,} samples in under "
            f"{TARGET_SECONDS:g} s -> {how} ({big.size / big.seconds:,.0f} samples/s, "
            f"{big.records / big.seconds:,.0f} records/s)"
        )
    worst = max(rows, key=lambda r: r.peak_mb)
    print(
        f"  [{'PASS' if worst.peak_mb < TARGET_PEAK_MB else 'MISS'}] peak RSS of the build process under "
        f"{TARGET_PEAK_MB:g} MB at every size -> highest {worst.peak_mb:.1f} MB ({worst.name} at {worst.size:,})"
    )
    for name in sorted({r.name for r in rows}):
        mine = {r.size: r for r in rows if r.name == name}
        if len(mine) < 2:
            continue
        small, large = mine[min(mine)], mine[max(mine)]
        allowed = max(FLAT_TOLERANCE_MB, FLAT_TOLERANCE_FRACTION * small.peak_mb)
        diff = large.peak_mb - small.peak_mb
        print(
            f"  [{'PASS' if diff <= allowed else 'MISS'}] {name}: memory flat from {small.size:,} to {large.size:,} "
            f"-> peak {small.peak_mb:.1f} vs {large.peak_mb:.1f} MB ({diff:+.1f} MB, allowed +{allowed:.1f}); "
            f"growth {small.growth_mb:.1f} vs {large.growth_mb:.1f} MB"
        )
        lowest = min(r.per_1k for r in mine.values())
        ratio = large.per_1k / lowest
        per = ", ".join(f"{r.per_1k:.3f} at {size:,}" for size, r in sorted(mine.items()))
        print(
            f"  [{'PASS' if ratio <= LINEAR_TOLERANCE else 'MISS'}] {name}: time linear in samples -> seconds per "
            f"1,000 samples: {per} (largest / lowest {ratio:.2f}, allowed {LINEAR_TOLERANCE:g})"
        )


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark dataset releases: DRESS and rich JSONL.")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated sample counts ({DEFAULT_SIZES})")
    parser.add_argument(
        "--alone-up-to",
        type=int,
        default=TARGET_SAMPLES,
        help="also build each format alone at sizes up to this (default 63,000; 0: never)",
    )
    parser.add_argument("--profile", metavar="FILE", help="also build dress+rich under cProfile, stats to FILE")
    parser.add_argument("--profile-size", type=int, default=TARGET_SAMPLES, help="size profiled (default 63,000)")
    add_common_arguments(parser, database_url=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    if args.smoke:
        # Two small sizes (each format alone and together), so every record check still runs.
        args.sizes, args.alone_up_to = SMOKE_SIZES, max(int(s) for s in SMOKE_SIZES.split(","))
    args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    if not args.sizes or min(args.sizes) < 1:
        parser.error("sizes must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    db = Database.parse(args.database_url)
    lock = db.exclusive()
    raise_on_sigterm()
    whole = time.perf_counter()
    ok = False
    with tempfile.TemporaryDirectory(prefix="annotator-export-bench-") as tmp:
        work = Path(tmp)
        bench_environment(db, work, ANNOTATOR_RELEASES_ROOT=str(work / "releases"))
        try:
            server = db.recreate()
            print(
                f"Python {platform.python_version()}, PostgreSQL {server} ({db.host}:{db.port}/{db.name}), "
                f"{os.cpu_count()} CPUs; code: {code_version()}"
            )
            migrated = migrate()
            from django.db import connections

            from exports.records import CHUNK_SIZE

            print(f"migrated in {migrated:.1f} s; export chunk size {CHUNK_SIZE:,} samples")
            seeder = Seeder()
            rows: list[Row] = []
            profile_path = None
            for size in args.sizes:
                started = time.perf_counter()
                grown = size - seeder.count
                seeder.grow(size)
                print(
                    f"\nseeded {grown:,} samples (to {size:,}: 2 turns, 2 drafts, 1 submitted review each) in "
                    f"{time.perf_counter() - started:.1f} s (COPY, then VACUUM ANALYZE)",
                    flush=True,
                )
                connections.close_all()  # the children open their own
                builds = [["dress", "rich"]]
                if size <= args.alone_up_to:
                    builds += [["dress"], ["rich"]]
                for formats in builds:
                    label = f"{'+'.join(formats)}-{size}"
                    print(f"  building {label} ...", flush=True)
                    row = Row(size, formats, run_build(work, label, formats))
                    rows.append(row)
                    print(
                        f"    {row.seconds:.2f} s, {row.size / row.seconds:,.0f} samples/s, {row.records:,} records, "
                        f"peak RSS {row.peak_mb:.1f} MB (+{row.growth_mb:.1f})",
                        flush=True,
                    )
                if args.profile and size == args.profile_size:
                    profile_path = Path(args.profile).resolve()
                    print(f"  profiling dress+rich-{size} ...", flush=True)
                    run_build(work, f"profile-{size}", ["dress", "rich"], str(profile_path))
            print()
            print_table(rows)
            print_memory_trace(rows)
            ok = print_targets(rows, smoke=args.smoke)
            if args.profile and profile_path is None:
                print(f"\nnote: --profile-size {args.profile_size:,} is not among the sizes; nothing profiled")
            if profile_path:
                print_profile("the dress+rich build", profile_path)
        except KeyboardInterrupt:
            print("\ninterrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            close_database(db, keep=args.keep, lock=lock)
    print(f"\nwhole run: {time.perf_counter() - whole:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        run_child(Path(sys.argv[2]))
    else:
        sys.exit(main(sys.argv[1:]))
