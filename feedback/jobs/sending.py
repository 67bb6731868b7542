"""Sending the job tasks, always after the transaction that made their work visible commits."""

from __future__ import annotations

from django.db import transaction


def send_item(item_id: int, token: str, countdown: float = 0.0) -> None:
    from feedback.tasks import llm_item_run

    transaction.on_commit(lambda: llm_item_run.apply_async((item_id, token), countdown=countdown or None))


def send_items(item_ids: list[int], token: str) -> None:
    from feedback.tasks import llm_item_run

    def send() -> None:
        for item_id in item_ids:
            llm_item_run.apply_async((item_id, token))

    transaction.on_commit(send)


def send_dispatch(job_id: int) -> None:
    from feedback.tasks import job_dispatch_task

    transaction.on_commit(lambda: job_dispatch_task.delay(job_id))


def send_watch(job_id: int, countdown: float = 0.0) -> None:
    from feedback.tasks import job_watch_task

    transaction.on_commit(lambda: job_watch_task.apply_async((job_id,), countdown=countdown or None))
