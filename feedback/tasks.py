"""Celery tasks: thin; they take ids and call services."""

from celery import shared_task

from .importers.service import import_batch_run
from .models import ImportBatch


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_batch_run_task(batch_id: int) -> None:
    # RUNNING too: a task redelivered after its worker was lost finishes the import, which is
    # idempotent. A finished batch is not run again.
    unfinished = (ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING)
    batch = ImportBatch.objects.select_related("project").filter(pk=batch_id, status__in=unfinished).first()
    if batch is None:
        return
    import_batch_run(batch=batch)
