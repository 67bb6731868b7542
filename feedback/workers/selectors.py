"""The workers admins see: every worker that ever beat, with its age and whether it went stale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import WorkerHeartbeat


@dataclass(frozen=True)
class WorkerRow:
    name: str
    host: str
    pid: int
    queues: list[str]
    pool: str
    concurrency: int | None
    started_at: datetime
    last_seen: datetime
    seconds_since: float
    state: str  # "alive", "stale" (not seen within WORKER_STALE_AFTER) or "stopped" (shut down cleanly)


def workers_list(*, now: datetime | None = None) -> list[WorkerRow]:
    now = now or timezone.now()
    stale_after = timedelta(seconds=settings.WORKER_STALE_AFTER)
    rows = []
    for w in WorkerHeartbeat.objects.order_by("name"):
        if w.stopped_at is not None:
            state = "stopped"
        elif now - w.last_seen > stale_after:
            state = "stale"
        else:
            state = "alive"
        rows.append(
            WorkerRow(
                name=w.name,
                host=w.host,
                pid=w.pid,
                queues=list(w.queues),
                pool=w.pool,
                concurrency=w.concurrency,
                started_at=w.started_at,
                last_seen=w.last_seen,
                seconds_since=max(0.0, (now - w.last_seen).total_seconds()),
                state=state,
            )
        )
    return rows
