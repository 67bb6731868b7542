"""Drafting benchmark: a draft job end to end on a real Celery worker against the LLM simulator.

    .venv/bin/python bench/drafting_bench.py [--scenario throughput|cpu|ratelimit|batch|profile|all]
        [--turns N] [--latency-ms 250] [--concurrency 32] [--window 200] [--rpm 1200] [--profile]
        [--batch-delay 60] [--batch-fail-rate 0.01]
        [--keep] [--worker-env KEY=VALUE ...] [--db-reuse-max N] [--pool prefork|threads|solo]
    .venv/bin/python bench/drafting_bench.py --smoke  # every scenario and the profile at 40 turns, no targets

Set-up: a PostgreSQL database of its own (dropped and created, then migrated; its name must
contain "bench"), a Redis database as broker and rate-limit store (flushed before each worker
starts), the simulator (``python -m simulator``, started once and set for each scenario
through its /_simulator/config) and, for each scenario, a fresh worker (threads pool) on the default
and llm queues; each is a child process leading a process group of its own, stopped however the
run ends (Ctrl-C and SIGTERM included). Each scenario drafts a project of its own: one turn per
sample, with a response, and image annotations (captions and object boxes; no image files). The
job is created in this process with ``job_create`` on the built-in ``default`` connection (the
simulator's URL as ANNOTATOR_LLM_BASE_URL, here and in the worker); the worker runs the dispatcher
and the items.
Times run from the job's creation to its completion (the job's database timestamps). Two runs
against the same database or broker cannot overlap: the second stops at once (advisory locks).

Scenarios:
  throughput  5,000 turns at 250 ms: drafts/s against concurrency / latency.
  cpu         3,000 turns at 0 ms: the platform's CPU per draft (the worker's process tree, from
              /proc, between job creation and completion); the simulator, PostgreSQL and Redis
              are reported apart and not counted.
  ratelimit   3,000 turns at 250 ms, worker and simulator limited to --rpm: requests/min in the
              steady state (without the first and last 10 s) and the 429s the simulator answered.
  batch       63,000 turns in batch mode (the simulator's Batch API, a completion delay of
              --batch-delay s, --batch-fail-rate of the lines failing and asked again live): the
              platform's CPU per draft (compare the cpu scenario's), the worker's peak RSS (its
              process tree, sampled, and before the job), and the time from the job's creation to
              its completion less the delay (writing, uploading, reading and storing).
  profile     (also --profile) no worker: item_run in a loop in this process, as a worker's
              task runs it (database connections closed around each item or kept, as the
              worker would), under cProfile on a CPU clock, with the queries of each item
              counted; the CPU per draft of the cpu scenario less this is Celery's share.

Experiments, which change how the worker runs but never the application: --worker-env adds
environment variables; --db-reuse-max N starts the worker with Celery's CELERY_DB_REUSE_MAX=N,
so that it keeps its database connections across tasks (for code that does not set it);
--pool prefork compares the process pool.

It prints its figures and the targets met or missed; it never fails on time, only when a job
does not store exactly one successful draft per turn.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import platform
import pstats
import random
import re
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    COLOURS,
    SMOKE_NOTE,
    SUBJECTS,
    Child,
    Children,
    CpuSnapshot,
    Database,
    add_common_arguments,
    bench_environment,
    close_database,
    code_version,
    cpu_snapshot,
    flush_redis,
    http_json,
    migrate,
    process_tree,
    raise_on_sigterm,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/annotator_draft_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/13"
SCENARIOS = ("throughput", "cpu", "ratelimit", "batch")
SMOKE_TURNS = 40
DEFAULT_TURNS = {"throughput": 5000, "cpu": 3000, "ratelimit": 3000, "batch": 63000, "profile": 600}
BATCH_POLL_INTERVAL = 2.0  # the worker's ANNOTATOR_JOB_BATCH_POLL_INTERVAL in the batch scenario
TARGET_RATIO = 0.85
TARGET_CPU_MS = 5.0
TARGET_RPM_DEVIATION = 0.05
EDGE_SECONDS = 10.0  # left out at each end of the rate-limit run
SAMPLE_EVERY = 0.25  # seconds between two readings of the simulator's counters
SEED = 20240611


# --------------------------------------------------------------------------------------------
# Test data

LABELS = ["person", "car", "dog", "cup", "chair", "bench", "bottle", "bicycle", "bus", "umbrella"]
QUESTIONS = [
    "What is the {s} in this picture doing, and what does the setting tell us about the time of day?",
    "Describe the {s} in the image in detail, including its colour, its position and anything unusual.",
    "How many distinct objects can you see near the {s}, and how are they arranged relative to each other?",
    "Is there anything in this photograph that suggests where it was taken? Focus on the {s}.",
]
SENTENCES = [
    "The image shows a {c} {s} {p}.",
    "In the foreground the {s} takes up most of the frame, with soft light falling from the left.",
    "The background is slightly blurred, which suggests a wide aperture.",
    "There appear to be a few people in the distance, although their faces cannot be made out.",
    "The {c} tones of the {s} stand out against the muted surroundings.",
    "Judging by the shadows, the picture was most likely taken in the late afternoon.",
    "A small sign is visible on the right, but the text on it is too small to read.",
    "There is a second object partly hidden behind the {s}, possibly a bag or a box.",
]
CRITERIA = ["helpfulness", "honesty", "harmlessness"]


def make_project(slug: str, count: int) -> Any:
    """A project of `count` samples with one turn each (a response present) and annotated images."""
    from feedback.models import Image, Project, Sample, Turn

    rng = random.Random(f"{SEED}-{slug}")
    project = Project.objects.create(
        name=f"Drafting bench {slug}",
        slug=slug,
        guidelines="Judge the response against the annotations; be specific about objects and positions.",
    )

    def fill(template: str, n: int) -> str:
        subject, place = SUBJECTS[n % len(SUBJECTS)]
        return template.format(s=subject, p=place, c=COLOURS[n % len(COLOURS)])

    images = Image.objects.bulk_create(
        [
            Image(
                project=project,
                file_name=f"{100_000 + n * 97:012d}.jpg",
                width=640,
                height=480,
                format="JPEG",
                captions=[fill("A {c} {s} {p}.", n), fill("A photograph of a {s}.", n)],
                object_boxes=[
                    {"label": rng.choice(LABELS), "bbox": [rng.randint(0, 300), rng.randint(0, 200), 120, 90]},
                    {"label": rng.choice(LABELS), "bbox": [rng.randint(0, 400), rng.randint(0, 300), 64.5, 48]},
                ],
            )
            for n in range(count)
        ],
        batch_size=1000,
    )
    samples = Sample.objects.bulk_create(
        [
            Sample(
                project=project,
                external_id=f"{slug}-{n:06d}",
                image=images[n],
                target_criterion=CRITERIA[n % len(CRITERIA)],
                reference_answer=" ".join(fill(s, n) for s in rng.sample(SENTENCES, 4)),
                source_dataset="bench",
                source_model="bench-vlm-7b",
                content_hash=hashlib.sha256(f"{slug}-{n}".encode()).hexdigest(),
            )
            for n in range(count)
        ],
        batch_size=1000,
    )
    Turn.objects.bulk_create(
        [
            Turn(
                sample=sample,
                index=0,
                user_message=fill(rng.choice(QUESTIONS), n),
                model_response=" ".join(fill(s, n) for s in rng.sample(SENTENCES, rng.randint(4, 6))),
            )
            for n, sample in enumerate(samples)
        ],
        batch_size=1000,
    )
    return project


# --------------------------------------------------------------------------------------------
# The simulator and the worker


class Simulator:
    def __init__(self, children: Children, work: Path, env: dict[str, str]) -> None:
        log = work / "simulator.log"
        self.child = children.start(
            "simulator",
            [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", "0"],
            env=env,
            log_path=log,
        )
        found: list[str] = []

        def listening() -> bool:
            match = re.search(r"LLM simulator on (http://\S+/v1)", self.child.output())
            if match:
                found.append(match.group(1))
            return bool(found)

        self.child.wait_for(listening, 30, "listening")
        self.url = found[0]
        self.root = self.url[: -len("/v1")]

    def configure(
        self, *, latency_ms: float, rpm: float, batch_delay_s: float = 0.0, batch_fail_rate: float = 0.0
    ) -> None:
        http_json(
            f"{self.root}/_simulator/config",
            {
                "latency_ms": latency_ms,
                "rpm": rpm,
                "tpm": 0,
                "batch_delay_s": batch_delay_s,
                "batch_fail_rate": batch_fail_rate,
            },
        )
        http_json(f"{self.root}/_simulator/reset", {})

    def stats(self) -> dict[str, Any]:
        return http_json(f"{self.root}/_simulator/stats")


def start_worker(
    children: Children,
    work: Path,
    label: str,
    *,
    concurrency: int,
    env: dict[str, str],
    pool: str = "prefork",
    db_reuse_max: int = 0,
) -> tuple[Child, float]:
    """A worker on both queues; returns it once it answers a ping with its pool up."""
    from annotator.celery import app

    node = f"drafting-bench-{label}@{socket.gethostname()}"
    if db_reuse_max:
        # The same worker, with Celery's CELERY_DB_REUSE_MAX added to the settings: what a one-line
        # settings change would do (measured here, not made).
        boot = (
            "import sys; from annotator.celery import app; "
            f"app.conf.update(CELERY_DB_REUSE_MAX={int(db_reuse_max)}); app.worker_main(sys.argv[1:])"
        )
        command = [sys.executable, "-c", boot]
    else:
        command = [sys.executable, "-m", "celery", "-A", "annotator"]
    argv = [
        *command,
        "worker",
        "-Q",
        "default,llm",
        "-c",
        str(concurrency),
        "--pool",
        pool,
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "-n",
        node,
    ]
    started = time.perf_counter()
    worker = children.start(f"worker {label}", argv, env=env, log_path=work / f"worker-{label}.log")

    def ready() -> bool:
        if pool == "prefork" and len(process_tree(worker.pid)) < concurrency + 1:
            return False
        return bool(app.control.ping(destination=[node], timeout=1.0))

    worker.wait_for(ready, 120, "ready")
    return worker, time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# One job


@dataclass
class Run:
    scenario: str
    turns: int
    latency_ms: float
    concurrency: int
    rpm: int
    pool: str = "prefork"
    worker_start_s: float = 0.0
    timed_out: bool = False
    state: str = ""
    seconds: float = 0.0
    dispatch_s: float = 0.0
    first_draft_s: float = 0.0
    drafts_ok: int = 0
    drafts_failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    duplicates: int = 0
    missing: int = 0
    items: dict[str, int] = field(default_factory=dict)
    throttled_items: int = 0
    attempts: int = 0
    sim: dict[str, Any] = field(default_factory=dict)
    samples: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    draft_times: list[float] = field(default_factory=list)  # seconds since the job's creation
    created_at: float = 0.0  # epoch seconds
    cpu: dict[str, float] = field(default_factory=dict)
    cpu_main: float = 0.0  # the worker's main process alone
    db: dict[str, int] = field(default_factory=dict)
    mode: str = "live"
    batch_delay_s: float = 0.0
    batch_fail_rate: float = 0.0
    rss_idle_kb: int = 0  # the worker's process tree before the job
    rss_peak_kb: int = 0  # its largest sampled RSS while the job ran
    parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def limit_per_s(self) -> float | None:
        if self.rpm:
            return self.rpm / 60.0
        if self.latency_ms > 0:
            return self.concurrency / (self.latency_ms / 1000.0)
        return None

    @property
    def rate(self) -> float:
        return self.drafts_ok / self.seconds if self.seconds else 0.0

    @property
    def steady_rate(self) -> float:
        """Drafts/s between the first and last 5 s of drafts: the job without its ramp-up and tail."""
        times = self.draft_times
        if len(times) < 2 or times[-1] - times[0] <= 20:
            return self.rate
        a, b = times[0] + 5, times[-1] - 5
        return sum(1 for t in times if a <= t < b) / (b - a)

    def problems(self) -> list[str]:
        found = []
        if self.timed_out:
            found.append(f"timed out in state {self.state}")
        if self.state != "completed":
            found.append(f"job state {self.state}")
        if self.drafts_ok != self.turns:
            found.append(f"{self.drafts_ok:,} successful drafts stored, not {self.turns:,}")
        if self.duplicates:
            found.append(f"{self.duplicates} turns with two successful drafts")
        if self.missing:
            found.append(f"{self.missing} turns without a successful draft")
        return found


def run_job(run: Run, project: Any, *, sim: Simulator, worker: Child, db: Database, deadline_s: float) -> None:
    import redis
    from django.conf import settings
    from django.db.models import Count, Exists, OuterRef, Sum

    from feedback.drafting.models import CallStatus, Draft
    from feedback.jobs.models import Job, JobItem
    from feedback.jobs.service import job_create
    from feedback.models import Turn

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    finals = {*Job.FINAL_STATES, Job.State.PAUSED}
    roots = {"worker": worker.pid, "simulator": sim.child.pid}
    me = {"bench": os.getpid()}
    db_before = db.stats()
    cpu_before = cpu_snapshot(roots, me)
    wall_start = time.time()
    # The simulator is the built-in ``default`` connection (ANNOTATOR_LLM_BASE_URL, set for this process
    # and the worker): a free-form loopback URL is refused unless a connection names it.
    run.rss_idle_kb = tree_rss_kb(worker.pid)
    job = job_create(
        project=project,
        kind="draft",
        selection={"status": "never"},
        drafter={"connection": "default"},
        mode=run.mode,
    )
    next_sample = next_report = time.monotonic()
    deadline = time.monotonic() + deadline_s
    state = job.state
    while True:
        now = time.monotonic()
        if now >= next_sample:
            reading = sim.stats()
            reading["queued"] = broker.llen("llm")  # messages waiting for a pool process
            run.samples.append((time.time(), reading))
            run.rss_peak_kb = max(run.rss_peak_kb, tree_rss_kb(worker.pid))
            next_sample += SAMPLE_EVERY
        state = Job.objects.filter(pk=job.pk).values_list("state", flat=True).get()
        if state in finals:
            break
        if now >= deadline:
            run.timed_out = True
            break
        if now >= next_report + 10:
            next_report = now
            done = JobItem.objects.filter(job=job, state=JobItem.State.DONE).count()
            print(
                f"    {time.time() - wall_start:5.0f} s: {done:,}/{run.turns:,} done, "
                f"{run.samples[-1][1]['in_flight']} calls in flight",
                flush=True,
            )
        time.sleep(min(SAMPLE_EVERY, max(0.0, next_sample - time.monotonic())) or 0.01)
    cpu_after = cpu_snapshot(roots, me)
    run.samples.append((time.time(), {**sim.stats(), "queued": broker.llen("llm")}))
    broker.close()
    time.sleep(1.5)  # the server's statistics are flushed by the backends within a second
    run.db = {k: v - db_before[k] for k, v in db.stats().items()}
    run.cpu = cpu_after.minus(cpu_before)
    run.cpu_main = _own(cpu_after, "worker", worker.pid) - _own(cpu_before, "worker", worker.pid)
    run.sim = run.samples[-1][1]
    run.state = state

    job.refresh_from_db()
    run.created_at = job.created_at.timestamp()
    if job.started_at:
        run.dispatch_s = (job.started_at - job.created_at).total_seconds()
    end = job.finished_at.timestamp() if job.finished_at else time.time()
    run.seconds = end - run.created_at
    drafts = Draft.objects.filter(job=job)
    succeeded = drafts.exclude(status=CallStatus.FAILED)
    run.drafts_ok = succeeded.count()
    run.drafts_failed = drafts.filter(status=CallStatus.FAILED).count()
    run.statuses = dict(drafts.values_list("status").annotate(n=Count("id")).order_by())
    run.calls = drafts.aggregate(n=Sum("calls"))["n"] or 0
    run.duplicates = succeeded.order_by().values("turn_id").annotate(n=Count("id")).filter(n__gt=1).count()
    has_draft = Exists(succeeded.filter(turn=OuterRef("pk")))
    run.missing = Turn.objects.filter(sample__project=project).exclude(has_draft).count()
    run.items = dict(JobItem.objects.filter(job=job).values_list("state").annotate(n=Count("id")).order_by())
    sums = JobItem.objects.filter(job=job).aggregate(throttled=Sum("throttled"), attempts=Sum("attempts"))
    run.throttled_items, run.attempts = sums["throttled"] or 0, sums["attempts"] or 0
    run.draft_times = sorted(t.timestamp() - run.created_at for t in succeeded.values_list("created_at", flat=True))
    if run.mode == "batch":
        from feedback.jobs.selectors import batch_parts

        run.parts = batch_parts(job)
    if run.draft_times:
        run.first_draft_s = run.draft_times[0]


def tree_rss_kb(root: int) -> int:
    """The resident memory of a process and its descendants now (VmRSS, kB)."""
    total = 0
    for stat in process_tree(root):
        try:
            for line in Path(f"/proc/{stat.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _own(snapshot: CpuSnapshot, part: str, pid: int) -> float:
    return snapshot.detail.get(part, {}).get(pid, 0.0)


def interpolate(samples: list[tuple[float, dict[str, Any]]], at: float, key: str) -> float:
    """The simulator's counter `key` at time `at`, linear between the two readings around it."""
    before = samples[0]
    for sample in samples:
        if sample[0] >= at:
            t0, t1 = before[0], sample[0]
            v0, v1 = before[1][key], sample[1][key]
            if t1 <= t0:
                return float(v1)
            return v0 + (v1 - v0) * (at - t0) / (t1 - t0)
        before = sample
    return float(samples[-1][1][key])


def active_span(run: Run) -> tuple[float, float]:
    """From the simulator's first request to its last completed answer (epoch seconds)."""
    samples = run.samples
    start = next((t for t, s in samples if s["requests"] > 0), samples[0][0])
    final = samples[-1][1]["completed"]
    end = next((t for t, s in samples if s["completed"] >= final), samples[-1][0])
    return start, end


def steady_window(run: Run, edge: float) -> tuple[float, float]:
    start, end = active_span(run)
    if end - start > 3 * edge:
        return start + edge, end - edge
    return start, end


# --------------------------------------------------------------------------------------------
# Scenarios


def scenario_settings(name: str, args: argparse.Namespace) -> dict[str, Any]:
    turns = args.turns or DEFAULT_TURNS[name]
    if name == "cpu":
        return {"turns": turns, "latency_ms": 0.0, "rpm": 0}
    if name == "ratelimit":
        return {"turns": turns, "latency_ms": args.latency_ms, "rpm": args.rpm}
    if name == "batch":
        return {"turns": turns, "latency_ms": 0.0, "rpm": 0}
    return {"turns": turns, "latency_ms": args.latency_ms, "rpm": 0}


def run_scenario(
    name: str, args: argparse.Namespace, *, children: Children, work: Path, sim: Simulator, db: Database
) -> Run:
    from django.conf import settings
    from django.db import connections

    spec = scenario_settings(name, args)
    run = Run(name, spec["turns"], spec["latency_ms"], args.concurrency, spec["rpm"], args.pool)
    if name == "batch":
        run.mode, run.batch_delay_s, run.batch_fail_rate = "batch", args.batch_delay, args.batch_fail_rate
    print(
        f"{name}: {run.turns:,} turns, {run.latency_ms:g} ms latency, {args.pool} pool of {run.concurrency}"
        + (f", {run.rpm} requests/min (worker and simulator)" if run.rpm else "")
        + (
            f", batch mode: {run.batch_delay_s:g} s delay, {100 * run.batch_fail_rate:g} % of lines failing"
            if run.mode == "batch"
            else ""
        ),
        flush=True,
    )
    started = time.perf_counter()
    project = make_project(f"draft-bench-{name}", run.turns)
    print(f"  made {run.turns:,} samples in {time.perf_counter() - started:.1f} s", flush=True)
    connections.close_all()

    flush_redis(settings.CELERY_BROKER_URL)  # no worker runs: nothing in flight is lost
    sim.configure(
        latency_ms=run.latency_ms, rpm=run.rpm, batch_delay_s=run.batch_delay_s, batch_fail_rate=run.batch_fail_rate
    )
    env = worker_env(args, base_url=sim.url, rpm=run.rpm)
    if run.mode == "batch":
        env["ANNOTATOR_JOB_BATCH_POLL_INTERVAL"] = str(BATCH_POLL_INTERVAL)
    worker, run.worker_start_s = start_worker(
        children, work, name, concurrency=args.concurrency, env=env, pool=args.pool, db_reuse_max=args.db_reuse_max
    )
    print(f"  worker ready in {run.worker_start_s:.1f} s (pid {worker.pid})", flush=True)
    try:
        expected = run.turns / (run.limit_per_s or 50.0)
        run_job(run, project, sim=sim, worker=worker, db=db, deadline_s=120 + run.batch_delay_s + 5 * expected)
    finally:
        children.stop(worker)
    print(
        f"  {run.state} in {run.seconds:.1f} s: {run.drafts_ok:,} drafts, {run.rate:.1f} drafts/s"
        + (f"; PROBLEMS: {'; '.join(run.problems())}" if run.problems() else ""),
        flush=True,
    )
    if run.problems():
        print(f"  worker log (tail):\n{worker.output(2000)}", flush=True)
    return run


def worker_env(args: argparse.Namespace, *, base_url: str, rpm: int) -> dict[str, str]:
    return {
        **os.environ,
        "ANNOTATOR_LLM_BASE_URL": base_url,
        "ANNOTATOR_JOB_WINDOW": str(args.window),
        "ANNOTATOR_LLM_RPM": str(rpm),
        "ANNOTATOR_LLM_TPM": "0",
        **args.worker_env,
    }


# --------------------------------------------------------------------------------------------
# In-process profile


@dataclass
class Profile:
    items: int
    queries: list[int]
    query_text: list[str]
    cpu_ms: float
    wall_ms: float
    stats: pstats.Stats
    profiled: int
    reuse: bool
    problem: str = ""


def run_profile(args: argparse.Namespace, *, sim: Simulator) -> Profile:
    """item_run in a loop in this process, without Celery: a fifth of the items with their queries
    counted, two fifths timed, two fifths under cProfile (CPU time). Around each item the database
    connections are treated as the worker treats them around each task: Celery's Django fix-up
    closes them all, unless CELERY_DB_REUSE_MAX is set (then Django's own rule is assumed,
    close_old_connections, as a project that sets it runs around its tasks)."""
    from django.db import connections
    from django.test.utils import override_settings

    from annotator.celery import app

    count = args.turns or DEFAULT_TURNS["profile"]
    print(f"profile: {count:,} turns, item_run in this process (no worker), 0 ms latency", flush=True)
    project = make_project("draft-bench-profile", count)
    connections.close_all()
    sim.configure(latency_ms=0, rpm=0)
    # A window of one: every item sends the next, as each does in a worker's steady state. The
    # messages wait on the broker, which no worker reads; it is flushed afterwards.
    window = override_settings(JOB_WINDOW=1)
    window.enable()
    try:
        reuse = bool(args.db_reuse_max or app.conf.get("CELERY_DB_REUSE_MAX"))
        return _profile_loop(project, count, sim, reuse=reuse)
    finally:
        window.disable()


def _profile_loop(project: Any, count: int, sim: Simulator, *, reuse: bool) -> Profile:
    from django.db import close_old_connections, connection, connections
    from django.test.utils import CaptureQueriesContext

    from feedback.jobs import service
    from feedback.jobs.models import Job, JobItem

    job = service.job_create(
        project=project, kind="draft", selection={"status": "never"}, drafter={"connection": "default"}
    )
    service.job_dispatch(job_id=job.pk)
    counted, timed = count // 5, 2 * count // 5
    profiler = cProfile.Profile(time.process_time)
    queries: list[int] = []
    query_text: list[str] = []
    cpu = wall = 0.0
    done = profiled = 0

    def between() -> None:
        if reuse:
            close_old_connections()
        else:
            connections.close_all()

    def task(pk: int, token: str) -> None:
        between()
        service.item_run(item_id=pk, token=token)
        between()

    while True:
        batch = list(
            JobItem.objects.filter(job=job, state=JobItem.State.QUEUED).order_by("id").values_list("pk", "token")[:50]
        )
        if not batch:
            break
        for pk, token in batch:
            if done < counted:
                with CaptureQueriesContext(connection) as captured:
                    task(pk, token)
                queries.append(len(captured.captured_queries))
                if done == counted // 2:
                    query_text = [q["sql"] for q in captured.captured_queries]
            elif done < counted + timed:
                c0, w0 = time.process_time(), time.perf_counter()
                task(pk, token)
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
            else:
                profiler.enable()
                task(pk, token)
                profiler.disable()
                profiled += 1
            done += 1
    job.refresh_from_db()
    problem = ""
    if job.state != Job.State.COMPLETED:
        problem = f"the profiled job ended {job.state}: {job.stop_reason}"
    elif done != count:
        problem = f"{done:,} items run, not {count:,}"
    if problem:
        print(f"  {problem}", flush=True)
    n_timed = max(1, min(timed, done - counted))
    return Profile(
        items=done,
        queries=queries,
        query_text=query_text,
        cpu_ms=1000 * cpu / n_timed,
        wall_ms=1000 * wall / n_timed,
        stats=pstats.Stats(profiler),
        profiled=profiled,
        reuse=reuse,
        problem=problem,
    )


# (label, how the file's path ends, function): the parts of item_run worth telling apart.
PROFILE_PARTS = [
    ("item_run (all)", "feedback/jobs/service.py", "item_run"),
    ("  load the item (select_related get)", "django/db/models/query.py", "get"),
    ("  LLM call (client library + HTTP)", "feedback/drafting/client.py", "chat"),
    ("    library: request transform", "/_utils/_transform.py", "maybe_transform"),
    ("    library: send and receive", "/_base_client.py", "request"),
    ("    library: parse the response", "/_response.py", "parse"),
    ("  prompt: feedback_messages", "feedback/drafting/prompts.py", "feedback_messages"),
    ("  parse_feedback", "feedback/drafting/schema.py", "parse_feedback"),
    ("  store the draft (_store)", "feedback/drafting/service.py", "_store"),
    ("  next item (_fill)", "feedback/jobs/service.py", "_fill"),
    ("    send to broker (apply_async)", "celery/app/task.py", "apply_async"),
    ("  job totals (settle)", "feedback/jobs/service.py", "settle"),
    ("  item updates (_set)", "feedback/jobs/service.py", "_set"),
    ("  connect to PostgreSQL", "django/db/backends/base/base.py", "connect"),
    ("  SQL sent (cursor execute)", "django/db/backends/utils.py", "_execute_with_wrappers"),
    ("  transactions (atomic exit)", "django/db/transaction.py", "__exit__"),
    ("  ORM model instances (from_db)", "django/db/models/base.py", "from_db"),
]


def print_profile(profile: Profile, limit: int = 30) -> None:
    raw = profile.stats.stats  # type: ignore[attr-defined]
    n = max(1, profile.profiled)
    q = profile.queries
    connections = (
        "kept across items (CELERY_DB_REUSE_MAX is set)"
        if profile.reuse
        else "closed around each item, as Celery's Django fix-up does"
    )
    print(
        f"\nIn-process item_run ({profile.items:,} items, no Celery, connections {connections}): "
        f"{profile.cpu_ms:.2f} ms CPU and {profile.wall_ms:.2f} ms wall per item (timed without the profiler); "
        f"queries per item: min {min(q) if q else 0}, mean {sum(q) / max(1, len(q)):.1f}, max {max(q) if q else 0}"
    )
    whole = sum(v[3] for k, v in raw.items() if k[0].endswith(PROFILE_PARTS[0][1]) and k[2] == PROFILE_PARTS[0][2])
    print(
        "Where its CPU goes (cProfile on a CPU clock; share of item_run, and that share of the unprofiled CPU per\n"
        "item: the profiler inflates Python-heavy code more than C, so the ms are estimates):"
    )
    for label, path, name in PROFILE_PARTS:
        rows = [v for k, v in raw.items() if k[0].endswith(path) and k[2] == name]
        total, calls = sum(v[3] for v in rows), sum(v[1] for v in rows)
        share = total / whole if whole else 0.0
        print(f"  {label:<38} {100 * share:5.1f} %  ~{share * profile.cpu_ms:5.2f} ms  ({calls / n:.1f} calls)")
    if profile.query_text:
        print(f"The {len(profile.query_text)} queries of one item:")
        for sql in profile.query_text:
            print(f"  {sql[:150]}")
    stats = profile.stats
    stats.strip_dirs()
    for order, title in (("cumulative", "cumulative"), ("tottime", "own time")):
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(order).print_stats(limit)
        print(f"\nTop {limit} by {title} (seconds over {n} items):")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


# --------------------------------------------------------------------------------------------
# Report


def print_table(runs: list[Run]) -> None:
    columns = [
        ("scenario", "<11"),
        ("turns", ">6"),
        ("lat ms", ">6"),
        ("conc", ">4"),
        ("seconds", ">8"),
        ("dispatch s", ">10"),
        ("1st draft s", ">11"),
        ("drafts/s", ">9"),
        ("steady/s", ">8"),
        ("limit/s", ">8"),
        ("achieved", ">8"),
        ("429 sim", ">7"),
        ("429 items", ">9"),
        ("drafts", ">7"),
        ("calls", ">6"),
        ("dup", ">4"),
        ("missing", ">7"),
        ("failed", ">6"),
        ("check", "<5"),
    ]
    header = " ".join(f"{name:{fmt}}" for name, fmt in columns)
    print(header)
    print("-" * len(header))
    for r in runs:
        limit = r.limit_per_s
        values = [
            r.scenario,
            f"{r.turns:,}",
            f"{r.latency_ms:g}",
            r.concurrency,
            f"{r.seconds:.1f}",
            f"{r.dispatch_s:.2f}",
            f"{r.first_draft_s:.2f}",
            f"{r.rate:.1f}",
            f"{r.steady_rate:.1f}",
            f"{limit:.1f}" if limit else "-",
            f"{r.rate / limit:.2f}" if limit else "-",
            f"{r.sim.get('rate_limited', 0):,}",
            f"{r.throttled_items:,}",
            f"{r.drafts_ok:,}",
            f"{r.calls:,}",
            r.duplicates,
            r.missing,
            r.drafts_failed,
            "FAIL" if r.problems() else "ok",
        ]
        print(" ".join(f"{value:{fmt}}" for value, (_, fmt) in zip(values, columns, strict=True)))


def print_cpu(runs: list[Run]) -> None:
    print("\nCPU per draft (ms; job creation to completion; /proc of each process tree):")
    columns = [
        ("scenario", "<11"),
        ("worker", ">7"),
        ("(main", ">6"),
        ("pool)", ">6"),
        ("sys %", ">5"),
        ("simulator", ">9"),
        ("postgres", ">8"),
        ("redis", ">6"),
        ("bench", ">6"),
        ("other", ">6"),
        ("machine", ">8"),
        ("cores busy", ">10"),
        ("PG sessions", ">11"),
        ("commits", ">8"),
        ("sim in-flight", ">13"),
        ("llm queue", ">9"),
    ]
    header = " ".join(f"{name:{fmt}}" for name, fmt in columns)
    print(header)
    print("-" * len(header))
    for r in runs:
        n = max(1, r.drafts_ok)
        c = r.cpu
        wall = c.get("wall", 0.0) or 1.0
        counted = sum(c.get(part, 0.0) for part in ("worker", "simulator", "postgresql", "redis", "bench"))
        system = 100 * c.get("worker system", 0.0) / c["worker"] if c.get("worker") else 0.0
        start, end = steady_window(r, 2.0) if r.samples else (0.0, 0.0)
        inside = [s for t, s in r.samples if start <= t <= end]
        values = [
            r.scenario,
            f"{1000 * c.get('worker', 0.0) / n:.2f}",
            # Only a prefork pool runs the tasks in processes of their own.
            f"{1000 * r.cpu_main / n:.2f}" if r.pool == "prefork" else "-",
            f"{1000 * (c.get('worker', 0.0) - r.cpu_main) / n:.2f}" if r.pool == "prefork" else "-",
            f"{system:.0f}",
            *(
                f"{1000 * v / n:.2f}"
                for v in (
                    c.get("simulator", 0.0),
                    c.get("postgresql", 0.0),
                    c.get("redis", 0.0),
                    c.get("bench", 0.0),
                    c.get("machine busy", 0.0) - counted,
                    c.get("machine busy", 0.0),
                )
            ),
            f"{c.get('machine busy', 0.0) / wall:.2f}",
            f"{r.db.get('sessions', 0) / n:.2f}",
            f"{r.db.get('commits', 0) / n:.1f}",
            f"{sum(s['in_flight'] for s in inside) / len(inside) if inside else 0.0:.1f}",
            f"{min(s['queued'] for s in inside) if inside else 0}-{max(s['queued'] for s in inside) if inside else 0}",
        ]
        print(" ".join(f"{value:{fmt}}" for value, (_, fmt) in zip(values, columns, strict=True)))
    print(
        "  worker = the worker's main process and its pool (the platform's CPU; sys % = its kernel share);\n"
        "  postgres and redis = their servers' process trees; other = the machine's busy CPU that none of these\n"
        "  account for (the kernel's network and scheduling work, anything else running); cores busy = the\n"
        "  machine's average; PG sessions and commits per draft from pg_stat_database; sim in-flight = mean\n"
        "  calls open at the simulator; llm queue = fewest-most messages waiting on the broker for a pool\n"
        "  process while the job ran (a minimum of 0: the pool waited for work at some moment)."
    )


def rate_limit_figures(run: Run) -> dict[str, float]:
    start, end = steady_window(run, EDGE_SECONDS)
    minutes = (end - start) / 60.0
    reqs = interpolate(run.samples, end, "requests") - interpolate(run.samples, start, "requests")
    completed = interpolate(run.samples, end, "completed") - interpolate(run.samples, start, "completed")
    limited = interpolate(run.samples, end, "rate_limited") - interpolate(run.samples, start, "rate_limited")
    a, b = start - run.created_at, end - run.created_at
    drafts = sum(1 for t in run.draft_times if a <= t < b)
    return {
        "window_s": end - start,
        "from_s": a,
        "requests_per_min": reqs / minutes if minutes else 0.0,
        "completed_per_min": completed / minutes if minutes else 0.0,
        "drafts_per_min": drafts / minutes if minutes else 0.0,
        "steady_429": limited,
    }


def print_rate_limit(run: Run) -> None:
    f = rate_limit_figures(run)
    start, end = active_span(run)
    print(
        f"\nRate limit ({run.rpm} requests/min; steady state = {f['window_s']:.0f} s from {f['from_s']:.0f} s after "
        f"the job's creation, the first and last {EDGE_SECONDS:.0f} s of calls left out):"
    )
    print(
        f"  requests/min at the simulator {f['requests_per_min']:.0f} (answered {f['completed_per_min']:.0f}); "
        f"drafts/min stored {f['drafts_per_min']:.0f}; "
        f"deviation {100 * (f['completed_per_min'] / run.rpm - 1):+.1f} %"
    )
    print(
        f"  429s: {run.sim.get('rate_limited', 0)} in all, {f['steady_429']:.0f} in the steady state; "
        f"items throttled {run.throttled_items}; simulator max in flight {run.sim.get('max_in_flight', 0)}"
    )
    buckets: list[str] = []
    t = start
    while t + 10 <= end:
        n = interpolate(run.samples, t + 10, "completed") - interpolate(run.samples, t, "completed")
        buckets.append(f"{6 * n:.0f}")
        t += 10
    print(f"  answered per minute, by 10 s from the first call: {' '.join(buckets)}")


def print_batch(run: Run, runs: list[Run]) -> None:
    n = max(1, run.drafts_ok)
    cpu_ms = 1000 * run.cpu.get("worker", 0.0) / n
    live = next((r for r in runs if r.scenario == "cpu"), None)
    live_ms = 1000 * live.cpu.get("worker", 0.0) / max(1, live.drafts_ok) if live else None
    print(
        f"\nBatch mode ({run.turns:,} turns, simulator delay {run.batch_delay_s:g} s, "
        f"{100 * run.batch_fail_rate:g} % of lines failing, polled every {BATCH_POLL_INTERVAL:g} s):"
    )
    print(
        f"  parts {len(run.parts)}: requests {[p['requests'] for p in run.parts]}, "
        f"MB {[round(p['bytes'] / 1e6, 1) for p in run.parts]}; stored from the batches "
        f"{sum(p['stored'] for p in run.parts):,}, asked again live {sum(p['to_live'] for p in run.parts):,} "
        f"(live calls at the simulator {run.sim.get('completed', 0):,}; failed lines "
        f"{run.sim.get('batch', {}).get('failed_lines', 0):,})"
    )
    print(
        f"  CPU per draft: worker {cpu_ms:.2f} ms"
        + (
            f" (live path, cpu scenario: {live_ms:.2f} ms)"
            if live_ms is not None
            else " (run the cpu scenario to compare)"
        )
        + f"; simulator {1000 * run.cpu.get('simulator', 0.0) / n:.2f} ms, PostgreSQL "
        f"{1000 * run.cpu.get('postgresql', 0.0) / n:.2f} ms"
    )
    print(
        f"  worker RSS: {run.rss_idle_kb / 1024:.0f} MB before the job, peak {run.rss_peak_kb / 1024:.0f} MB "
        f"while it ran (+{(run.rss_peak_kb - run.rss_idle_kb) / 1024:.0f} MB)"
    )
    print(
        f"  job creation to completion {run.seconds:.1f} s; less the delay {run.seconds - run.batch_delay_s:.1f} s "
        f"(writing, uploading, polling at {BATCH_POLL_INTERVAL:g} s, reading, storing, the live re-asks)"
    )


def print_targets(runs: list[Run]) -> None:
    print("\nTargets (reported, not asserted):")
    for r in runs:
        if r.scenario == "throughput" and r.limit_per_s:
            ratio = r.rate / r.limit_per_s
            print(
                f"  [{'PASS' if ratio >= TARGET_RATIO else 'MISS'}] throughput: achieved/limit {ratio:.2f} "
                f"(>= {TARGET_RATIO}): {r.rate:.1f} of {r.limit_per_s:.0f} drafts/s"
            )
            limited = r.sim.get("rate_limited", 0)
            print(f"  [{'PASS' if not limited else 'MISS'}] throughput: {limited} 429s (0 expected)")
        if r.scenario == "cpu":
            ms = 1000 * r.cpu.get("worker", 0) / max(1, r.drafts_ok)
            print(f"  [{'PASS' if ms < TARGET_CPU_MS else 'MISS'}] cpu: {ms:.2f} ms per draft (< {TARGET_CPU_MS:g})")
        if r.scenario == "batch":
            live = next((x for x in runs if x.scenario == "cpu"), None)
            if live is not None:
                ms = 1000 * r.cpu.get("worker", 0) / max(1, r.drafts_ok)
                live_ms = 1000 * live.cpu.get("worker", 0) / max(1, live.drafts_ok)
                print(f"  [{'PASS' if ms < live_ms else 'MISS'}] batch: {ms:.2f} ms per draft (< live {live_ms:.2f})")
        if r.scenario == "ratelimit" and r.rpm:
            f = rate_limit_figures(r)
            deviation = f["completed_per_min"] / r.rpm - 1
            print(
                f"  [{'PASS' if abs(deviation) <= TARGET_RPM_DEVIATION else 'MISS'}] ratelimit: "
                f"{f['completed_per_min']:.0f}/min, {100 * deviation:+.1f} % (within {100 * TARGET_RPM_DEVIATION:g} %)"
            )
            print(
                f"  [{'PASS' if round(f['steady_429']) == 0 else 'MISS'}] ratelimit: "
                f"{f['steady_429']:.0f} 429s in the steady state ({r.sim.get('rate_limited', 0)} in all)"
            )
    for r in runs:
        others = {k: v for k, v in r.items.items() if k != "done"}
        if others or r.drafts_failed or r.attempts:
            print(
                f"  note {r.scenario}: items {r.items}, failed drafts {r.drafts_failed}, failed attempts {r.attempts}"
            )
        if set(r.statuses) - {"ok"}:
            print(f"  note {r.scenario}: draft statuses {r.statuses}")


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark draft jobs on a real worker against the simulator.")
    parser.add_argument("--scenario", default="all", choices=[*SCENARIOS, "profile", "all"])
    parser.add_argument("--turns", type=int, help="turns per scenario (default 5,000 / 3,000 / 3,000; profile 600)")
    parser.add_argument("--latency-ms", type=float, default=250.0, help="simulator latency (not the cpu scenario)")
    parser.add_argument("--concurrency", type=int, default=32, help="worker pool processes (default 32)")
    parser.add_argument(
        "--pool",
        default="threads",
        choices=["prefork", "threads", "solo"],
        help="the worker's pool (default threads, as the README recommends for LLM workers)",
    )
    parser.add_argument("--window", type=int, default=200, help="ANNOTATOR_JOB_WINDOW of the worker (default 200)")
    parser.add_argument("--rpm", type=int, default=1200, help="requests/min of the ratelimit scenario")
    parser.add_argument("--profile", action="store_true", help="also profile item_run in this process")
    parser.add_argument("--batch-delay", type=float, default=60.0, help="the simulator's batch delay, seconds (batch)")
    parser.add_argument(
        "--batch-fail-rate", type=float, default=0.01, help="the share of batch lines failing (batch; default 1 %%)"
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the worker (and this process), e.g. DATABASE_CONN_MAX_AGE=60",
    )
    parser.add_argument(
        "--db-reuse-max",
        type=int,
        default=0,
        metavar="N",
        help="experiment: start the worker with CELERY_DB_REUSE_MAX=N (keeps database connections across tasks)",
    )
    add_common_arguments(parser, database_url=DEFAULT_DATABASE_URL, broker_url=DEFAULT_BROKER_URL)
    args = parser.parse_args(argv)
    if args.smoke:
        # Every scenario and the profile, each small: a real worker and the simulator still draft
        # every turn, and the job's checks (one successful draft per turn) still hold.
        args.turns = args.turns or SMOKE_TURNS
        args.latency_ms, args.concurrency, args.window, args.rpm = 20.0, 4, 20, 600
        args.batch_delay, args.batch_fail_rate = 2.0, 0.05
        args.profile = True
    if not args.broker_url.startswith("redis://"):
        parser.error("--broker-url must be a redis:// URL")
    extra = {}
    for item in args.worker_env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--worker-env {item!r}: expected KEY=VALUE")
        extra[key] = value
    args.worker_env = extra
    if (args.turns is not None and args.turns < 1) or args.concurrency < 1 or args.window < 1:
        parser.error("turns, concurrency and window must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    db = Database.parse(args.database_url)
    lock = db.exclusive(f"bench broker {args.broker_url}")
    scenarios = list(SCENARIOS) if args.scenario == "all" else [s for s in SCENARIOS if s == args.scenario]
    profile_wanted = args.profile or args.scenario == "profile"
    whole = time.perf_counter()
    raise_on_sigterm()
    children = Children()
    runs: list[Run] = []
    profile: Profile | None = None
    with tempfile.TemporaryDirectory(prefix="annotator-draft-bench-") as tmp:
        work = Path(tmp)
        bench_environment(
            db,
            work,
            broker_url=args.broker_url,
            ANNOTATOR_JOB_WINDOW=str(args.window),
            ANNOTATOR_LLM_RPM="0",
            ANNOTATOR_LLM_TPM="0",
            **args.worker_env,
        )
        for name in ("ANNOTATOR_RATE_LIMIT_REDIS_URL", "ANNOTATOR_RATE_LIMIT_BACKEND"):
            os.environ.pop(name, None)
        try:
            server = db.recreate()
            sim = Simulator(children, work, dict(os.environ))
            os.environ["ANNOTATOR_LLM_BASE_URL"] = sim.url
            print(
                f"Python {platform.python_version()}, PostgreSQL {server} ({db.host}:{db.port}/{db.name}), "
                f"broker {args.broker_url}, {os.cpu_count()} CPUs; simulator {sim.url}; work folder {work}"
            )
            print(f"code: {code_version()}")
            if args.worker_env:
                print(f"extra worker environment: {args.worker_env}")
            if args.db_reuse_max:
                print(f"experiment: the worker runs with CELERY_DB_REUSE_MAX={args.db_reuse_max}")
            migrated = migrate()
            from django.conf import settings

            print(
                f"migrated in {migrated:.1f} s; rate limiter "
                f"{settings.RATE_LIMIT_REDIS_URL or 'database'}; DATABASE_CONN_MAX_AGE "
                f"{settings.DATABASES['default']['CONN_MAX_AGE']}\n",
                flush=True,
            )
            for name in scenarios:
                runs.append(run_scenario(name, args, children=children, work=work, sim=sim, db=db))
                print(flush=True)
            if profile_wanted:
                flush_redis(settings.CELERY_BROKER_URL)
                profile = run_profile(args, sim=sim)
                flush_redis(settings.CELERY_BROKER_URL)
        except KeyboardInterrupt:
            print("\ninterrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            children.stop_all()
            close_database(db, keep=args.keep, lock=lock)
        if runs:
            print_table(runs)
            print_cpu(runs)
            for run in runs:
                if run.scenario == "ratelimit" and run.rpm:
                    print_rate_limit(run)
                if run.scenario == "batch":
                    print_batch(run, runs)
            if args.smoke:
                print(f"\n{SMOKE_NOTE}")
            else:
                print_targets(runs)
            for run in runs:
                for problem in run.problems():
                    print(f"FAIL {run.scenario}: {problem}")
        if profile is not None:
            print_profile(profile)
    print(f"\nwhole run: {time.perf_counter() - whole:.1f} s")
    if profile is not None and profile.problem:
        print(f"FAIL profile: {profile.problem}")
    return 1 if any(r.problems() for r in runs) or (profile is not None and profile.problem) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
