"""Storage benchmark: a 63,000-sample release built to the local folder and to an S3 server.

    .venv/bin/python bench/storage_bench.py [--size 63000] [--images 5000] [--image-kb 24]
        [--rounds 1] [--s3-endpoint http://127.0.0.1:5000] [--database-url URL] [--keep]
    .venv/bin/python bench/storage_bench.py --smoke    # 1,200 samples, 200 images: seconds, no targets

Image references fetched by 1 vs 4 workers are measured by bench/image_fetch_bench.py.

Set-up: the export benchmark's project (bench/export_bench.py ``Seeder``: every sample two
reviewed turns, an annotated image) in a PostgreSQL database of its own (dropped and created; its
name must contain "bench"), grown to --size samples; --images distinct JPEG files of about
--image-kb KB each (noise, so they do not compress) are stored once in the local media folder and
once in the S3 server's bucket (keys ``media/images/..``, as the media store names them), and the
samples share those images in turn, so that the release's images.tar holds each of them once.

Each build is ``release_build`` of formats dress + rich + parquet with the images, in a child
process of its own (this script again): the child sets Django up with the local stores or with
all three stores in the bucket (``ANNOTATOR_STORAGE=s3``: the images are read from the bucket
and the files written to it as multipart uploads), resets its peak-RSS mark (VmHWM) and builds.
Figures: seconds, samples/s, MB written, peak RSS and its growth over the RSS before the build,
and the RSS at the first, middle and last chunk. The data files of the two builds must be the same
bytes (their sha256 compared; the manifest and card differ by their build time), and a file of the
S3 build, downloaded again, must have the sha256 its manifest gives; the bench fails otherwise.

Targets (not checked at --smoke): the S3 build within 1.5x the local build's time, and memory
flat: its peak RSS within 20 MB (or 10 %) of the local build's.

The S3 server is moto's (``moto_server -H 127.0.0.1 -p 5000``, a dev dependency, which CI starts);
its credentials are fake ones it accepts. Other developers' tests may share the machine: the share
of the machine busy during each build is printed beside it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    CHILD_FLAG,
    SMOKE_NOTE,
    Database,
    add_common_arguments,
    bench_environment,
    close_database,
    code_version,
    cpu_snapshot,
    migrate,
    peak_rss_kb,
    proc_status_kb,
    raise_on_sigterm,
    reset_peak_rss,
    run_in_child,
    setup_django,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/annotator_storage_bench"
DEFAULT_S3_ENDPOINT = os.environ.get("BENCH_S3_ENDPOINT", "http://127.0.0.1:5000")
FORMATS = ["dress", "rich", "parquet"]
TARGET_RATIO = 1.5
FLAT_TOLERANCE_MB = 20.0
FLAT_TOLERANCE_FRACTION = 0.10
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


# --------------------------------------------------------------------------------------------
# Images


def make_images(count: int, kb: int, seed: int = 15) -> list[bytes]:
    """``count`` distinct JPEGs of about ``kb`` KB (noise does not compress)."""
    from PIL import Image

    rng = random.Random(seed)
    side = max(16, int((kb * 1024 / 0.8) ** 0.5))  # noise: about 0.8 bytes per pixel
    images = []
    for _ in range(count):
        picture = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=85)
        images.append(buffer.getvalue())
    return images


def store_images(images: list[bytes], bucket: str, endpoint: str) -> list[dict[str, Any]]:
    """Stores the files in the local media folder (through the local media store) and in the bucket
    (the keys the S3 media store gives them), and points the project's first images at them; the
    samples then share them in turn. Returns the stored files' rows."""
    import boto3
    from django.db import connection

    from feedback import storage
    from feedback.images import inspect_image, stored_name

    infos = [inspect_image(data) for data in images]
    names = [stored_name(info) for info in infos]
    for data, name in zip(images, names, strict=True):
        storage.store_image(data, name, "image/jpeg")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def put(pair: tuple[bytes, str]) -> None:
        client.put_object(Bucket=bucket, Key=f"media/{pair[1]}", Body=pair[0], ContentType="image/jpeg")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, zip(images, names, strict=True)))
    count = len(images)
    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE feedback_image SET file = %s, sha256 = %s, width = %s, height = %s, format = %s, byte_size = %s "
            "WHERE id = %s",
            [
                (name, info.sha256, info.width, info.height, info.format, info.byte_size, i + 1)
                for i, (name, info) in enumerate(zip(names, infos, strict=True))
            ],
        )
        cursor.execute("UPDATE feedback_sample SET image_id = ((image_id - 1) %% %s) + 1", [count])
        cursor.execute("VACUUM ANALYZE feedback_sample")
    return [{"name": n, "bytes": i.byte_size} for n, i in zip(names, infos, strict=True)]


# --------------------------------------------------------------------------------------------
# One release build, in a child process


def run_child(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    os.environ.update(spec["env"])
    setup_django()
    import gc
    import hashlib
    import resource

    from django.db import connection

    from exports.models import Release
    from exports.service import release_build, release_create, release_prefix
    from feedback import storage
    from feedback.models import Project

    project = Project.objects.get(slug=spec["project"])
    release = release_create(
        project=project, user=None, formats=FORMATS, include_images=True, name=spec["label"], enqueue=False
    )
    rss_trace: list[tuple[int, int]] = []

    def on_progress(r: Release) -> None:
        rss_trace.append((r.samples_done, proc_status_kb("VmRSS")))

    gc.collect()
    rss_before = proc_status_kb("VmRSS")
    peak_reset = reset_peak_rss()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    built = release_build(release_id=release.pk, progress=on_progress)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    peak = peak_rss_kb()
    assert built is not None
    files = list(built.files.values("path", "format", "rows", "byte_size", "sha256"))
    checked = ""
    if built.state == Release.State.COMPLETED:
        # A file read back from the store (in blocks) has the sha256 the manifest gives it.
        entry = next(f for f in built.manifest["files"] if f["path"] == "rich.jsonl")
        opened = storage.open_stream(storage.RELEASES, f"{release_prefix(built)}/{entry['path']}")
        assert opened is not None, "rich.jsonl is not in the store"
        digest = hashlib.sha256()
        with opened[1] as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
        checked = "ok" if digest.hexdigest() == entry["sha256"] else f"rich.jsonl read back as {digest.hexdigest()}"
    result = {
        "seconds": seconds,
        "cpu": (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
        "rss_before_kb": rss_before,
        "peak_kb": peak,
        "peak_reset": peak_reset,
        "rss_trace": rss_trace,
        "state": built.state,
        "error": built.error,
        "samples_done": built.samples_done,
        "files": files,
        "read_back": checked,
    }
    storage.delete_folder(storage.RELEASES, release_prefix(built))  # hundreds of MB, in the server's memory
    connection.close()
    Path(spec["result"]).write_text(json.dumps(result))


def s3_server_pid(endpoint: str) -> int | None:
    """The S3 server's process on this machine (moto_server listening on the endpoint's port), if any."""
    port = str(urlsplit(endpoint).port or 80)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"moto_server") for a in argv) and port.encode() in argv:
            return int(entry.name)
    return None


def run_build(work: Path, label: str, env: dict[str, str], s3_pid: int | None) -> dict:
    spec = {"project": "export-bench", "label": label, "env": env}
    trees = {"bench": os.getpid(), **({"s3 server": s3_pid} if s3_pid else {})}
    before = cpu_snapshot(trees)
    result = run_in_child(__file__, work, label, spec)
    cpu = cpu_snapshot(trees).minus(before)
    result["machine_busy"] = cpu["machine busy"] / cpu["machine total"] if cpu["machine total"] else 0.0
    result["s3_server_cpu"] = cpu.get("s3 server", 0.0)
    return result


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class Row:
    store: str
    round: int
    result: dict

    @property
    def seconds(self) -> float:
        return self.result["seconds"]

    @property
    def peak_mb(self) -> float:
        return self.result["peak_kb"] / 1024

    @property
    def growth_mb(self) -> float:
        return (self.result["peak_kb"] - self.result["rss_before_kb"]) / 1024

    @property
    def written_mb(self) -> float:
        return sum(f["byte_size"] for f in self.result["files"]) / 1e6

    def trace(self) -> str:
        trace = self.result["rss_trace"]
        if not trace:
            return "-"
        picks = [trace[0], trace[len(trace) // 2], trace[-1]]
        return " / ".join(f"{kb / 1024:.0f}" for _, kb in picks)


def data_files(result: dict) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in result["files"] if f["format"] not in ("manifest", "card")}


def failures(rows: list[Row]) -> list[str]:
    problems = []
    for row in rows:
        if row.result["state"] != "completed":
            problems.append(f"{row.store} build {row.round}: {row.result['state']}: {row.result['error']}")
        elif row.result["read_back"] != "ok":
            problems.append(f"{row.store} build {row.round}: {row.result['read_back']}")
    local = [r for r in rows if r.store == "local" and r.result["state"] == "completed"]
    if local:
        expected = data_files(local[0].result)
        for row in rows:
            if row.result["state"] == "completed" and data_files(row.result) != expected:
                differ = sorted(p for p, h in data_files(row.result).items() if expected.get(p) != h)
                problems.append(f"{row.store} build {row.round}: other bytes than the local build in {differ}")
    return problems


def print_report(rows: list[Row], size: int, smoke: bool) -> bool:
    print(
        f"\n{'store':<6} {'round':>5} {'seconds':>8} {'samples/s':>10} {'MB written':>10} {'peak RSS MB':>11} "
        f"{'growth MB':>9} {'RSS first/mid/last MB':>22} {'build CPU s':>11} {'S3 server CPU s':>15} "
        f"{'machine busy':>12}"
    )
    for row in rows:
        print(
            f"{row.store:<6} {row.round:>5} {row.seconds:>8.2f} {size / row.seconds:>10,.0f} {row.written_mb:>10.1f} "
            f"{row.peak_mb:>11.1f} {row.growth_mb:>9.1f} {row.trace():>22} {row.result['cpu']:>11.1f} "
            f"{row.result['s3_server_cpu']:>15.1f} {row.result['machine_busy']:>11.0%}"
        )
    tar = next((f for f in rows[0].result["files"] if f["path"] == "images.tar"), None)
    if tar:
        print(f"images.tar: {tar['rows']:,} images, {tar['byte_size'] / 1e6:.1f} MB")
    problems = failures(rows)
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        return False
    local = min(r.seconds for r in rows if r.store == "local")
    s3 = min(r.seconds for r in rows if r.store == "s3")
    local_peak = max(r.peak_mb for r in rows if r.store == "local")
    s3_peak = max(r.peak_mb for r in rows if r.store == "s3")
    ratio = s3 / local
    allowance = max(FLAT_TOLERANCE_MB, FLAT_TOLERANCE_FRACTION * local_peak)
    print(
        f"\nS3 / local time (best of each): {ratio:.2f}x ({s3:.2f} s / {local:.2f} s); "
        f"peak RSS S3 {s3_peak:.1f} MB vs local {local_peak:.1f} MB ({s3_peak - local_peak:+.1f} MB)"
    )
    print("data files identical in every build (sha256), rich.jsonl read back from each store with its sha256")
    if smoke:
        print(SMOKE_NOTE)
        return True
    met_time = ratio <= TARGET_RATIO
    met_memory = s3_peak - local_peak <= allowance
    print(f"target: S3 build within {TARGET_RATIO}x of local: {'met' if met_time else 'MISSED'}")
    print(f"target: memory flat (S3 peak within {allowance:.0f} MB of local): {'met' if met_memory else 'MISSED'}")
    return met_time and met_memory


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark a release built to the local folder and to S3.")
    parser.add_argument("--size", type=int, default=63_000, help="samples (63,000)")
    parser.add_argument("--images", type=int, default=5_000, help="distinct image files in images.tar (5,000)")
    parser.add_argument("--image-kb", type=int, default=24, help="size of each image file, about (24 KB)")
    parser.add_argument("--rounds", type=int, default=1, help="builds to each store, alternating (1)")
    parser.add_argument("--s3-endpoint", default=DEFAULT_S3_ENDPOINT, help=f"the S3 server ({DEFAULT_S3_ENDPOINT})")
    add_common_arguments(parser, database_url=DEFAULT_DATABASE_URL)
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.images, args.image_kb, args.rounds = 1_200, 200, 8, 1
    if args.size < 1 or not 1 <= args.images <= args.size:
        parser.error("--size must be positive and --images between 1 and --size")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    db = Database.parse(args.database_url)
    lock = db.exclusive()
    raise_on_sigterm()
    whole = time.perf_counter()
    ok = False
    bucket = f"storage-bench-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="annotator-storage-bench-") as tmp:
        work = Path(tmp)
        bench_environment(
            db,
            work,
            ANNOTATOR_RELEASES_ROOT=str(work / "releases"),
            ANNOTATOR_UPLOAD_DIR=str(work / "uploads"),
            **S3_CREDENTIALS,
        )
        import boto3

        client = boto3.client("s3", endpoint_url=args.s3_endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        try:
            server = db.recreate()
            print(
                f"Python {platform.python_version()}, PostgreSQL {server} ({db.host}:{db.port}/{db.name}), "
                f"{os.cpu_count()} CPUs; S3 server {args.s3_endpoint}; code: {code_version()}"
            )
            migrated = migrate()
            from django.conf import settings
            from django.db import connections
            from export_bench import Seeder

            print(f"migrated in {migrated:.1f} s; part size {settings.STORAGE_PART_BYTES / 2**20:.0f} MiB")
            started = time.perf_counter()
            seeder = Seeder()
            seeder.grow(args.size)
            print(f"seeded {args.size:,} samples in {time.perf_counter() - started:.1f} s", flush=True)
            started = time.perf_counter()
            stored = store_images(make_images(args.images, args.image_kb), bucket, args.s3_endpoint)
            total = sum(s["bytes"] for s in stored)
            print(
                f"stored {len(stored):,} images ({total / 1e6:.1f} MB) locally and in the bucket in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            connections.close_all()  # the children open their own
            stores = {
                "local": {"ANNOTATOR_STORAGE": "local"},
                "s3": {
                    "ANNOTATOR_STORAGE": "s3",
                    "ANNOTATOR_S3_BUCKET": bucket,
                    "ANNOTATOR_S3_ENDPOINT_URL": args.s3_endpoint,
                    "ANNOTATOR_S3_REGION": "us-east-1",
                },
            }
            rows: list[Row] = []
            s3_pid = s3_server_pid(args.s3_endpoint)
            for round_ in range(1, args.rounds + 1):
                for store, env in stores.items():
                    print(f"  building to {store} (round {round_}) ...", flush=True)
                    row = Row(store, round_, run_build(work, f"{store}-{round_}", env, s3_pid))
                    rows.append(row)
                    print(
                        f"    {row.seconds:.2f} s, peak RSS {row.peak_mb:.1f} MB (+{row.growth_mb:.1f}), "
                        f"{row.result['state']}",
                        flush=True,
                    )
            ok = print_report(rows, args.size, args.smoke)
        except KeyboardInterrupt:
            print("\ninterrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            close_database(db, keep=args.keep, lock=lock)
            empty_bucket(client, bucket)
    print(f"\nwhole run: {time.perf_counter() - whole:.1f} s")
    return 0 if ok else 1


def empty_bucket(client: Any, bucket: str) -> None:
    """The bucket and what is left in it (the images; the builds removed their releases)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        run_child(Path(sys.argv[2]))
    else:
        sys.exit(main(sys.argv[1:]))
