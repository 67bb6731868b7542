"""Celery tasks: thin; they take ids and call services."""

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from feedback.jobs.models import Job

from . import recovery
from .importers.service import import_batch_start
from .jobs import batch as job_batches
from .jobs import service as jobs
from .references.service import reference_fetch, send_fetches
from .sending import IMAGE_FETCH, IMAGE_FETCH_DISPATCH, IMPORT_RUN, JOB_BATCH, JOB_DISPATCH, JOB_WATCH, LLM_ITEM_RUN
from .workers import heartbeat


@shared_task(name=IMPORT_RUN, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_batch_run_task(batch_id: int) -> None:
    # Only a queued batch is run, by the one attempt that claims it: a duplicate message does
    # nothing, and a batch whose worker was lost is queued again by the sweep (feedback/recovery.py).
    import_batch_start(batch_id)


@shared_task(name=IMAGE_FETCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def image_fetch_task(reference_ids: list[int]) -> None:
    """A few image references (``default`` queue), one after the other: each fetched, checked and
    stored, or failed with its reason, or left for a retry."""
    for reference_id in reference_ids:
        reference_fetch(reference_id=reference_id)


@shared_task(name=IMAGE_FETCH_DISPATCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def image_fetch_dispatch_task(reference_ids: list[int]) -> None:
    """An import chunk's references, queued as fetch tasks by a worker rather than by the import."""
    send_fetches(reference_ids)


@shared_task(name=LLM_ITEM_RUN, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def llm_item_run(item_id: int, token: str) -> None:
    """One turn of a job (routed to the ``llm`` queue)."""
    jobs.item_run(item_id=item_id, token=token)


@shared_task(name=JOB_DISPATCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def job_dispatch_task(job_id: int) -> None:
    jobs.job_dispatch(job_id=job_id)


@shared_task(name=JOB_WATCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def job_watch_task(job_id: int) -> None:
    jobs.job_watch(job_id=job_id)


@shared_task(name=JOB_BATCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def job_batch_task(job_id: int, chain: bool = True) -> None:
    """A batch-mode job's poller (``default`` queue): uploads, polls, reads its batches."""
    job_batches.job_batch_tick(job_id=job_id, chain=chain)


@worker_ready.connect
def _watch_active_jobs(**_: object) -> None:
    """A worker starting (perhaps after one was lost) makes sure every active job has a watcher: one
    interval from now, a watcher that died with its worker has gone stale and this one takes over."""
    for job_id in Job.objects.filter(state__in=(Job.State.RUNNING, Job.State.CANCELLING)).values_list("pk", flat=True):
        job_watch_task.apply_async((job_id,), countdown=settings.JOB_WATCH_INTERVAL)


@worker_ready.connect
def _start_sweeper(**_: object) -> None:
    """Imports and releases of a lost worker are queued again: at once, then every interval."""
    recovery.start_sweeper()


@worker_ready.connect
def _start_heartbeat(sender=None, **_: object) -> None:
    """The worker records its host, queues and pool now and every interval (feedback/workers/heartbeat.py)."""
    if sender is not None:
        heartbeat.start(sender)


@worker_shutdown.connect
def _stop_sweeper(**_: object) -> None:
    recovery.stop_sweeper()
    heartbeat.stop()
