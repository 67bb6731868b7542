"""The trials' task: thin; it takes ids and calls the service. Registered by name when the app starts."""

from celery import shared_task

from .service import TRIAL_ITEM_RUN, trial_item_run


@shared_task(name=TRIAL_ITEM_RUN, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def trial_item_run_task(draft_id: int, token: str) -> None:
    """One variant's draft of one turn (routed to the ``llm`` queue)."""
    trial_item_run(draft_id=draft_id, token=token)
