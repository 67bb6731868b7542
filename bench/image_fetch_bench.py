"""Images by reference: registration of a COCO-sized import, and fetch throughput by 1 vs N workers.

1. **Registration**: a COCO captions file of ``--register`` images (118,287 = train2017) imported
   with ``--images-base``: the time to register every image and its reference and queue one fetch
   task each on the broker, without reading one image (the worker pool is not running).
2. **Fetch**: ``--images`` references (5,000) served by a loopback HTTP server (a distinct JPEG of
   about 20 KB each, after ``--latency-ms`` of simulated network latency), fetched by 1 and then N
   Celery workers (``--workers 1,4``; each ``--pool threads --concurrency --threads``) on Redis and
   PostgreSQL: images per second from the first task queued to the last reference settled, with the
   check that every reference was fetched once and its image stored with its dimensions.

    .venv/bin/python bench/image_fetch_bench.py --smoke
    .venv/bin/python bench/image_fetch_bench.py \\
        --database-url postgres://postgres@127.0.0.1:5432/annotator_refs_bench \\
        --broker-url redis://127.0.0.1:6379/7 --images 5000 --workers 1,4 --register 118287
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (
    Children,
    Database,
    add_common_arguments,
    bench_environment,
    close_database,
    code_version,
    flush_redis,
    migrate,
)


@dataclass(frozen=True)
class Size:
    images: int  # references fetched per run
    register: int  # images registered by reference
    workers: str  # worker counts to compare


FULL = Size(images=5000, register=118_287, workers="1,4")
SMOKE = Size(images=200, register=2000, workers="1,2")


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, latency: float) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.latency = latency
        self.served = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    server: ImageServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        from PIL import Image

        time.sleep(self.server.latency)
        seed = abs(hash(self.path)) % (1 << 24)
        out = io.BytesIO()
        picture = Image.effect_noise((160, 120), 40 + seed % 50).convert("RGB")
        picture.putpixel((0, 0), (seed & 255, (seed >> 8) & 255, (seed >> 16) & 255))  # distinct bytes per path
        picture.save(out, "JPEG", quality=90)
        body = out.getvalue()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.server.lock:
            self.server.served += 1


def write_coco(path: Path, count: int, prefix: str) -> Path:
    images = [{"id": i, "file_name": f"{prefix}{i:012d}.jpg", "width": 640, "height": 480} for i in range(count)]
    path.write_text(json.dumps({"images": images, "annotations": []}))
    return path


def import_by_reference(project, path: Path, base: str):
    from feedback.importers.service import import_file

    started = time.perf_counter()
    batch = import_file(project=project, format="coco", path=path, images_base=base)
    return batch, time.perf_counter() - started


def settled(batch_id: int) -> bool:
    from feedback.references.models import ImageReference

    return not ImageReference.objects.filter(import_batch_id=batch_id, state__in=["pending", "fetching"]).exists()


def worker_argv(n: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "annotator", "worker", "--queues", "default", "--pool", "threads",
        "--concurrency", str(threads), "--hostname", f"fetch{n}@%h", "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(
        parser,
        database_url="postgres://postgres@127.0.0.1:5432/annotator_refs_bench",
        broker_url="redis://127.0.0.1:6379/7",
    )
    parser.add_argument("--images", type=int, help=f"references fetched per run (default {FULL.images:,})")
    parser.add_argument("--register", type=int, help=f"images registered by reference (default {FULL.register:,})")
    parser.add_argument("--workers", help=f"worker counts to compare (default {FULL.workers})")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the image server's latency (default 50)")
    args = parser.parse_args()
    size = SMOKE if args.smoke else FULL
    images = args.images or size.images
    register = args.register if args.register is not None else size.register
    counts = [int(n) for n in (args.workers or size.workers).split(",") if int(n) > 0]  # 0: registration only

    db = Database.parse(args.database_url)
    lock = db.exclusive(f"broker {args.broker_url}")
    work = Path(tempfile.mkdtemp(prefix="image-fetch-bench-"))
    server = ImageServer(args.latency_ms / 1000)
    children = Children()
    try:
        version = db.recreate()
        flush_redis(args.broker_url)
        bench_environment(
            db,
            work,
            broker_url=args.broker_url,
            ANNOTATOR_IMAGE_REF_HOSTS=f"http://127.0.0.1:{server.server_address[1]}",
            ANNOTATOR_IMAGE_REF_PRIVATE_NETWORKS="127.0.0.0/8",
        )
        migrate()
        from feedback.models import Image, Project
        from feedback.references.models import ImageReference
        from feedback.references.service import FETCH_GROUP

        print(f"image fetch bench · PostgreSQL {version} · {code_version()}")
        base = f"http://127.0.0.1:{server.server_address[1]}/img/"
        if register:
            project = Project.objects.create(name="register", slug="register")
            batch, seconds = import_by_reference(project, write_coco(work / "reg.json", register, "r"), base)
            refs = ImageReference.objects.filter(import_batch=batch).count()
            assert refs == register and server.served == 0, (refs, server.served)
            print(
                f"registration: {register:,} images by reference in {seconds:.1f} s "
                f"({register / seconds:,.0f} images/s; a worker queues a fetch task per {FETCH_GROUP}); "
                f"images read: {server.served}"
            )
            flush_redis(args.broker_url)
            ImageReference.objects.filter(import_batch=batch).update(state="failed", reason="bench: not fetched")

        results = []
        for workers in counts:
            project = Project.objects.create(name=f"fetch-{workers}", slug=f"fetch-{workers}")
            started_workers = [
                children.start(
                    f"worker {n}", worker_argv(n, args.threads), env=dict(os.environ),
                    log_path=work / f"worker-{workers}-{n}.log",
                )
                for n in range(workers)
            ]  # fmt: skip
            from feedback.workers.models import WorkerHeartbeat

            deadline = time.monotonic() + 60
            while WorkerHeartbeat.objects.filter(stopped_at__isnull=True, name__startswith="fetch").count() < workers:
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not start:\n" + started_workers[0].output())
                time.sleep(0.2)
            served = server.served
            started = time.perf_counter()
            batch, seconds = import_by_reference(
                project, write_coco(work / f"f{workers}.json", images, f"w{workers}-"), base
            )
            while not settled(batch.pk):
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            fetched = ImageReference.objects.filter(import_batch=batch, state="fetched").count()
            stored = Image.objects.filter(project=project).exclude(file="").filter(width=160, height=120).count()
            ok = fetched == images == stored and server.served - served == images
            results.append((workers, elapsed, ok))
            print(
                f"{workers} worker(s) x {args.threads} threads: {images:,} references in {elapsed:.1f} s = "
                f"{images / elapsed:,.0f} images/s (registration {seconds:.1f} s of it); fetched {fetched:,}, "
                f"stored with dimensions {stored:,}, requests {server.served - served:,}: {'ok' if ok else 'FAILED'}"
            )
            for child in started_workers:
                children.stop(child)
            WorkerHeartbeat.objects.all().delete()
        if len(results) > 1:
            print(f"speed-up {results[-1][0]} vs {results[0][0]} workers: {results[0][1] / results[-1][1]:.2f}x")
        if not all(ok for _, _, ok in results):
            raise SystemExit("a run did not fetch every reference exactly once")
    finally:
        children.stop_all()
        server.shutdown()
        close_database(db, keep=args.keep, lock=lock)


if __name__ == "__main__":
    main()
