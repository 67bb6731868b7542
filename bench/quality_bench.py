"""Quality benchmark: the figures of a large reviewed project, through the API and the page.

    .venv/bin/python bench/quality_bench.py [--samples 63000] [--requests 30] [--database-url URL] [--keep]
    .venv/bin/python bench/quality_bench.py --smoke    # 600 samples, 5 requests: seconds, no targets

Set-up: a PostgreSQL database of its own (dropped and created, then migrated; its name must contain
"bench"), seeded with ``bulk_create`` (no signals: the summary is then built by ``quality_rebuild``,
timed): one project of --samples samples from two imports (two responder models), each with two
answered turns (two rounds), one successful draft per turn (two drafting models, two prompt
versions), and one submitted review of every sample by one of five reviewers, a second one on 10 %
of them (lane 2). Per turn a reviewer accepts (60 %), edits scores and critique (30 %) or rejects
(10 %); reviews spread over eight weeks.

Measured, in this process through Django's test client (middleware, view, JSON or template; no
HTTP server), logged in as a researcher: GET of the API without filters and with a criterion, a
prompt version and a date range, and GET of the Quality page when its URL exists, each cold (the
project's figures version bumped before every request, as any review save does: the figures are
computed from the cube and the summary) and warm (repeated: the cached JSON). It prints
p50/p95/max per request and the queries each request ran. Then the review path: saves through
``revision_create`` on fresh samples (the receivers keep the summary), with their time and queries.

It prints its figures and whether the target (p95 under 1 s at 63,000 samples; API and page, cold and
warm) was met, with the machine's load average; it never
fails on time. It fails if the kept summary and the rebuilt one disagree on the fresh reviews.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    COLOURS,
    SMOKE_NOTE,
    SUBJECTS,
    Database,
    add_common_arguments,
    bench_environment,
    close_database,
    code_version,
    migrate,
    raise_on_sigterm,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/annotator_qdata_bench"
TARGET_P95_MS = 1000.0
SLUG = "quality-bench"
SEED = 20240620
CRITERIA = ["helpfulness", "honesty", "harmlessness"]
CHUNK = 5000
DOUBLE_SHARE = 0.10
REVIEWERS = 5
FRESH = 20  # samples reviewed through the review path at the end


def fill(template: str, n: int) -> str:
    subject, place = SUBJECTS[n % len(SUBJECTS)]
    return template.format(s=subject, p=place, c=COLOURS[n % len(COLOURS)])


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# --------------------------------------------------------------------------------------------
# Seeding


def seed(slug: str, count: int, fresh: int) -> tuple[Any, Any, list[Any]]:
    """A project of ``count`` reviewed samples and ``fresh`` drafted, unreviewed ones, its researcher
    and its reviewers."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from feedback.drafting.models import CallStatus, Draft
    from feedback.models import ImportBatch, Project, ProjectMembership, Role, Sample, Turn
    from feedback.review.models import Assignment, AssignmentState, Decision, Revision

    rng = random.Random(SEED)
    User = get_user_model()
    project = Project.objects.create(name=slug, slug=slug, reviews_required=1)
    researcher = User.objects.create_user(username=f"{slug}-researcher")
    people = [User.objects.create_user(username=f"{slug}-reviewer-{i}") for i in range(REVIEWERS)]
    ProjectMembership.objects.create(project=project, user=researcher, role=Role.RESEARCHER)
    ProjectMembership.objects.bulk_create(
        ProjectMembership(project=project, user=user, role=Role.ANNOTATOR) for user in people
    )
    batches = [
        ImportBatch.objects.create(project=project, format="dress", file_name=f"part-{i}.jsonl", status="completed")
        for i in range(2)
    ]
    now = timezone.now()
    total = count + fresh
    for start in range(0, total, CHUNK):
        numbers = range(start, min(start + CHUNK, total))
        with transaction.atomic():
            samples = Sample.objects.bulk_create(
                Sample(
                    project=project,
                    external_id=f"{slug}-{n:07d}",
                    reference_answer=fill("A {c} {s} {p}.", n),
                    source_model=("lvlm-small", "lvlm-large")[n % 2],
                    import_batch=batches[n % 2],
                    content_hash=f"{n:064x}",
                )
                for n in numbers
            )
            turns = Turn.objects.bulk_create(
                Turn(
                    sample=sample,
                    index=index,
                    user_message=fill("What is the {s} doing?" if index == 0 else "Describe the {c} {s} again.", n),
                    model_response=fill("The image shows a {c} {s} {p}.", n + index),
                )
                for n, sample in zip(numbers, samples, strict=True)
                for index in (0, 1)
            )
            drafts = Draft.objects.bulk_create(
                Draft(
                    turn=turn,
                    status=CallStatus.OK,
                    model=("drafter-a", "drafter-b")[turn.sample_id % 2],
                    endpoint="http://127.0.0.1:8001/v1",
                    critique=fill("The answer names the {s} but misses what is {p}.", turn.sample_id),
                    refinement=fill("Mention that the {c} {s} is {p}.", turn.sample_id),
                    scores={c: rng.randint(2, 6) for c in CRITERIA},
                    overall=4,
                    prompt_version=("v1", "v2")[(turn.sample_id // 3) % 2],
                    prompt_hash="0" * 64,
                )
                for turn in turns
            )
            reviewed = [(n, s) for n, s in zip(numbers, samples, strict=True) if n < count]
            lanes = [(n, s, 1) for n, s in reviewed] + [(n, s, 2) for n, s in reviewed if rng.random() < DOUBLE_SHARE]
            assignments = Assignment.objects.bulk_create(
                Assignment(
                    project=project,
                    sample=sample,
                    reviewer=people[(n + lane) % REVIEWERS],
                    lane=lane,
                    state=AssignmentState.SUBMITTED,
                    claimed_at=now,
                    expires_at=now,
                    finished_at=now,
                )
                for n, sample, lane in lanes
            )
            by_sample: dict[int, list[Draft]] = {}
            for draft in drafts:
                by_sample.setdefault(draft.turn.sample_id, []).append(draft)
            revisions = []
            for assignment in assignments:
                for draft in by_sample[assignment.sample_id]:
                    roll = rng.random()
                    if roll < 0.6:
                        decision, critique, scores, reason = Decision.ACCEPTED, draft.critique, draft.scores, ""
                    elif roll < 0.9:
                        decision = Decision.EDITED
                        critique = draft.critique.replace("misses", "leaves out") + " It is short."
                        scores = {c: min(7, max(1, v + rng.choice([-1, -1, 0, 1]))) for c, v in draft.scores.items()}
                        reason = ""
                    else:
                        decision, critique, scores, reason = Decision.REJECTED, "", {}, "Wrong about the picture."
                    revisions.append(
                        Revision(
                            assignment=assignment,
                            turn_id=draft.turn_id,
                            version=1,
                            author_id=assignment.reviewer_id,
                            draft=draft,
                            decision=decision,
                            reason=reason,
                            critique=critique,
                            refinement=draft.refinement,
                            scores=scores,
                            time_spent_ms=rng.randint(5_000, 120_000),
                        )
                    )
            Revision.objects.bulk_create(revisions, batch_size=CHUNK)
    with connection.cursor() as cursor:  # reviews over eight weeks (created_at is auto_now_add)
        cursor.execute(
            "UPDATE feedback_revision SET created_at = created_at - (id %% 56) * interval '1 day' "
            "WHERE assignment_id IN (SELECT id FROM feedback_assignment WHERE project_id = %s)",
            [project.pk],
        )
    return project, researcher, people


# --------------------------------------------------------------------------------------------
# Measuring


def requests_of(project: Any) -> list[tuple[str, str, dict[str, str]]]:
    from django.urls import NoReverseMatch, reverse

    api = reverse("api-quality", kwargs={"slug": project.slug})
    from django.utils import timezone

    today = timezone.now().date()
    variants = [
        ("API, no filter", api, {}),
        ("API, criterion=honesty", api, {"criterion": "honesty"}),
        ("API, prompt_version=v2", api, {"prompt_version": "v2"}),
        ("API, last 14 days", api, {"since": (today - timedelta(days=14)).isoformat(), "until": today.isoformat()}),
    ]
    try:
        page = reverse("quality:page", kwargs={"slug": project.slug})
    except NoReverseMatch:
        return variants
    return [*variants, ("page, no filter", page, {})]


class Queries:
    """The queries run on the default connection while in the block, with their time (an execute
    wrapper: it sees them whether or not Django is in debug mode)."""

    def __init__(self) -> None:
        self.captured_queries: list[dict[str, Any]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.captured_queries.append({"sql": sql, "time": time.perf_counter() - started})

    def __enter__(self) -> Queries:
        from django.db import connection

        self._wrapping = connection.execute_wrapper(self)
        self._wrapping.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._wrapping.__exit__(*exc)


def measure(project: Any, researcher: Any, rounds: int) -> dict[str, dict[str, Any]]:
    """Each request ``rounds`` times cold (the figures version bumped before each: computed from the
    cube and the summary, as after any review save) and ``rounds`` times warm (repeated: the cached
    JSON), with the queries of one of each."""
    from django.test import Client

    from quality import cube

    client = Client()
    client.force_login(researcher)
    out: dict[str, dict[str, Any]] = {}
    for label, url, params in requests_of(project):
        for kind in ("cold", "warm"):
            if kind == "cold":
                cube.bump(project.pk)
            with Queries() as queries:
                first = client.get(url, params)
            times = []
            for _ in range(rounds):
                if kind == "cold":
                    cube.bump(project.pk)
                started = time.perf_counter()
                response = client.get(url, params)
                times.append(time.perf_counter() - started)
            slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:3]
            out[f"{label} ({kind})"] = {
                "status": first.status_code,
                "times": times,
                "queries": len(queries.captured_queries),
                "slowest": [(float(q["time"]), q["sql"][:160]) for q in slowest],
                "last_status": response.status_code,
            }
    return out


def review_path(project: Any, people: list[Any]) -> dict[str, Any]:
    """Saves through revision_create on the unreviewed samples: time and queries per save."""
    from feedback.models import Turn
    from feedback.review.claims import sample_claim
    from feedback.review.models import Decision
    from feedback.review.revisions import revision_create

    reviewer = people[0]
    times: list[float] = []
    queries: list[int] = []
    slowest: list[dict[str, Any]] = []
    for _ in range(FRESH):
        assignment = sample_claim(project=project, reviewer=reviewer)
        if assignment is None:
            break
        for turn in Turn.objects.filter(sample_id=assignment.sample_id).order_by("index"):
            draft = turn.drafts.get()
            started = time.perf_counter()
            with Queries() as captured:
                revision_create(
                    assignment=assignment,
                    turn=turn,
                    author=reviewer,
                    base_version=0,
                    decision=Decision.EDITED,
                    critique=draft.critique + " Edited.",
                    refinement=draft.refinement,
                    scores=dict.fromkeys(CRITERIA, 4),
                    time_spent_ms=30_000,
                )
            times.append(time.perf_counter() - started)
            queries.append(len(captured.captured_queries))
            if times[-1] >= max(times):
                slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:5]
    return {"times": times, "queries": queries, "slowest": [(float(q["time"]), q["sql"][:160]) for q in slowest]}


def summary_of(project: Any) -> list[tuple]:
    from quality.models import ReviewedScore

    return sorted(
        ReviewedScore.objects.filter(project=project).values_list(
            "turn_id", "assignment_id", "criterion", "draft_score", "final_score", "next_score", "submitted"
        )
    )


def ms(seconds: float) -> float:
    return seconds * 1000.0


def line(label: str, values: list[float], extra: str = "") -> str:
    return (
        f"  {label:<34.34} {ms(pct(values, 0.5)):>8.1f} {ms(pct(values, 0.95)):>8.1f} {ms(max(values)):>8.1f} "
        f"{len(values):>5} {extra}"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the quality figures (API and page) of a reviewed project.")
    parser.add_argument("--samples", type=int, default=63_000, help="reviewed samples seeded (default 63,000)")
    parser.add_argument("--requests", type=int, default=30, help="timed requests of each kind (default 30)")
    parser.add_argument("--queries", action="store_true", help="print the three slowest queries of each request")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use the database a --keep run left, seeded and rebuilt, as it is (implies --keep)",
    )
    add_common_arguments(parser, database_url=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.requests = 600, 5
    if args.reuse:
        args.keep = True
    if min(args.samples, args.requests) < 1:
        parser.error("samples and requests must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    db = Database.parse(args.database_url)
    lock = db.exclusive()
    raise_on_sigterm()
    whole = time.perf_counter()
    ok = True
    with tempfile.TemporaryDirectory(prefix="annotator-quality-bench-") as tmp:
        work = Path(tmp)
        bench_environment(db, work, DJANGO_ALLOWED_HOSTS="testserver")
        try:
            server = "(reused)" if args.reuse else db.recreate()
            print(
                f"Python {platform.python_version()}, PostgreSQL {server} ({db.host}:{db.port}/{db.name}), "
                f"{os.cpu_count()} CPUs; code: {code_version()}"
            )
            print(f"migrated in {migrate():.1f} s", flush=True)
            from django.contrib.auth import get_user_model
            from django.core.management import call_command
            from django.db import connection

            from feedback.models import Project, Sample

            project = Project.objects.filter(slug=SLUG).first() if args.reuse else None
            if project is None:
                started = time.perf_counter()
                project, researcher, _ = seed(SLUG, args.samples, 0)
                print(f"seeded {args.samples:,} reviewed samples in {time.perf_counter() - started:.1f} s", flush=True)
                started = time.perf_counter()
                call_command("quality_rebuild", "--project", project.slug, verbosity=0)
                rebuilt = time.perf_counter() - started
            else:
                researcher = get_user_model().objects.get(username=f"{SLUG}-researcher")
                args.samples = Sample.objects.filter(project=project).count()
                rebuilt = math.nan
                print(f"reusing the seeded project of {args.samples:,} samples", flush=True)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
                cursor.execute("SELECT COUNT(*) FROM quality_reviewedturn")
                rows = cursor.fetchone()[0]
                cursor.execute("SELECT COUNT(*) FROM quality_reviewedscore")
                score_rows = cursor.fetchone()[0]
            print(f"quality_rebuild: {rows:,} reviewed turns, {score_rows:,} score rows in {rebuilt:.1f} s", flush=True)
            results = measure(project, researcher, args.requests)
            # The review path, on a small project of its own (the big one's reviews bypassed the queue).
            fresh, _, people = seed(f"{SLUG}-fresh-{int(time.time())}", 0, FRESH)
            saves = review_path(fresh, people)
            kept = summary_of(fresh)
            call_command("quality_rebuild", "--project", fresh.slug, verbosity=0)
            agree = bool(kept) and kept == summary_of(fresh)
            header = f"  {'request (server time)':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'n':>5} queries"
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(
                f"\nSummary at {args.samples:,} samples (load average {load})\n"
                + header
                + "\n  "
                + "-" * (len(header) - 2)
            )
            for label, r in results.items():
                note = f"{r['queries']}" + ("" if r["status"] == 200 else f" (status {r['status']})")
                print(line(label, r["times"], note))
                if args.queries:
                    for seconds, sql in r["slowest"]:
                        print(f"      {seconds * 1000:8.1f} ms  {sql}")
            if saves["times"]:
                per = sorted(set(saves["queries"]))
                print(line("review save (receivers on)", saves["times"], f"{per}"))
                if args.queries:
                    for seconds, sql in saves["slowest"]:
                        print(f"      {seconds * 1000:8.1f} ms  {sql}")
            if not args.smoke:
                print()
                for label in ("API, no filter", "page, no filter"):
                    for kind in ("cold", "warm"):
                        if f"{label} ({kind})" not in results:
                            continue
                        p95 = ms(pct(results[f"{label} ({kind})"]["times"], 0.95))
                        met = p95 < TARGET_P95_MS
                        print(f"  [{'PASS' if met else 'MISS'}] {label}, {kind}: p95 {p95:.0f} ms (target < 1,000 ms)")
            bad = [label for label, r in results.items() if r["status"] != 200 or r["last_status"] != 200]
            if bad:
                print(f"  [FAIL] not 200: {bad}")
                ok = False
            print(f"  [{'PASS' if agree else 'FAIL'}] the kept summary equals the rebuilt one after the saves")
            ok = ok and agree
            if args.smoke:
                print(f"\n{SMOKE_NOTE}")
        except KeyboardInterrupt:
            print("\ninterrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            close_database(db, keep=args.keep, lock=lock)
    print(f"\nwhole run: {time.perf_counter() - whole:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
