"""Review benchmark: claiming, rendering and saving on the review queue, alone and under load.

    .venv/bin/python bench/review_bench.py [--samples 63000] [--ops 1000] [--clients 20] [--seconds 60]
        [--mode processes|threads] [--reviews-required 1] [--queries] [--database-url URL] [--keep]
    .venv/bin/python bench/review_bench.py --smoke    # 2,000 samples, 4 clients for 3 s: seconds, no targets
    .venv/bin/python bench/review_bench.py --team [--smoke]   # the team scenario below

Set-up: a PostgreSQL database of its own (dropped and created, then migrated; its name must contain
"bench"), seeded in bulk with one project of --samples samples, each with an annotated image (no
file), two answered turns and one successful draft per turn; one annotator who measures and one
per concurrent client. The queue is synced once before anything is timed (its time is printed).

Phases (server time, in this process, one operation at a time):
  1. claim + render: --ops times, ``sample_claim`` then a GET of the review page
     (``feedback:review-page``, slug and the assignment's pk) through Django's test client, logged
     in as the annotator: middleware, view and template, without an HTTP server. If that URL does
     not exist yet, the claim alone is measured and a note says so. Between operations the sample
     is submitted (each turn accepted), so every claim takes a new sample.
  2. save: --ops saves, ``revision_create`` with decision "edited" (new critique, refinement and
     scores) on each turn of claimed samples; the save of the last turn also submits the review.
  3. concurrency: --clients annotators, each with its own connection, claim for --seconds: each
     claim is submitted at once (every 10th is skipped instead), so the queue keeps moving. Then
     the database is checked for samples claimed twice: a (sample, lane) held by two leased or
     submitted assignments, a sample holding or submitted more than reviews_required times, and
     queue counters out of step with the assignments.

The clients are processes by default (spawned, each with its own django.setup()), since the site is
served by gunicorn's worker processes: with threads, the Python half of every claim waits on one
GIL, so claims/s would measure one interpreter rather than the server and the database, and fewer
claims would really overlap in the database, the very races the double-claim check is after.
--mode threads is there for comparison.

--team runs the scenario of a labelling team: reviews_required 2 (unless given), adjudication at the
default threshold, and gold checks at 5 %: one sample in 20 is reviewed twice (agreeing) and marked
gold before anything is timed, and the project serves gold one claim in 20. In phase 3 one review
in 8 edits every score to the far end of the scale from the draft, so that reviews disagree. After
phase 3 it also checks: no reviewer holds the same sample twice (in two lanes, or as a review and a
gold check), no gold sample nor any gold check is read by a release (``exports.records``, what
every format writes from), and every sample whose two reviews disagree has exactly one adjudication
case while no agreeing one has any.

It prints its figures and the targets met or missed; it never fails on time, only on double claims
(and, with --team, on the checks above).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import queue
import random
import sys
import tempfile
import threading
import time
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
    cpu_snapshot,
    migrate,
    raise_on_sigterm,
    setup_django,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/annotator_review_bench"
TARGET_P95_MS = 50.0
SLUG = "review-bench"
SEED = 20240620
CRITERIA = ["helpfulness", "honesty", "harmlessness"]
LABELS = ["person", "car", "dog", "cup", "chair", "bench", "bottle", "bicycle", "bus", "umbrella"]
CHUNK = 5000
GOLD_EVERY = 20  # the team scenario: one sample in 20 is gold, one claim in 20 serves gold
DISAGREE_EVERY = 8  # the team scenario: one review in 8 scores far from the draft


def gold_authors() -> list[Any]:
    """The two reviewers of the gold samples (not among the clients, who are checked against them)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return [User.objects.create_user(username=f"bench-gold-author-{i}") for i in (1, 2)]


# --------------------------------------------------------------------------------------------
# Seeding


def fill(template: str, n: int) -> str:
    subject, place = SUBJECTS[n % len(SUBJECTS)]
    return template.format(s=subject, p=place, c=COLOURS[n % len(COLOURS)])


def seed(count: int, reviews_required: int, clients: int, gold_every: int = 0) -> tuple[Any, Any, list[Any]]:
    """The project, the measuring annotator and one annotator per client."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from feedback.drafting.models import CallStatus, Draft
    from feedback.models import Image, Project, ProjectMembership, Role, Sample, Turn

    rng = random.Random(SEED)
    project = Project.objects.create(
        name="Review bench", slug=SLUG, reviews_required=reviews_required, gold_every=gold_every
    )
    for start in range(0, count, CHUNK):
        numbers = range(start, min(start + CHUNK, count))
        with transaction.atomic():
            images = Image.objects.bulk_create(
                Image(
                    project=project,
                    file_name=f"{n:012d}.jpg",
                    width=640,
                    height=480,
                    captions=[fill("A {c} {s} {p}.", n), fill("A photograph of a {s}.", n)],
                    object_boxes=[
                        {"label": rng.choice(LABELS), "bbox": [rng.randint(0, 400), rng.randint(0, 300), 120, 90]}
                        for _ in range(3)
                    ],
                )
                for n in numbers
            )
            samples = Sample.objects.bulk_create(
                Sample(
                    project=project,
                    external_id=f"bench-{n:07d}",
                    image=image,
                    reference_answer=fill("A {c} {s} {p}.", n),
                    content_hash=f"{n:064x}",
                )
                for n, image in zip(numbers, images, strict=True)
            )
            turns = Turn.objects.bulk_create(
                Turn(
                    sample=sample,
                    index=index,
                    user_message=fill("What is the {s} doing?" if index == 0 else "Describe the {c} {s} again.", n),
                    model_response=fill("The image shows a {c} {s} {p}. The light comes from the left.", n),
                )
                for n, sample in zip(numbers, samples, strict=True)
                for index in (0, 1)
            )
            Draft.objects.bulk_create(
                Draft(
                    turn=turn,
                    status=CallStatus.OK,
                    model="bench-judge",
                    endpoint="http://127.0.0.1:8001/v1",
                    critique=fill("The answer names the {s} but misses what is {p}.", turn.sample_id),
                    refinement=fill("Mention that the {c} {s} is {p}.", turn.sample_id),
                    scores={c: rng.randint(1, 7) for c in CRITERIA},
                    overall=rng.randint(1, 7),
                    prompt_version="v1",
                    prompt_hash="0" * 64,
                )
                for turn in turns
            )
    User = get_user_model()
    users = [User.objects.create_user(username=f"bench-annotator-{i:02d}") for i in range(clients + 1)]
    ProjectMembership.objects.bulk_create(
        ProjectMembership(project=project, user=user, role=Role.ANNOTATOR) for user in users
    )
    return project, users[0], users[1:]


# --------------------------------------------------------------------------------------------
# Operations


def submit(assignment: Any, user: Any, *, disagree: bool = False) -> None:
    """Accepts the draft of every answered turn: the last save submits the review. ``disagree``: edits
    every score to the far end of the scale from the draft's instead."""
    from feedback.models import Turn
    from feedback.review.models import Decision
    from feedback.review.revisions import latest_draft, revision_create

    for turn in Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False).order_by("index"):
        if not disagree:
            revision_create(assignment=assignment, turn=turn, author=user, base_version=0, decision=Decision.ACCEPTED)
            continue
        draft = latest_draft(turn)
        drafted = draft.scores if draft is not None else {}
        revision_create(
            assignment=assignment,
            turn=turn,
            author=user,
            base_version=0,
            decision=Decision.EDITED,
            critique="The draft misreads the image.",
            scores={c: 1 if int(drafted.get(c, 4)) >= 4 else 7 for c in CRITERIA},
        )


def mark_gold(project: Any, every: int, reviewers: list[Any]) -> int:
    """Every ``every``-th sample reviewed by two ``reviewers`` (accepting the drafts, in bulk) and
    marked gold with the accepted drafts as the expected answer; returns the gold samples made."""
    from django.db import transaction
    from django.utils import timezone

    from feedback.drafting.models import Draft
    from feedback.review.models import Assignment, Decision, GoldSample, QueueItem, QueueState, Revision

    now = timezone.now()
    ids = list(
        QueueItem.objects.filter(project=project).order_by("sample_id").values_list("sample_id", flat=True)[::every]
    )
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic():
            list(QueueState.objects.select_for_update().filter(project=project).values_list("pk"))
            assignments = Assignment.objects.bulk_create(
                Assignment(
                    project=project,
                    sample_id=sample_id,
                    reviewer=reviewer,
                    lane=lane,
                    state=Assignment.State.SUBMITTED,
                    claimed_at=now,
                    expires_at=now,
                    finished_at=now,
                )
                for sample_id in chunk
                for lane, reviewer in enumerate(reviewers[:2], 1)
            )
            drafts = list(Draft.objects.filter(turn__sample_id__in=chunk).select_related("turn"))
            by_sample: dict[int, list[Any]] = {}
            for draft in drafts:
                by_sample.setdefault(draft.turn.sample_id, []).append(draft)
            Revision.objects.bulk_create(
                Revision(
                    assignment=a,
                    turn_id=d.turn_id,
                    version=1,
                    author_id=a.reviewer_id,
                    draft=d,
                    decision=Decision.ACCEPTED,
                    critique=d.critique,
                    refinement=d.refinement,
                    scores=d.scores,
                )
                for a in assignments
                for d in by_sample[a.sample_id]
            )
            QueueItem.objects.filter(sample_id__in=chunk).update(holding=2, reviews_done=2, open=False)
            GoldSample.objects.bulk_create(
                GoldSample(
                    project=project,
                    sample_id=sample_id,
                    marked_by=reviewers[0],
                    marked_at=now,
                    expected={
                        str(d.turn_id): {
                            "decision": Decision.ACCEPTED,
                            "critique": d.critique,
                            "refinement": d.refinement,
                            "scores": d.scores,
                            "reason": "",
                        }
                        for d in by_sample[sample_id]
                    },
                )
                for sample_id in chunk
            )
    return len(ids)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def page_url(project: Any, assignment_pk: int) -> str | None:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("feedback:review-page", kwargs={"slug": project.slug, "pk": assignment_pk})
    except NoReverseMatch:
        return None


def phase_claim(project: Any, user: Any, ops: int, warmup: int) -> dict[str, Any]:
    from django.test import Client

    from feedback.review.claims import sample_claim

    client = Client()
    client.force_login(user)
    out: dict[str, Any] = {"claim": [], "render": [], "bad": 0, "first_bad": "", "empty": 0, "page_note": ""}
    if page_url(project, 1) is None:
        out["page_note"] = "URL feedback:review-page does not exist yet"
    for i in range(warmup + ops):
        started = time.perf_counter()
        assignment = sample_claim(project=project, reviewer=user)
        claimed = time.perf_counter()
        if assignment is None:
            out["empty"] += 1
            break
        rendered = None
        if not out["page_note"]:
            url = page_url(project, assignment.pk)
            before = time.perf_counter()
            try:
                if url is None:
                    raise LookupError("no review page URL")
                response = client.get(url)
                _ = response.getvalue() if response.streaming else response.content
            except Exception as error:  # a page under construction: measure the claim alone
                out["page_note"] = f"the review page failed ({type(error).__name__}: {error})"
                out["render"].clear()
            else:
                rendered = time.perf_counter() - before
                if response.status_code != 200:
                    out["bad"] += 1
                    out["first_bad"] = out["first_bad"] or f"{response.status_code} at {url}"
        if i >= warmup:
            out["claim"].append(ms(claimed - started))
            if rendered is not None:
                out["render"].append(ms(rendered))
        submit(assignment, user)
    out["rendering"] = not out["page_note"]
    return out


def phase_save(project: Any, user: Any, ops: int) -> dict[str, list[float]]:
    from feedback.models import Turn
    from feedback.review.claims import sample_claim
    from feedback.review.models import Decision
    from feedback.review.revisions import latest_draft, revision_create

    rng = random.Random(SEED + 1)
    out: dict[str, list[float]] = {"all": [], "completing": [], "other": []}
    while len(out["all"]) < ops:
        assignment = sample_claim(project=project, reviewer=user)
        if assignment is None:
            break
        for turn in Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False):
            draft = latest_draft(turn)
            if draft is None:
                raise RuntimeError(f"turn {turn.pk} has no draft: the seeding gives every answered turn one")
            critique = f"{draft.critique} It also gets the colour wrong."
            scores = {c: rng.randint(1, 7) for c in project.criteria}
            started = time.perf_counter()
            result = revision_create(
                assignment=assignment,
                turn=turn,
                author=user,
                base_version=0,
                decision=Decision.EDITED,
                critique=critique,
                refinement=f"{draft.refinement} Name the colour.",
                scores=scores,
                time_spent_ms=rng.randint(5_000, 90_000),
            )
            took = ms(time.perf_counter() - started)
            out["all"].append(took)
            out["completing" if result.completed else "other"].append(took)
    return out


def queries_of(project: Any, user: Any, show: bool, render: bool) -> dict[str, int]:
    """Queries of one claim, one page render and one save (the slowest printed with --queries)."""
    from django.db import connection
    from django.test import Client

    from feedback.models import Turn
    from feedback.review.claims import sample_claim
    from feedback.review.models import Decision
    from feedback.review.revisions import revision_create

    counts: dict[str, int] = {}

    def capture(name: str, action) -> Any:
        timed: list[tuple[float, str, Any]] = []

        def wrapper(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timed.append((ms(time.perf_counter() - started), sql, params))

        with connection.execute_wrapper(wrapper):
            result = action()
        counts[name] = len(timed)
        if show:
            print(f"\n{name}: {len(timed)} queries in {sum(t for t, _, _ in timed):.2f} ms, slowest first:")
            for took, sql, params in sorted(timed, key=lambda q: -q[0])[:6]:
                print(f"  {took:7.2f} ms  {sql[:500]}  {str(params)[:120]}")
        return result

    assignment = capture("claim", lambda: sample_claim(project=project, reviewer=user))
    if assignment is None:
        return counts
    url = page_url(project, assignment.pk)
    if url and render:
        client = Client()
        client.force_login(user)
        capture("render", lambda: client.get(url))
    turns = list(Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False))
    for n, turn in enumerate(turns, 1):
        capture(
            "save" if n < len(turns) else "save (submits)",
            lambda turn=turn: revision_create(
                assignment=assignment,
                turn=turn,
                author=user,
                base_version=0,
                decision=Decision.EDITED,
                critique="Edited.",
                scores=dict.fromkeys(project.criteria, 4),
            ),
        )
    return counts


# --------------------------------------------------------------------------------------------
# Concurrent clients


def client_loop(user_id: int, project_id: int, seconds: float, barrier: Any, disagree_every: int = 0) -> dict[str, Any]:
    """One annotator claiming and submitting (every 10th skipped) until the time is up."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from feedback.models import Project
    from feedback.review.claims import lease_end, sample_claim
    from feedback.review.models import Assignment

    user = get_user_model().objects.get(pk=user_id)
    project = Project.objects.get(pk=project_id)
    out: dict[str, Any] = {"claims": 0, "skips": 0, "empty": 0, "errors": 0, "first_error": "", "latency": []}
    barrier.wait(timeout=300)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        try:
            before = time.perf_counter()
            assignment = sample_claim(project=project, reviewer=user)
            out["latency"].append(ms(time.perf_counter() - before))
            if assignment is None:
                out["empty"] += 1
                break
            out["claims"] += 1
            if out["claims"] % 10 == 0:
                lease_end(assignment=assignment, user=user, state=Assignment.State.SKIPPED)
                out["skips"] += 1
            else:
                submit(assignment, user, disagree=bool(disagree_every) and out["claims"] % disagree_every == 3)
        except Exception as error:  # counted and reported; the client goes on
            out["errors"] += 1
            out["first_error"] = out["first_error"] or f"{type(error).__name__}: {error}"[:300]
    out["seconds"] = time.perf_counter() - started
    connection.close()
    return out


def _process_client(
    user_id: int, project_id: int, seconds: float, barrier: Any, results: Any, disagree_every: int = 0
) -> None:
    setup_django()
    results.put(client_loop(user_id, project_id, seconds, barrier, disagree_every))


def phase_concurrent(
    project: Any, users: list[Any], seconds: float, mode: str, db: Database, disagree_every: int = 0
) -> dict[str, Any]:
    from django.db import connections

    clients = len(users)
    if mode == "processes":
        ctx = multiprocessing.get_context("spawn")
        barrier: Any = ctx.Barrier(clients + 1)
        results: Any = ctx.Queue()
        workers: list[Any] = [
            ctx.Process(
                target=_process_client,
                args=(u.pk, project.pk, seconds, barrier, results, disagree_every),
                daemon=True,
            )
            for u in users
        ]
    else:
        barrier = threading.Barrier(clients + 1)
        results = queue.Queue()
        workers = [
            threading.Thread(
                target=lambda u=u: results.put(client_loop(u.pk, project.pk, seconds, barrier, disagree_every))
            )
            for u in users
        ]
    connections.close_all()
    stats_before = db.stats()
    for worker in workers:
        worker.start()
    barrier.wait(timeout=300)
    cpu_before = cpu_snapshot({"clients": os.getpid()})
    done = [results.get(timeout=seconds + 300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    cpu = cpu_snapshot({"clients": os.getpid()}).minus(cpu_before)
    out = {key: sum(r[key] for r in done) for key in ("claims", "skips", "empty", "errors")}
    out["first_error"] = next((r["first_error"] for r in done if r["first_error"]), "")
    out["latency"] = [v for r in done for v in r["latency"]]
    out["seconds"] = max(r["seconds"] for r in done)
    out["rate"] = sum(r["claims"] / r["seconds"] for r in done if r["seconds"])  # each client's rate, summed
    out["cpu"] = cpu
    stats_after = db.stats()
    out["commits"] = stats_after["commits"] - stats_before["commits"]
    out["rollbacks"] = stats_after["rollbacks"] - stats_before["rollbacks"]
    return out


def double_claims(project: Any) -> dict[str, int]:
    from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
    from django.db.models.functions import Coalesce

    from feedback.review.models import Assignment, QueueItem

    # Gold checks hold none of a sample's places: the lanes and counters are the reviews'.
    held = Assignment.objects.filter(project=project, state__in=Assignment.HOLDING, gold=False)
    submitted = held.filter(state=Assignment.State.SUBMITTED)
    needed = project.reviews_required

    def per_sample(qs, state_filter: Q) -> Any:
        counted = (
            qs.filter(sample_id=OuterRef("sample_id"))
            .order_by()
            .values("sample_id")
            .annotate(n=Count("id", filter=state_filter))
            .values("n")
        )
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    items = QueueItem.objects.filter(project=project).annotate(
        real_holding=per_sample(held, Q()), real_done=per_sample(submitted, Q())
    )
    return {
        "lane held twice": held.values("sample_id", "lane").annotate(n=Count("id")).filter(n__gt=1).count(),
        "held > required": held.values("sample_id").annotate(n=Count("id")).filter(n__gt=needed).count(),
        "submitted > required": submitted.values("sample_id").annotate(n=Count("id")).filter(n__gt=needed).count(),
        "queue counters off": items.exclude(holding=F("real_holding"), reviews_done=F("real_done")).count(),
    }


# --------------------------------------------------------------------------------------------
# Report


def line(name: str, values: list[float], target: float | None = None) -> str:
    if not values:
        return f"  {name:<34} {'-':>8} {'-':>8} {'-':>8} {0:>6}"
    p95 = pct(values, 0.95)
    verdict = "" if target is None else f"  p95 < {target:g} ms: {'PASS' if p95 < target else 'MISS'}"
    return f"  {name:<34} {pct(values, 0.5):>8.2f} {p95:>8.2f} {max(values):>8.2f} {len(values):>6,}{verdict}"


def print_summary(claim: dict, save: dict, conc: dict, doubles: dict[str, int], args: argparse.Namespace) -> bool:
    target = None if args.smoke else TARGET_P95_MS
    header = f"  {'operation (server time)':<34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'n':>6}"
    print("\nSummary\n" + header + "\n  " + "-" * (len(header) - 2))
    print(line("claim alone", claim["claim"]))
    if claim["rendering"]:
        print(line("render review page", claim["render"]))
        total = [a + b for a, b in zip(claim["claim"], claim["render"], strict=True)]
        print(line("claim + render review page", total, target))
    else:
        print(line("claim (page not there yet)", claim["claim"], target))
    print(line("save (edited)", save["all"], target))
    print(line("  save that does not submit", save["other"]))
    print(line("  save that submits the review", save["completing"]))
    print(line(f"claim under load ({args.clients} {args.mode})", conc["latency"]))
    rate = conc["rate"]
    twice = doubles["lane held twice"] + doubles["held > required"] + doubles["submitted > required"]
    print(
        f"\n  {args.clients} concurrent clients ({args.mode}), {conc['seconds']:.1f} s: {conc['claims']:,} claims, "
        f"{rate:,.1f} claims/s ({conc['skips']:,} skipped, {conc['empty']} found the queue empty, "
        f"{conc['errors']} errors)"
    )
    print(f"  [{'PASS' if twice == 0 else 'FAIL'}] samples claimed twice: {twice} (target 0); {doubles}")
    if not claim["rendering"]:
        print(f"  note: {claim['page_note']}: phase 1 measured the claim alone")
    if claim["bad"]:
        print(f"  note: {claim['bad']} review page responses were not 200 (first: {claim['first_bad']})")
    if conc["first_error"]:
        print(f"  note: first client error: {conc['first_error']}")
    if args.smoke:
        print(f"\n{SMOKE_NOTE}")
    return twice == 0 and not doubles["queue counters off"]


def team_checks(project: Any) -> dict[str, Any]:
    """The team scenario's checks: one sample per reviewer, gold out of releases, each disagreement
    adjudicated once."""
    from collections import defaultdict

    from django.db.models import Count

    from exports.records import sample_chunks
    from feedback.review.disagreement import turn_disagreements
    from feedback.review.models import AdjudicationCase, Assignment, GoldSample, Revision

    every = Assignment.objects.filter(project=project)
    held = every.filter(state__in=Assignment.HOLDING)
    claimed = every.exclude(reviewer__username__startswith="bench-gold-author")  # not the bulk gold reviews
    out: dict[str, Any] = {
        "reviewer holds a sample twice": held.values("sample_id", "reviewer_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "gold checks": every.filter(gold=True).count(),
        "claims": claimed.count(),
    }
    checks = set(every.filter(gold=True).values_list("id", flat=True))
    check_revisions = set(Revision.objects.filter(assignment_id__in=checks).values_list("id", flat=True))
    gold = set(GoldSample.objects.filter(project=project).values_list("sample_id", flat=True))
    started = time.perf_counter()
    released = gold_released = check_released = 0
    for chunk in sample_chunks(project):
        for sample in chunk:
            released += 1
            gold_released += sample.id in gold
            check_released += sum(r.revision_id in check_revisions for t in sample.turns for r in t.reviews)
    out["samples read by a release"] = released
    out["release read in s"] = round(time.perf_counter() - started, 1)
    out["gold samples in a release"] = gold_released
    out["gold checks in a release"] = check_released

    # Each submitted, unflagged review's latest revision per turn, of samples with two reviews.
    reviews = every.filter(state=Assignment.State.SUBMITTED, gold=False, flag="")
    pairs = reviews.values("sample_id").annotate(n=Count("id")).filter(n__gte=project.reviews_required)
    two = set(pairs.values_list("sample_id", flat=True)) - gold
    latest: dict[tuple[int, int], Any] = {}
    for revision in Revision.objects.filter(assignment__in=reviews, assignment__sample_id__in=two).order_by(
        "turn_id", "assignment_id", "version"
    ):
        latest[(revision.turn_id, revision.assignment_id)] = revision
    by_sample: dict[int, dict[int, list[Any]]] = defaultdict(lambda: defaultdict(list))
    sample_of = dict(
        Revision.objects.filter(id__in=[r.id for r in latest.values()]).values_list("id", "turn__sample_id")
    )
    for (turn_id, _), revision in latest.items():
        by_sample[sample_of[revision.id]][turn_id].append(revision)
    disagreeing = {
        sample_id
        for sample_id, turns in by_sample.items()
        if any(
            len(rs) >= 2 and turn_disagreements(rs, project.criteria, project.adjudication_threshold)
            for rs in turns.values()
        )
    }
    cases = dict(
        AdjudicationCase.objects.filter(project=project)
        .values("sample_id")
        .annotate(n=Count("id"))
        .values_list("sample_id", "n")
    )
    out["samples with all reviews"] = len(two)
    out["disagreeing"] = len(disagreeing)
    out["disagreeing without one case"] = sum(cases.get(s, 0) != 1 for s in disagreeing)
    out["agreeing with a case"] = sum(1 for s in cases if s not in disagreeing)
    return out


def print_team(checks: dict[str, Any]) -> bool:
    share = checks["gold checks"] / checks["claims"] if checks["claims"] else 0.0
    print(
        f"\n  gold: {checks['gold checks']:,} of {checks['claims']:,} claims were gold checks ({100 * share:.1f} %); "
        f"a release read {checks['samples read by a release']:,} samples in {checks['release read in s']} s"
    )
    print(
        f"  adjudication: {checks['samples with all reviews']:,} samples have both reviews, "
        f"{checks['disagreeing']:,} of them disagree"
    )
    failed = False
    for name in (
        "reviewer holds a sample twice",
        "gold samples in a release",
        "gold checks in a release",
        "disagreeing without one case",
        "agreeing with a case",
    ):
        failed = failed or checks[name] != 0
        print(f"  [{'PASS' if checks[name] == 0 else 'FAIL'}] {name}: {checks[name]} (target 0)")
    return not failed


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the review queue: claim, render, save, concurrency.")
    parser.add_argument("--samples", type=int, default=63_000, help="samples seeded (default 63,000)")
    parser.add_argument("--ops", type=int, default=1000, help="operations timed in phases 1 and 2 (default 1,000)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed claims before phase 1 (default 10)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients of phase 3 (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of phase 3 (default 60)")
    parser.add_argument(
        "--mode", default="processes", choices=["processes", "threads"], help="clients as (default processes)"
    )
    parser.add_argument("--reviews-required", type=int, default=1, help="the project's reviews per sample (default 1)")
    parser.add_argument(
        "--team",
        action="store_true",
        help="reviews_required 2, adjudication and 5 %% gold, with the team checks (see the docstring)",
    )
    parser.add_argument("--queries", action="store_true", help="print the slowest queries of one claim, render, save")
    add_common_arguments(parser, database_url=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    if args.team and args.reviews_required == 1:
        args.reviews_required = 2
    if args.smoke:
        # Every phase, small: the concurrent clients still race for the queue and the double-claim
        # check still runs.
        args.samples, args.ops, args.warmup, args.clients, args.seconds = 2_000, 50, 3, 4, 3.0
    if min(args.samples, args.ops, args.clients, args.reviews_required) < 1 or args.seconds <= 0:
        parser.error("samples, ops, clients, reviews-required and seconds must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    db = Database.parse(args.database_url)
    lock = db.exclusive()
    raise_on_sigterm()
    whole = time.perf_counter()
    ok = False
    with tempfile.TemporaryDirectory(prefix="annotator-review-bench-") as tmp:
        work = Path(tmp)
        bench_environment(db, work, DJANGO_ALLOWED_HOSTS="testserver")  # the test client's host
        try:
            server = db.recreate()
            print(
                f"Python {platform.python_version()}, PostgreSQL {server} ({db.host}:{db.port}/{db.name}), "
                f"{os.cpu_count()} CPUs; code: {code_version()}"
            )
            migrated = migrate()
            from django.db import connection

            from feedback.review.claims import queue_sync

            print(f"migrated in {migrated:.1f} s", flush=True)
            started = time.perf_counter()
            gold_every = GOLD_EVERY if args.team else 0
            project, measurer, client_users = seed(args.samples, args.reviews_required, args.clients, gold_every)
            print(f"seeded {args.samples:,} samples (2 turns, 1 draft each) in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            queue_sync(project)
            print(f"first queue sync (every sample enters the queue): {time.perf_counter() - started:.1f} s")
            if args.team:
                started = time.perf_counter()
                made = mark_gold(project, GOLD_EVERY, gold_authors())
                print(
                    f"team: reviews_required {project.reviews_required}, adjudication threshold "
                    f"{project.adjudication_threshold}, {made:,} gold samples, gold served 1 claim in {GOLD_EVERY} "
                    f"(marked in {time.perf_counter() - started:.1f} s)"
                )
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            print()

            print(f"phase 1: claim + render, {args.ops:,} operations ...", flush=True)
            claim = phase_claim(project, measurer, args.ops, args.warmup)
            print(f"phase 2: save, {args.ops:,} saves ...", flush=True)
            save = phase_save(project, measurer, args.ops)
            counts = queries_of(project, measurer, args.queries, claim["rendering"])
            print(f"queries of one operation: {counts}")
            print(f"phase 3: {args.clients} clients ({args.mode}) for {args.seconds:g} s ...", flush=True)
            conc = phase_concurrent(
                project, client_users, args.seconds, args.mode, db, DISAGREE_EVERY if args.team else 0
            )
            cpu, claims = conc["cpu"], max(1, conc["claims"])
            busy = cpu["machine busy"] / cpu["machine total"] if cpu["machine total"] else 0.0
            print(
                f"  CPU per claim loop (claim, then submit or skip): clients {ms(cpu['clients'] / claims):.1f} ms, "
                f"PostgreSQL {ms(cpu['postgresql'] / claims):.1f} ms; machine {100 * busy:.0f} % busy; "
                f"{conc['commits'] / claims:.1f} transactions per loop (autocommit queries count), "
                f"{conc['rollbacks']} rollbacks"
            )
            doubles = double_claims(project)
            ok = print_summary(claim, save, conc, doubles, args)
            if args.team:
                ok = print_team(team_checks(project)) and ok
        except KeyboardInterrupt:
            print("\ninterrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            close_database(db, keep=args.keep, lock=lock)
    print(f"\nwhole run: {time.perf_counter() - whole:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
