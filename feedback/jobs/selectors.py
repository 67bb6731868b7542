"""Reads about jobs: the live progress the job page polls, in a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from feedback.jobs.models import BatchPart, Job, JobItem
from feedback.models import Project

RATE_WINDOW = 60  # seconds of recent work the rate is measured over
LATEST_ERRORS = 8
# Parts of a batch-mode job listed: each holds up to 50,000 items, so a job has few.
BATCH_PARTS_SHOWN = 200


def jobs_of(project: Project) -> QuerySet[Job]:
    return Job.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")


def job_progress(job: Job) -> dict[str, Any]:
    now = timezone.now()
    since = now - timedelta(seconds=RATE_WINDOW)
    counts = JobItem.objects.filter(job=job).aggregate(
        items=Count("id"),
        done=Count("id", filter=Q(state=JobItem.State.DONE)),
        failed=Count("id", filter=Q(state=JobItem.State.FAILED)),
        cancelled=Count("id", filter=Q(state=JobItem.State.CANCELLED)),
        in_flight=Count("id", filter=Q(state__in=JobItem.IN_FLIGHT)),
        recent=Count("id", filter=Q(state=JobItem.State.DONE, updated_at__gte=since)),
        retrying=Count("id", filter=Q(state__in=JobItem.IN_FLIGHT) & ~Q(error="")),
        throttled=Count("id", filter=Q(throttled__gt=0)),
    )
    finished = counts["done"] + counts["failed"] + counts["cancelled"]
    remaining = max(0, job.total - finished) if job.state not in Job.FINAL_STATES else 0
    window = float(RATE_WINDOW)
    if job.started_at:
        end = job.finished_at or now
        window = max(1.0, min(RATE_WINDOW, (end - job.started_at).total_seconds()))
    if job.finished_at and job.started_at:
        rate = counts["done"] / max(1.0, (job.finished_at - job.started_at).total_seconds())
    else:
        rate = counts["recent"] / window
    eta = remaining / rate if rate > 0 and remaining and job.state == Job.State.RUNNING else None
    errors = list(
        JobItem.objects.filter(job=job)
        .exclude(error="")
        .order_by("-updated_at", "-id")
        .values("turn__sample_id", "turn__sample__external_id", "turn__index", "state", "error", "updated_at")[
            :LATEST_ERRORS
        ]
    )
    return {
        "id": job.pk,
        "kind": job.kind,
        "mode": job.mode,
        "batches": batch_parts(job) if job.mode == Job.Mode.BATCH else [],
        "state": job.state,
        "stop_reason": job.stop_reason,
        "total": job.total,
        "done": counts["done"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "in_flight": counts["in_flight"],
        "retrying": counts["retrying"],
        "remaining": remaining,
        "rate_per_second": round(rate, 2),
        "eta_seconds": round(eta) if eta is not None else None,
        "tokens_in": job.tokens_in,
        "tokens_out": job.tokens_out,
        "cost": format(job.cost.normalize(), "f") if job.cost else "0",
        "budget": str(job.budget) if job.budget is not None else None,
        "latest_errors": [
            {
                "sample_id": e["turn__sample_id"],
                "sample": e["turn__sample__external_id"],
                "turn": e["turn__index"],
                "state": e["state"],
                "error": e["error"],
                "at": e["updated_at"].isoformat() if e["updated_at"] else None,
            }
            for e in errors
        ],
    }


def batch_parts(job: Job) -> list[dict[str, Any]]:
    """A batch-mode job's parts: each file and the provider's batch answering it, in one query."""
    rows: Any = (
        BatchPart.objects.filter(job=job)
        .order_by("number")
        .values(
            "number",
            "call",
            "state",
            "requests",
            "bytes",
            "remote_id",
            "remote_status",
            "completed",
            "failed",
            "stored",
            "to_live",
            "error",
            "submitted_at",
            "ended_at",
            "finished_at",
        )[:BATCH_PARTS_SHOWN]
    )
    return [
        {**row, **{k: row[k].isoformat() if row[k] else None for k in ("submitted_at", "ended_at", "finished_at")}}
        for row in rows
    ]
