"""Recovery benchmark: a worker killed (SIGKILL, its whole process group) at random points of an
upload's import and of a release's build, then started again, on each broker.

For each broker it prints the time from the first worker's start to completion, the kill points,
the attempts the work took, and the checks: every record stored exactly once (samples, turns and
the batch's created count equal the file's lines, nothing counted as skipped, i.e. the import
resumed after its last committed chunk instead of reading the file again), the release's rows
once each and no partial release folder left.

    .venv/bin/python bench/recovery_bench.py --smoke                    # seconds, SQLite + filesystem
    .venv/bin/python bench/recovery_bench.py \\
        --database-url postgres://postgres@127.0.0.1:5432/annotator_h4_bench \\
        --broker filesystem:// --broker redis://127.0.0.1:6379/4 \\
        --broker amqp://guest:guest@127.0.0.1:5672/h4                   # 150,000 lines, 63,000 samples

The PostgreSQL database (its name must contain "bench") is dropped and created for each broker;
a Redis broker's database is flushed. Without --database-url a fresh SQLite file is used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import ROOT, Child, Database, add_common_arguments, close_database, flush_redis
from import_bench import write_native

FULL = {"lines": 150_000, "samples": 63_000, "kills": 2}
SMOKE = {"lines": 3_000, "samples": 2_000, "kills": 1}


@dataclass
class Result:
    broker: str
    what: str
    size: int
    kill_points: list[float] = field(default_factory=list)
    seconds: float = 0.0
    attempts: int = 0
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


def worker(work: Path, env: dict[str, str], queues: str, n: int) -> Child:
    argv = [sys.executable, "-m", "celery", "-A", "annotator", "worker", "--queues", queues, "--pool", "threads"]
    argv += ["--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return Child(f"worker {n}", argv, env=env, log_path=work / f"worker-{queues}-{n}.log")


def kill(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.process.wait()


def reached(progress, finished, point: float) -> bool:
    return progress() >= point or finished()


def run_killed(
    work: Path, env: dict[str, str], queues: str, kills: int, rng: random.Random, progress, finished, timeout: float
) -> tuple[float, list[float]]:
    """Starts a worker, kills it at ``kills`` random points of ``progress()`` (a fraction), starts
    another each time, and waits for ``finished()``; returns the seconds taken and the kill points."""
    points = sorted(rng.uniform(0.1, 0.9) for _ in range(kills))
    started = time.monotonic()
    killed_at: list[float] = []
    for n, point in enumerate(points):
        child = worker(work, env, queues, n)
        try:
            child.wait_for(partial(reached, progress, finished, point), timeout, f"progress {point:.0%}")
        finally:
            if finished():
                child.stop()
            else:
                killed_at.append(progress())
                kill(child)
    child = worker(work, env, queues, len(points))
    try:
        child.wait_for(finished, timeout, "completion")
    finally:
        child.stop()
    return time.monotonic() - started, killed_at


def bench_broker(args: argparse.Namespace, broker: str, size: dict[str, int]) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="recovery-bench-"))
    if args.database_url:
        Database.parse(args.database_url).recreate()
        database = args.database_url
    else:
        database = f"sqlite:///{work / 'bench.sqlite3'}"
    if broker.startswith("redis"):
        flush_redis(broker)
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "CELERY_BROKER_URL": broker,
        "ANNOTATOR_VAR_DIR": str(work / "var"),
        "ANNOTATOR_BROKER_NAME": "recovery",
        "ANNOTATOR_SWEEP_INTERVAL": "5",
        # Some sixty chunks per run whatever its size, so that a kill lands mid-way.
        "ANNOTATOR_IMPORT_CHUNK_SIZE": str(min(1000, max(50, size["lines"] // 60))),
        "ANNOTATOR_RELEASE_CHUNK_SIZE": str(min(1000, max(50, size["samples"] // 60))),
        "DJANGO_SETTINGS_MODULE": "annotator.settings",
    }
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "CELERY_BROKER_URL", "ANNOTATOR_VAR_DIR")})
    os.environ.update({"ANNOTATOR_BROKER_NAME": "recovery", "DJANGO_SETTINGS_MODULE": "annotator.settings"})
    subprocess.run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True)
    # Each broker runs in a process of its own (this script again): Django is set up once per process.
    spec = work / "spec.json"
    spec.write_text(json.dumps({"broker": broker, "size": size, "seed": args.seed, "work": str(work)}))
    out = work / "results.json"
    subprocess.run([sys.executable, __file__, "--child", str(spec), str(out)], cwd=ROOT, env=env, check=True)
    return [Result(**r) for r in json.loads(out.read_text())]


def run_child(spec_path: Path, out: Path) -> None:
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile

    from exports.models import Release
    from exports.service import partial_folders, release_create, release_folder
    from exports.tasks import release_build_task
    from feedback.importers.service import import_file
    from feedback.importers.uploads import import_upload_create
    from feedback.models import ImportBatch, Project, Sample, Turn

    spec = json.loads(spec_path.read_text())
    broker, size, work = spec["broker"], spec["size"], Path(spec["work"])
    rng = random.Random(spec["seed"])
    env = dict(os.environ)
    results = []

    # An upload of `lines` native records (two turns each), imported by a worker killed at random.
    lines = size["lines"]
    path = work / "upload.jsonl"
    write_native(path, lines, 500)
    project = Project.objects.create(name="Recovery import", slug="recovery-import")
    with path.open("rb") as stream:
        upload = SimpleUploadedFile(path.name, stream.read())
    batch = import_upload_create(project=project, user=None, format="native", upload=upload)
    del upload

    def import_progress() -> float:
        batch.refresh_from_db()
        return batch.records_read / lines

    def import_done() -> bool:
        batch.refresh_from_db()
        return batch.status in (ImportBatch.Status.COMPLETED, ImportBatch.Status.FAILED)

    seconds, points = run_killed(work, env, "default", size["kills"], rng, import_progress, import_done, 3600)
    batch.refresh_from_db()
    samples = Sample.objects.filter(project=project)
    results.append(
        Result(
            broker,
            "import",
            lines,
            points,
            seconds,
            batch.attempts,
            {
                "completed": batch.status == ImportBatch.Status.COMPLETED,
                "samples once": samples.count() == lines == samples.values("external_id").distinct().count(),
                "turns once": Turn.objects.filter(sample__project=project).count() == 2 * lines,
                "resumed (created = lines, skipped 0)": (batch.created, batch.skipped) == (lines, 0),
                "upload removed": batch.upload_removed_at is not None,
            },
        ).__dict__
    )

    # A release of `samples` samples (their imported feedback), built by a worker killed at random.
    count = size["samples"]
    seed_path = work / "release.jsonl"
    write_native(seed_path, count, 500)
    other = Project.objects.create(name="Recovery release", slug="recovery-release")
    import_file(project=other, format="native", path=seed_path)
    release = release_create(project=other, user=None, formats=["rich"], enqueue=False)
    release_build_task.delay(release.pk)

    def release_progress() -> float:
        release.refresh_from_db()
        return release.samples_done / count

    def release_done() -> bool:
        release.refresh_from_db()
        return release.finished

    seconds, points = run_killed(work, env, "exports", size["kills"], rng, release_progress, release_done, 3600)
    release.refresh_from_db()
    rich = release_folder(release) / "rich.jsonl"
    ids = [json.loads(line)["id"] for line in rich.open(encoding="utf-8")] if rich.exists() else []
    results.append(
        Result(
            broker,
            "release",
            count,
            points,
            seconds,
            release.attempts,
            {
                "completed": release.state == Release.State.COMPLETED,
                "rows once": len(ids) == len(set(ids)) == release.samples_released > 0,
                "no partial folder": partial_folders(release) == [],
            },
        ).__dict__
    )
    out.write_text(json.dumps(results))


def print_table(results: list[Result]) -> None:
    print(f"\n{'broker':<12} {'work':<8} {'size':>8} {'killed at':<18} {'attempts':>8} {'seconds':>8}  checks")
    for r in results:
        scheme = r.broker.split(":", 1)[0]
        points = ", ".join(f"{p:.0%}" for p in r.kill_points) or "-"
        failed = [name for name, ok in r.checks.items() if not ok]
        checks = "all passed" if not failed else "FAILED: " + "; ".join(failed)
        print(f"{scheme:<12} {r.what:<8} {r.size:>8,} {points:<18} {r.attempts:>8} {r.seconds:>8.1f}  {checks}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", action="append", help="broker URL (repeatable); default filesystem://")
    add_common_arguments(parser, database_url="")  # without one: a fresh SQLite file
    parser.add_argument("--lines", type=int, help="lines of the imported upload")
    parser.add_argument("--samples", type=int, help="samples of the release")
    parser.add_argument("--kills", type=int, help="kills per import and per release")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(Path(args.child[0]), Path(args.child[1]))
        return 0
    size = dict(SMOKE if args.smoke else FULL)
    for key in ("lines", "samples", "kills"):
        if getattr(args, key) is not None:
            size[key] = getattr(args, key)
    results: list[Result] = []
    for broker in args.broker or ["filesystem://"]:
        print(
            f"{broker}: import of {size['lines']:,} lines, release of {size['samples']:,} samples, "
            f"{size['kills']} kill(s) each ...",
            flush=True,
        )
        results += bench_broker(args, broker, size)
    print_table(results)
    if args.database_url:
        close_database(Database.parse(args.database_url), keep=args.keep)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
