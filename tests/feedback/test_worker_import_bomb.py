"""A zip bomb among an upload's images, imported by a real Celery worker: the entry is refused by
its declared size, unread, and the worker's memory never holds it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback.importers.uploads import import_upload_create
from feedback.models import Image, ImportBatch
from tests.recovery_helpers import import_settled
from tests.worker import WorkerProcess

from .import_helpers import image_bytes, native_record, write_jsonl

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

GIB = 1024**3


def zip_bomb(entries: dict[str, bytes], bomb_name: str, bomb_size: int) -> bytes:
    """A zip holding ``entries`` stored, and ``bomb_name``: ``bomb_size`` zero bytes deflated to about
    a thousandth of that, written directly (compressing a gigabyte takes zipfile many seconds)."""
    block = 8 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    flushed = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    zeros = bytes(block)
    for _ in range(bomb_size // block):
        crc = zlib.crc32(zeros, crc)
    members = [(name, data, 0, zlib.crc32(data), len(data)) for name, data in entries.items()]
    members.append((bomb_name, flushed * (bomb_size // block) + final, 8, crc, bomb_size))
    out, central = bytearray(), bytearray()
    for name, data, method, crc32, size in members:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc32, len(data), size, len(encoded), 0)
        out += encoded + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0,
            crc32,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_worker_refuses_a_gigabyte_zip_entry_without_reading_it(project, admin_user, tmp_path):
    archive = zip_bomb({"good.png": image_bytes()}, "bomb.png", GIB)
    assert len(archive) < 2 * 1024 * 1024
    samples = write_jsonl(tmp_path / "samples.jsonl", [native_record("a", "bomb.png"), native_record("b", "good.png")])
    batch = import_upload_create(
        project=project,
        user=admin_user,
        format="native",
        upload=SimpleUploadedFile("samples.jsonl", samples.read_bytes()),
        images=SimpleUploadedFile("images.zip", archive),
    )

    worker = WorkerProcess(log_path=tmp_path / "worker.log")
    try:
        settled = worker.wait_for(import_settled(batch), timeout=120)
        assert settled, f"the worker did not run the import:\n{worker.output()}"
        peak = peak_rss_mb(worker.process.pid)
    finally:
        worker.stop()

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.created, batch.images_attached) == (2, 1)
    [warning] = batch.warnings
    assert warning["message"].startswith(
        f"image bomb.png refused: zip entry 'bomb.png' declares {GIB:,} bytes, over the limit of "
    )
    assert "(ANNOTATOR_IMAGE_MAX_BYTES)" in warning["message"]
    assert Image.objects.get(file_name="bomb.png").is_missing
    assert peak < 700, f"the worker's memory peaked at {peak:.0f} MB"
