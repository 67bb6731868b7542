"""Celery tasks: thin; they take ids and call services."""

from celery import shared_task

from .importers.service import import_batch_run
from .models import ImportBatch


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def import_batch_run_task(batch_id: int) -> None:
    batch = ImportBatch.objects.select_related("project").filter(pk=batch_id, status=ImportBatch.Status.QUEUED).first()
    if batch is None:  # already run (a redelivery) or gone
        return
    import_batch_run(batch=batch)
