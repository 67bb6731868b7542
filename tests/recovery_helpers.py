"""Helpers of the recovery tests: an attempt owner whose process has ended, big files, and the
conditions a test waits for while a real worker runs."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from feedback import recovery
from feedback.models import ImportBatch


def ended_owner() -> str:
    """'host:pid' of a process of this machine that has ended, as a killed worker's would be."""
    child = subprocess.Popen(["true"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}"


def write_native(path: Path, count: int, *, turns: int = 1, feedback: bool = False) -> Path:
    """A native JSONL file of ``count`` samples with distinct ids and ``turns`` turns each (with
    imported honesty feedback on each turn, which releases take, when ``feedback``)."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            record: dict[str, Any] = {
                "id": f"s{n}",
                "image": f"img{n % 97}.jpg",
                "turns": [
                    {"user": f"Question {k} about picture {n}?", "model": f"Answer {k} to {n}."} for k in range(turns)
                ],
            }
            if feedback:
                for turn in record["turns"]:
                    turn["feedback"] = [{"criterion": "honesty", "score": 1 + n % 7, "critique": f"Critique of {n}."}]
            out.write(json.dumps(record) + "\n")
    return path


def forced_sweep() -> dict[str, int]:
    """One sweep of the recovery round, forced (a forced sweep always runs, so it has counts)."""
    counts = recovery.sweep(force=True)
    assert counts is not None
    return counts


def import_settled(batch: ImportBatch) -> Callable[[], bool]:
    """True once the batch (read again from the database) has completed or failed."""

    def check() -> bool:
        batch.refresh_from_db()
        return batch.status in (ImportBatch.Status.COMPLETED, ImportBatch.Status.FAILED)

    return check


def reached(row: Any, field: str, at_least: int) -> Callable[[], bool]:
    """True once ``row.field`` (read again from the database) is at least ``at_least``: the point
    where a test kills the worker mid-way."""

    def check() -> bool:
        row.refresh_from_db()
        return getattr(row, field) >= at_least

    return check
