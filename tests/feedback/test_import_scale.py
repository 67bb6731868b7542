"""A few thousand records across many chunks: exact counts, errors by line, and an idempotent re-import."""

from typing import Any

import pytest
from django.db.models import Max

from feedback.models import Image, ImportBatch, Sample

from .import_helpers import counts, image_bytes, row_counts, run_import, write_jsonl

pytestmark = pytest.mark.django_db

RECORDS = 3_000
IMAGES = 200
CRITERIA = ["helpfulness", "honesty", "harmlessness"]


def image_name(n: int) -> str:
    return f"scale/img_{n:03d}.png"


def record(i: int) -> dict:
    n = i % IMAGES
    turns = []
    for k in range(1 + i % 3):
        turn: dict[str, Any] = {"user": f"Question {k} about sample {i}?", "model": f"Answer {k} to sample {i}."}
        if k % 2 == 0:
            turn["feedback"] = [{"criterion": CRITERIA[i % 3], "score": 1 + (i + k) % 7, "critique": f"Critique {i}"}]
        turns.append(turn)
    return {
        "id": f"s{i:05d}",
        "image": {
            "file_name": image_name(n),
            "captions": [f"Picture number {n}."],
            "objects": [{"label": f"thing-{n % 7}", "bbox": [n, n, 10, 20]}],
        },
        "criterion": CRITERIA[i % 3],
        "metadata": {"position": i},
        "turns": turns,
    }


def build_file(path):
    """The file, and what importing it must report: errors by line and rows by table."""
    bad: dict[int, tuple[Any, str]] = {
        100: ("{broken", ""),
        777: ({"id": "bad-turns", "turns": {"user": "Q?"}}, "turns"),
        1_500: ([], "record"),
        2_200: ({**record(10), "reference": "Not the same as line 11."}, "id"),
    }
    identical_after = 2_600
    lines: list[Any] = []  # records, and the bad lines: text, a list
    errors: list[tuple[int, str]] = []
    line_of: dict[int, int] = {}
    for i in range(RECORDS):
        lines.append(record(i))
        line_of[i] = len(lines)
        if i in bad:
            value, field = bad[i]
            lines.append(value)
            errors.append((len(lines), field))
        if i == identical_after:
            lines.append(record(2_000))
    write_jsonl(path, lines)
    turns = sum(1 + i % 3 for i in range(RECORDS))
    feedback = sum(len(range(0, 1 + i % 3, 2)) for i in range(RECORDS))
    return len(lines), errors, line_of, {"samples": RECORDS, "turns": turns, "feedback": feedback, "images": IMAGES}


def image_folder(tmp_path):
    folder = tmp_path / "images" / "scale"
    folder.mkdir(parents=True)
    for n in range(IMAGES):
        (folder / f"img_{n:03d}.png").write_bytes(image_bytes("PNG", (8, 8), (n, 255 - n, (7 * n) % 256)))
    return folder.parent


def test_thousands_of_records_across_chunks_import_exactly_once(project, tmp_path, settings):
    settings.IMPORT_CHUNK_SIZE = 250
    path = tmp_path / "scale.jsonl"
    total_lines, expected_errors, line_of, expected_rows = build_file(path)
    images = image_folder(tmp_path)
    progress: list[int] = []

    first = run_import(project, "native", path, images=images, on_progress=lambda b: progress.append(b.bytes_done))

    assert first.status == ImportBatch.Status.COMPLETED, first.failure
    assert counts(first) == {"read": total_lines, "created": RECORDS, "updated": 0, "skipped": 1, "rejected": 4}
    assert [(e["line"], e["field"]) for e in first.errors] == expected_errors
    assert first.errors[-1]["message"] == (
        f"'s00010' was already used at line {line_of[10]} of this file, with different content"
    )
    assert first.images_attached == IMAGES
    assert first.warnings == []
    assert row_counts() == expected_rows
    assert len(progress) > RECORDS // 250
    assert progress == sorted(progress)
    assert progress[-1] == first.bytes_total == path.stat().st_size

    sample = Sample.objects.get(external_id="s02999")
    assert sample.import_line == line_of[2_999]
    assert sample.metadata == {"position": 2_999}
    assert sample.turns.count() == 3
    assert sample.image is not None
    assert sample.image.file_name == image_name(2_999 % IMAGES)
    assert sample.image.captions == [f"Picture number {2_999 % IMAGES}."]
    assert not Image.objects.filter(file="").exists()
    assert Sample.objects.get(external_id="s00010").reference_answer == ""

    last_sample_change = Sample.objects.aggregate(at=Max("updated_at"))["at"]
    last_image_change = Image.objects.aggregate(at=Max("updated_at"))["at"]

    second = run_import(project, "native", path, images=images)

    assert second.status == ImportBatch.Status.COMPLETED, second.failure
    assert counts(second) == {"read": total_lines, "created": 0, "updated": 0, "skipped": RECORDS + 1, "rejected": 4}
    assert second.errors == first.errors
    assert second.images_attached == 0
    assert row_counts() == expected_rows
    assert Sample.objects.aggregate(at=Max("updated_at"))["at"] == last_sample_change
    assert Image.objects.aggregate(at=Max("updated_at"))["at"] == last_image_change
    assert not Sample.objects.exclude(import_batch=first).exists()
