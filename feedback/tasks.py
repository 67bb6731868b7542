"""Celery tasks: thin; they take ids and call services."""

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from .importers.service import import_batch_run
from .jobs import service as jobs
from .models import ImportBatch, Job


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_batch_run_task(batch_id: int) -> None:
    # RUNNING too: a task redelivered after its worker was lost finishes the import, which is
    # idempotent. A finished batch is not run again.
    unfinished = (ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING)
    batch = ImportBatch.objects.select_related("project").filter(pk=batch_id, status__in=unfinished).first()
    if batch is None:
        return
    import_batch_run(batch=batch)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def llm_item_run(item_id: int, token: str) -> None:
    """One turn of a job (routed to the ``llm`` queue)."""
    jobs.item_run(item_id=item_id, token=token)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def job_dispatch_task(job_id: int) -> None:
    jobs.job_dispatch(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def job_watch_task(job_id: int) -> None:
    jobs.job_watch(job_id=job_id)


@worker_ready.connect
def _watch_active_jobs(**_: object) -> None:
    """A worker starting (perhaps after one was lost) makes sure every active job has a watcher: one
    interval from now, a watcher that died with its worker has gone stale and this one takes over."""
    for job_id in Job.objects.filter(state__in=(Job.State.RUNNING, Job.State.CANCELLING)).values_list("pk", flat=True):
        job_watch_task.apply_async((job_id,), countdown=settings.JOB_WATCH_INTERVAL)
