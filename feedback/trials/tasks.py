"""The trials' tasks: thin; they take ids and call the service. Registered by name when the app starts."""

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from .service import TRIAL_ITEM_RUN, TRIAL_WATCH, running_trials, trial_item_run, trial_watch


@shared_task(name=TRIAL_ITEM_RUN, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def trial_item_run_task(draft_id: int, token: str) -> None:
    """One variant's draft of one turn (routed to the ``llm`` queue)."""
    trial_item_run(draft_id=draft_id, token=token)


@shared_task(name=TRIAL_WATCH, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def trial_watch_task(trial_id: int) -> None:
    trial_watch(trial_id=trial_id)


@worker_ready.connect
def _watch_running_trials(**_: object) -> None:
    """A worker starting (perhaps after one was lost) makes sure every running trial has a watcher."""
    for trial_id in running_trials():
        trial_watch_task.apply_async((trial_id,), countdown=settings.JOB_WATCH_INTERVAL)
