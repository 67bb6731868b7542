"""Import benchmark: speed and memory of the native, DRESS and COCO importers as the file grows.

    .venv/bin/python bench/import_bench.py [--sizes 6300,63000] [--images 5000] [--database-url URL]
    .venv/bin/python bench/import_bench.py --formats coco     # a generated 450 MB instances file
    .venv/bin/python bench/import_bench.py --smoke            # every format, small: runs in seconds

The COCO case generates an ``instances_*.json`` the size of ``instances_train2017.json`` (118,287
images, 860,001 boxes with their polygons, about 450 MB) and imports it; its target is a peak RSS
under 300 MB (the importer streams the document), and its time is reported.

Everything it writes lives in a temporary folder (images, JSONL files, ANNOTATOR_VAR_DIR and
MEDIA_ROOT) and in a database of its own, which it drops and creates at the start and drops at
the end. The database name must contain "bench", so a real database can never be dropped by
a mistyped URL.

Each import runs in a child process of its own (this script again, with a hidden flag), so the
peak resident memory reported is that import's alone: the child resets its high-water mark
just before the import and reads it just after. The RSS before the import, the peak, and their
difference are reported; were the importer to hold the whole file, the difference would grow
with the number of records.

--profile FILE additionally runs one import of the smallest native file under cProfile and
writes the statistics to FILE (and prints the top entries).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _harness import (
    CHILD_FLAG,
    COLOURS,
    SMOKE_NOTE,
    SUBJECTS,
    Database,
    add_common_arguments,
    bench_environment,
    close_database,
    migrate,
    peak_rss_kb,
    print_profile,
    proc_status_kb,
    reset_peak_rss,
    run_in_child,
    setup_django,
)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/annotator_bench"
TARGET_RECORDS = 63_000
TARGET_SECONDS = 60.0
# Memory counts as flat when the peak at the largest size exceeds the peak at the smallest by
# no more than this many MB, or by this fraction, whichever is larger.
FLAT_TOLERANCE_MB = 20.0
FLAT_TOLERANCE_FRACTION = 0.10
SEED = 20240607
# COCO train2017 instances: images, boxes, categories; and the peak RSS its import must stay under.
COCO_IMAGES = 118_287
COCO_BOXES = 860_001
COCO_CATEGORIES = 80
COCO_TARGET_PEAK_MB = 300.0
SMOKE_SIZES = [300, 600]
SMOKE_COCO = (1_200, 8_600)


# --------------------------------------------------------------------------------------------
# Memory


# --------------------------------------------------------------------------------------------
# Test data

LABELS = ["person", "car", "dog", "cup", "chair", "bench", "bottle", "bicycle", "bus", "umbrella"]
QUESTIONS = [
    "What is the {s} in this picture doing, and what does the setting tell us about the time of day?",
    "Describe the {s} in the image in detail, including its colour, its position and anything unusual about it.",
    "Could you explain what is happening around the {s} and whether anything in the scene looks unsafe?",
    "I am writing a short story set in this scene. What details of the {s} and its surroundings should I use?",
    "How many distinct objects can you see near the {s}, and how are they arranged relative to each other?",
    "Is there anything in this photograph that suggests where it was taken? Focus on the {s} and the background.",
]
QUESTION_TAILS = [
    "Please keep the answer short but precise.",
    "I would like you to mention only what is actually visible.",
    "If you are unsure about something, say so rather than guessing.",
    "Answer as if you were describing it to someone who cannot see the image.",
    "A list would be easier for me to read than a paragraph.",
]
ANSWER_SENTENCES = [
    "The image shows a {c} {s} {p}.",
    "In the foreground the {s} takes up most of the frame, with soft light falling from the left.",
    "The background is slightly blurred, which suggests the photograph was taken with a wide aperture.",
    "There appear to be a few people in the distance, although their faces cannot be made out.",
    "The colours are muted, and the {c} tones of the {s} stand out against the surroundings.",
    "Judging by the shadows, the picture was most likely taken in the late afternoon.",
    "Nothing in the scene looks dangerous, and the {s} seems to be in ordinary use.",
    "A small sign is visible on the right, but the text on it is too small to read.",
    "The ground is wet, so it has probably rained shortly before the photograph was taken.",
    "Overall the composition is simple and draws attention to the {s} at the centre.",
    "There is a second object partly hidden behind the {s}, possibly a bag or a box.",
    "The scene looks like an urban setting with buildings of three or four storeys.",
]
CRITIQUES = [
    "The response describes the {s} accurately but invents a sign that is not in the image.",
    "The answer is relevant and mostly correct, although it guesses the time of day without evidence.",
    "It misses the second object next to the {s} and is vaguer than it needs to be about positions.",
    "The description is fluent and grounded in the picture; only the count of people is doubtful.",
    "The response answers a different question from the one asked and ignores the request for a list.",
    "Good level of detail, but the claim about rain is speculation presented as fact.",
]
REFINEMENTS = [
    "Please describe only what can be seen: drop the sign, and say how many people are actually visible.",
    "Your answer would be better if it listed the objects around the {s} from left to right.",
    "Try again, and this time mention the second object behind the {s} and avoid guessing the weather.",
    "Keep the useful detail about the {s} but remove the speculation about where the photo was taken.",
    "Answer the question that was asked: how many objects are near the {s}, and where exactly are they?",
]
CRITERIA = ["helpfulness", "honesty", "harmlessness"]


def image_name(index: int) -> str:
    # COCO-like: twelve digits, spread out like real image ids.
    return f"{100_000 + index * 97:012d}.jpg"


def image_annotations(index: int) -> dict:
    """The same image always carries the same annotations, as a real dataset's would."""
    rng = random.Random(SEED * 31 + index)
    subject, place = SUBJECTS[index % len(SUBJECTS)]
    colour = COLOURS[index % len(COLOURS)]
    return {
        "file_name": image_name(index),
        "width": 64,
        "height": 48,
        "captions": [f"A {colour} {subject} {place}."],
        "objects": [
            {"label": rng.choice(LABELS), "bbox": [rng.randint(0, 30), rng.randint(0, 20), 20, 16]},
            {"label": rng.choice(LABELS), "bbox": [rng.randint(0, 40), rng.randint(0, 30), 12.5, 10]},
        ],
    }


def make_images(folder: Path, count: int) -> None:
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    for i in range(count):
        background = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        img = Image.new("RGB", (64, 48), background)
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x, y = rng.randrange(56), rng.randrange(40)
            fill = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            draw.rectangle([x, y, x + rng.randint(4, 24), y + rng.randint(4, 18)], fill=fill)
        img.save(folder / image_name(i), "JPEG", quality=85)


class TextMaker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def fill(self, template: str, index: int) -> str:
        subject, place = SUBJECTS[index % len(SUBJECTS)]
        return template.format(s=subject, p=place, c=COLOURS[index % len(COLOURS)])

    def question(self, image: int, n: int) -> str:
        rng = self.rng
        text = self.fill(rng.choice(QUESTIONS), image)
        tails = " ".join(rng.sample(QUESTION_TAILS, 2))
        return f"{text} {tails} (Question {n} of my notes on this picture.)"

    def answer(self, image: int) -> str:
        sentences = self.rng.sample(ANSWER_SENTENCES, self.rng.randint(5, 7))
        return " ".join(self.fill(s, image) for s in sentences)

    def critique(self, image: int) -> str:
        return " ".join(self.fill(s, image) for s in self.rng.sample(CRITIQUES, 2))

    def refinement(self, image: int) -> str:
        return " ".join(self.fill(s, image) for s in self.rng.sample(REFINEMENTS, 2))


def write_native(path: Path, records: int, images: int) -> None:
    text = TextMaker(SEED + 1)
    rng = text.rng
    with path.open("w", encoding="utf-8") as out:
        for n in range(records):
            image = n % images
            first_user = text.question(image, n)
            refinement = text.refinement(image)
            turns = []
            for user in (first_user, refinement):
                turns.append(
                    {
                        "user": user,
                        "model": text.answer(image),
                        "feedback": [
                            {
                                "criterion": rng.choice(CRITERIA),
                                "score": rng.randint(1, 7),
                                "critique": text.critique(image),
                                "refinement": text.refinement(image),
                            }
                        ],
                    }
                )
            record = {
                "id": f"bench-{n:07d}",
                "image": image_annotations(image),
                "criterion": "helpfulness",
                "reference": text.answer(image),
                "source": {"dataset": "bench", "model": "bench-vlm-7b"},
                "metadata": {"split": "train", "shard": n // 1000},
                "turns": turns,
            }
            out.write(json.dumps(record, ensure_ascii=False))
            out.write("\n")


def write_dress(path: Path, records: int, images: int) -> None:
    text = TextMaker(SEED + 2)
    rng = text.rng
    with path.open("w", encoding="utf-8") as out:
        for n in range(records):
            image = n % images
            annotations = image_annotations(image)
            refinement = text.refinement(image)
            record = {
                "image_id": annotations["file_name"],
                "caption": annotations["captions"][0],
                "interaction": [
                    {
                        "user": text.question(image, n),
                        "model": text.answer(image),
                        "rating": str(rng.randint(1, 7)),
                        "critique NLF": text.critique(image),
                    },
                    {
                        "user": refinement,
                        "model": text.answer(image),
                        "rating": str(rng.randint(1, 7)),
                        "critique NLF": text.critique(image),
                    },
                ],
            }
            out.write(json.dumps(record, ensure_ascii=False))
            out.write("\n")


def write_coco(path: Path, images: int, boxes: int) -> None:
    """A COCO instances file shaped like train2017's: keys in its order, polygons and all."""
    rng = random.Random(SEED + 3)
    polygons = []
    for _ in range(997):
        points = rng.randint(20, 32)
        polygons.append(",".join(f"{rng.uniform(0, 640):.2f},{rng.uniform(0, 480):.2f}" for _ in range(points)))
    with path.open("w", encoding="utf-8") as out:
        out.write('{"info": {"description": "bench", "version": "1.0", "year": 2017}, "licenses": [], "images": [')
        for i in range(images):
            image_id = 9 + i * 3
            out.write(
                f'{"," if i else ""}{{"license": 3, "file_name": "{image_id:012d}.jpg", '
                f'"coco_url": "http://images.example.org/train2017/{image_id:012d}.jpg", "height": 480, '
                f'"width": 640, "date_captured": "2013-11-14 16:28:13", '
                f'"flickr_url": "http://farm.example.org/{image_id}.jpg", "id": {image_id}}}'
            )
        out.write('], "annotations": [')
        for n in range(boxes):
            image_id = 9 + (n * 7919 % images) * 3  # boxes of one image spread through the file, as in COCO
            x, y = rng.randint(0, 600), rng.randint(0, 440)
            w, h = round(rng.uniform(2, 200), 2), round(rng.uniform(2, 200), 2)
            out.write(
                f'{"," if n else ""}{{"segmentation": [[{polygons[n % len(polygons)]}]], "area": {w * h:.4f}, '
                f'"iscrowd": 0, "image_id": {image_id}, "bbox": [{x}, {y}, {w}, {h}], '
                f'"category_id": {1 + n % COCO_CATEGORIES}, "id": {100_000 + n}}}'
            )
        out.write('], "categories": [')
        out.write(
            ",".join(
                f'{{"supercategory": "thing", "id": {c + 1}, "name": "{LABELS[c % len(LABELS)]}-{c + 1}"}}'
                for c in range(COCO_CATEGORIES)
            )
        )
        out.write("]}")


# --------------------------------------------------------------------------------------------
# One import, in a child process


def run_child(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    setup_django()
    from django.db import connection

    from feedback.importers.service import import_file
    from feedback.models import Project

    project, _ = Project.objects.get_or_create(slug=spec["project"], defaults={"name": spec["project"]})
    path = Path(spec["path"])
    rss_samples: list[tuple[int, int]] = []

    def on_progress(batch) -> None:
        rss_samples.append((batch.records_read, proc_status_kb("VmRSS")))

    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
    connection.ensure_connection()
    rss_before = proc_status_kb("VmRSS")
    peak_reset = reset_peak_rss()
    started = time.perf_counter()
    cpu_started = time.process_time()
    if profiler:
        profiler.enable()
    batch = import_file(
        project=project,
        format=spec["format"],
        path=path,
        images=spec["images"],
        criterion=spec.get("criterion", ""),
        on_progress=on_progress,
    )
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak = peak_rss_kb()
    if profiler:
        profiler.dump_stats(spec["profile"])
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rss_before_kb": rss_before,
        "peak_kb": peak,
        "peak_reset": peak_reset,
        "rss_samples": rss_samples,
        "status": batch.status,
        "failure": batch.failure,
        "records_read": batch.records_read,
        "created": batch.created,
        "updated": batch.updated,
        "skipped": batch.skipped,
        "rejected": batch.rejected,
        "images_attached": batch.images_attached,
        "errors": batch.errors[:3],
        "warnings": batch.warnings[:3],
    }
    Path(spec["result"]).write_text(json.dumps(result))


def run_import(work: Path, label: str, *, media: str, **spec) -> dict:
    env = dict(os.environ, ANNOTATOR_MEDIA_ROOT=str(work / "media" / media))
    return run_in_child(__file__, work, label, spec, env)


def run_coco(work: Path, images: int, boxes: int) -> Row:
    path = work / "instances_train2017.json"
    started = time.perf_counter()
    write_coco(path, images, boxes)
    file_mb = path.stat().st_size / 1e6
    print(
        f"generated a COCO instances file of {images:,} images and {boxes:,} boxes ({file_mb:.1f} MB) "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    print(f"importing coco-{images} ...", flush=True)
    result = run_import(work, "coco", media="coco", format="coco", path=str(path), images="", project="bench-coco")
    result.update(boxes=boxes, file_mb=file_mb)
    path.unlink()
    return Row("coco", images, "import", result)


# --------------------------------------------------------------------------------------------
# Report


@dataclass
class Row:
    format: str
    records: int
    kind: str  # "import" or "re-import"
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

    def failures(self) -> list[str]:
        r = self.result
        want_created, want_skipped = (self.records, 0) if self.kind == "import" else (0, self.records)
        problems = []
        if self.format == "coco" and self.peak_mb >= COCO_TARGET_PEAK_MB:
            problems.append(f"peak RSS {self.peak_mb:.1f} MB, not under {COCO_TARGET_PEAK_MB:.0f} MB")
        if r["status"] != "completed":
            problems.append(f"status {r['status']}: {r['failure']}")
        if r["created"] != want_created:
            problems.append(f"created {r['created']} != {want_created}")
        if r["skipped"] != want_skipped:
            problems.append(f"skipped {r['skipped']} != {want_skipped}")
        if r["rejected"] != 0:
            problems.append(f"rejected {r['rejected']} != 0 (first: {r['errors'][:1]})")
        if r["updated"] != 0:
            problems.append(f"updated {r['updated']} != 0")
        if r["warnings"]:
            problems.append(f"warnings: {r['warnings'][:1]}")
        return problems


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'format':<8} {'run':<9} {'records':>8} {'seconds':>8} {'records/s':>10} "
        f"{'RSS before MB':>13} {'peak RSS MB':>11} {'RSS growth MB':>13} {'created':>8} {'skipped':>8} "
        f"{'rejected':>8} {'images':>7}  check"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        r = row.result
        check = "FAIL" if row.failures() else "ok"
        print(
            f"{row.format:<8} {row.kind:<9} {row.records:>8,} {row.seconds:>8.1f} {row.records / row.seconds:>10,.0f} "
            f"{r['rss_before_kb'] / 1024:>13.1f} {row.peak_mb:>11.1f} {row.growth_mb:>13.1f} {r['created']:>8,} "
            f"{r['skipped']:>8,} {r['rejected']:>8,} {r['images_attached']:>7,}  {check}"
        )


def print_memory_trace(rows: list[Row]) -> None:
    print("\nRSS during each import (MB, at the progress checkpoint after 1st chunk / half way / end):")
    for row in rows:
        samples = row.result["rss_samples"]
        if not samples:
            continue
        picks = [samples[0], samples[len(samples) // 2], samples[-1]]
        trace = " / ".join(f"{kb / 1024:.1f} @{read:,}" for read, kb in picks)
        print(f"  {row.format:<8} {row.kind:<9} {row.records:>8,}: {trace}")


def print_targets(rows: list[Row], *, smoke: bool = False) -> bool:
    ok = True
    print(f"\nTargets:{' ' + SMOKE_NOTE if smoke else ''}")
    imports = [r for r in rows if r.kind == "import"]
    for row in imports:
        if row.format == "coco":
            met = row.peak_mb < COCO_TARGET_PEAK_MB
            ok &= met or smoke
            boxes, file_mb = row.result.get("boxes", 0), row.result.get("file_mb", 0.0)
            print(
                f"  [{'PASS' if met else 'MISS'}] coco: {row.records:,} images ({boxes:,} boxes, {file_mb:.0f} MB) "
                f"with a peak RSS under {COCO_TARGET_PEAK_MB:.0f} MB -> {row.peak_mb:.1f} MB "
                f"in {row.seconds:.1f} s ({row.result.get('cpu_seconds', 0):.1f} s of the importer's CPU; "
                f"{file_mb / row.seconds:.1f} MB/s)"
            )
    for fmt in sorted({r.format for r in imports} - {"coco"}):
        mine = {r.records: r for r in imports if r.format == fmt}
        big = mine.get(TARGET_RECORDS) or mine[max(mine)]
        # Scaled to 63,000 when that size was not run, and said so.
        projected = big.seconds * TARGET_RECORDS / big.records
        met = projected < TARGET_SECONDS
        ok &= met or smoke  # a smoke run's files are too small for a projection to mean anything
        how = f"{big.seconds:.1f} s" if big.records == TARGET_RECORDS else f"~{projected:.1f} s projected"
        verdict = "PASS" if met else ("SMOKE" if smoke else "MISS")
        print(
            f"  [{verdict}] {fmt}: {TARGET_RECORDS:,} records in under {TARGET_SECONDS:.0f} s "
            f"-> {how} ({big.records / big.seconds:,.0f} records/s)"
        )
        if len(mine) >= 2:
            small, large = mine[min(mine)], mine[max(mine)]
            allowed = max(FLAT_TOLERANCE_MB, FLAT_TOLERANCE_FRACTION * small.peak_mb)
            diff = large.peak_mb - small.peak_mb
            flat = diff <= allowed
            ok &= flat or smoke
            print(
                f"  [{'PASS' if flat else 'MISS'}] {fmt}: memory flat between {small.records:,} and "
                f"{large.records:,} -> peak {small.peak_mb:.1f} MB vs {large.peak_mb:.1f} MB ({diff:+.1f} MB; "
                f"growth {small.growth_mb:.1f} vs {large.growth_mb:.1f} MB; allowed +{allowed:.1f} MB)"
            )
    for row in rows:
        for problem in row.failures():
            ok = False
            print(f"FAIL {row.format} {row.kind} of {row.records:,} records: {problem}")
    return ok


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the native and DRESS importers.")
    parser.add_argument("--sizes", default="6300,63000", help="comma-separated record counts (default 6300,63000)")
    parser.add_argument("--images", type=int, default=5000, help="distinct images referenced (default 5000)")
    parser.add_argument(
        "--formats", default="native,dress", help="comma-separated formats: native, dress, coco (default native,dress)"
    )
    parser.add_argument("--coco-images", type=int, default=COCO_IMAGES, help=f"COCO images (default {COCO_IMAGES:,})")
    parser.add_argument("--coco-boxes", type=int, default=COCO_BOXES, help=f"COCO boxes (default {COCO_BOXES:,})")
    parser.add_argument("--profile", metavar="FILE", help="also profile one import of the smallest native file")
    add_common_arguments(parser, database_url=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep-database", dest="keep", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    args.formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if args.smoke:
        args.sizes, args.images, args.formats = SMOKE_SIZES, 200, ["native", "dress", "coco"]
        args.coco_images, args.coco_boxes = SMOKE_COCO
    if not args.sizes or min(args.sizes) < 1 or args.images < 1 or args.coco_images < 1 or args.coco_boxes < 0:
        parser.error("sizes and images must be positive")
    if set(args.formats) - {"native", "dress", "coco"}:
        parser.error("formats: native, dress and/or coco")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    db = Database.parse(args.database_url)
    whole = time.perf_counter()
    ok = False
    with tempfile.TemporaryDirectory(prefix="annotator-bench-") as tmp:
        work = Path(tmp)
        bench_environment(db, work, ANNOTATOR_MEDIA_ROOT=str(work / "media" / "setup"))
        server = db.recreate()
        print(
            f"Python {platform.python_version()}, PostgreSQL {server} ({db.host}:{db.port}/{db.name}), "
            f"{os.cpu_count()} CPUs; work folder {work}"
        )
        try:
            migrated = migrate()
            from django.conf import settings

            print(f"migrated in {migrated:.1f} s; import chunk size {settings.IMPORT_CHUNK_SIZE}")

            started = time.perf_counter()
            images = work / "images"
            sample_formats = [f for f in args.formats if f != "coco"]
            if sample_formats:
                make_images(images, args.images)
            files: dict[tuple[str, int], Path] = {}
            for size in args.sizes if sample_formats else []:
                for fmt in sample_formats:
                    path = work / (f"native_{size}.jsonl" if fmt == "native" else f"helpfulness_nlf_{size}.jsonl")
                    (write_native if fmt == "native" else write_dress)(path, size, args.images)
                    files[fmt, size] = path
            sizes_mb = ", ".join(f"{fmt} {n:,}: {p.stat().st_size / 1e6:.1f} MB" for (fmt, n), p in files.items())
            if sample_formats:
                print(
                    f"generated {args.images:,} JPEGs and the files ({sizes_mb}) "
                    f"in {time.perf_counter() - started:.1f} s"
                )
            print()

            rows: list[Row] = []
            if "coco" in args.formats:
                rows.append(run_coco(work, args.coco_images, args.coco_boxes))
            for size in args.sizes if sample_formats else []:
                for fmt in sample_formats:
                    label = f"{fmt}-{size}"
                    print(f"importing {label} ...", flush=True)
                    common = {
                        "format": fmt,
                        "path": str(files[fmt, size]),
                        "images": str(images),
                        "criterion": "helpfulness" if fmt == "dress" else "",
                        "project": f"bench-{label}",
                    }
                    rows.append(Row(fmt, size, "import", run_import(work, label, media=label, **common)))
                    if size == args.sizes[-1]:
                        print(f"re-importing {label} ...", flush=True)
                        again = run_import(work, f"{label}-again", media=label, **common)
                        rows.append(Row(fmt, size, "re-import", again))
            profile_path = None
            if args.profile and "native" in args.formats:
                size = args.sizes[0]
                print(f"profiling native-{size} ...", flush=True)
                profile_path = Path(args.profile).resolve()
                run_import(
                    work,
                    f"profile-{size}",
                    media=f"profile-{size}",
                    format="native",
                    path=str(files["native", size]),
                    images=str(images),
                    project=f"bench-profile-{size}",
                    profile=str(profile_path),
                )
            print()
            print_table(rows)
            print_memory_trace(rows)
            ok = print_targets(rows, smoke=args.smoke)
            if profile_path:
                print_profile("one native import", profile_path)
        finally:
            close_database(db, keep=args.keep)
    print(f"\nwhole run: {time.perf_counter() - whole:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        run_child(Path(sys.argv[2]))
    else:
        sys.exit(main(sys.argv[1:]))
