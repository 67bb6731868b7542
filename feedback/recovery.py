"""The recovery sweep: work of a lost worker is queued again, on every broker.

kombu's filesystem transport deletes a message when a worker fetches it, and Redis gives an
unacknowledged message back only after its visibility timeout, so a worker killed mid-import or
mid-build cannot count on its message coming back. Imports and releases therefore hold an
attempt with a lease (feedback/attempts.py), and every worker runs this sweep in a thread of its
own: at start (the worker-ready signal; always) and then every ``SWEEP_INTERVAL`` seconds, one
worker per interval (a conditional update of the ``Sweep`` row decides which). A thread lives exactly as
long as its worker, so there is no message to lose and no chain of tasks to multiply.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connections
from django.utils import timezone

from .models import Sweep

log = logging.getLogger(__name__)

NAME = "recovery"
# Each part takes the sweep's time and returns what it did, by name.
PARTS = (
    "feedback.importers.service:import_batches_recover",
    "exports.service:releases_recover",
    "feedback.references.service:image_references_recover",
)

_stop = threading.Event()
_thread: threading.Thread | None = None


def sweep(*, force: bool = False) -> dict[str, int] | None:
    """One round; None when another worker swept within the interval (unless forced)."""
    now = timezone.now()
    if not force and not _my_turn(now):
        return None
    done: dict[str, int] = {}
    for dotted in PARTS:
        module, _, name = dotted.partition(":")
        done.update(getattr(import_module(module), name)(now))
    if any(done.values()):
        log.info("recovery sweep: %s", ", ".join(f"{k} {v}" for k, v in done.items() if v))
    return done


def _my_turn(now: datetime) -> bool:
    due = now - timedelta(seconds=0.8 * settings.SWEEP_INTERVAL)
    if Sweep.objects.filter(name=NAME, ran_at__lt=due).update(ran_at=now):
        return True
    if Sweep.objects.filter(name=NAME).exists():
        return False
    try:
        Sweep.objects.create(name=NAME, ran_at=now)
    except IntegrityError:
        return False  # another worker made the row this instant, and sweeps
    return True


def _loop() -> None:
    first = True  # a worker that starts sweeps at once: it may be replacing one that was lost
    while True:
        try:
            sweep(force=first)
            first = False
        except Exception:
            log.exception("recovery sweep failed; trying again next interval")
        finally:
            close_old_connections()
        if _stop.wait(settings.SWEEP_INTERVAL):
            break
    connections.close_all()


def start_sweeper() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    _stop.clear()
    _thread = threading.Thread(target=_loop, name="recovery-sweep", daemon=True)
    _thread.start()


def stop_sweeper() -> None:
    _stop.set()
