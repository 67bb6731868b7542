"""Worker heartbeats: every Celery worker records its host, pid, queues and pool in the database
when it starts, then every ``WORKER_HEARTBEAT_INTERVAL`` seconds from a thread of its own (as the
recovery sweep runs: the thread lives exactly as long as its worker), and marks itself stopped on
a clean shutdown. A worker not seen for ``WORKER_STALE_AFTER`` seconds is flagged stale on the
admins' Workers page and in ``/api/workers/``: it was killed, hangs, or lost its database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from .models import WorkerHeartbeat

log = logging.getLogger(__name__)


# Celery's pool modules by the name ``--pool`` takes.
POOL_NAMES = {"thread": "threads"}


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    queues: list[str]
    pool: str
    concurrency: int | None


def describe(consumer) -> WorkerInfo:
    """What a worker consumes, read from the consumer the ``worker_ready`` signal sends."""
    app = consumer.app
    queues = sorted(app.amqp.queues.consume_from) if app.amqp.queues.consume_from else []
    controller = getattr(consumer, "controller", None)
    pool_cls = getattr(controller, "pool_cls", None) if controller is not None else None
    pool = getattr(pool_cls, "__module__", "") if pool_cls is not None else ""
    return WorkerInfo(
        name=str(consumer.hostname),
        queues=queues,
        pool=POOL_NAMES.get(pool.rsplit(".", 1)[-1], pool.rsplit(".", 1)[-1]),
        concurrency=getattr(controller, "concurrency", None),
    )


def heartbeat_record(info: WorkerInfo, *, starting: bool = False) -> None:
    """Upserts this worker's row: last seen now (and started now, when it starts)."""
    now = timezone.now()
    values = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": info.queues,
        "pool": info.pool,
        "concurrency": info.concurrency,
        "last_seen": now,
        "stopped_at": None,
    }
    if starting or not WorkerHeartbeat.objects.filter(name=info.name).update(**values):
        WorkerHeartbeat.objects.update_or_create(name=info.name, defaults={**values, "started_at": now})


def heartbeat_stop(info: WorkerInfo) -> None:
    WorkerHeartbeat.objects.filter(name=info.name, pid=os.getpid()).update(stopped_at=timezone.now())


_stop = threading.Event()
_thread: threading.Thread | None = None


def _loop(info: WorkerInfo) -> None:
    starting = True
    while True:
        try:
            heartbeat_record(info, starting=starting)
            starting = False
        except Exception:
            log.exception("worker heartbeat failed; trying again next interval")
        finally:
            close_old_connections()
        if _stop.wait(settings.WORKER_HEARTBEAT_INTERVAL):
            break
    try:
        heartbeat_stop(info)
    except Exception:
        log.exception("could not record the worker's shutdown")
    connections.close_all()


def start(consumer) -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    _stop.clear()
    _thread = threading.Thread(target=_loop, args=(describe(consumer),), name="worker-heartbeat", daemon=True)
    _thread.start()


def stop() -> None:
    _stop.set()
    if _thread is not None:
        _thread.join(timeout=5)
