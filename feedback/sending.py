"""Sending Celery tasks from services: by name, once the transaction that made their work visible commits.

A service never imports the tasks that call it (that was a cycle, dodged with imports inside
functions). It sends a task by its registered name, one of the constants of its app, and the tasks
module declares each task under the same constant; the routes (CELERY_TASK_ROUTES) name them too,
so renaming a function moves nothing. The apps import their tasks modules when Django starts
(AppConfig.ready), so a name is always known to the process; in eager mode (tests) the task runs in
place, as with .delay().
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import signature
from django.db import transaction

# Task names of the feedback app (exports names its own, in exports/service.py).
IMPORT_RUN = "feedback.tasks.import_batch_run_task"
IMAGE_FETCH = "feedback.tasks.image_fetch_task"
IMAGE_FETCH_DISPATCH = "feedback.tasks.image_fetch_dispatch_task"
JOB_DISPATCH = "feedback.tasks.job_dispatch_task"
JOB_WATCH = "feedback.tasks.job_watch_task"
JOB_BATCH = "feedback.tasks.job_batch_task"
LLM_ITEM_RUN = "feedback.tasks.llm_item_run"


def send(name: str, *args: Any, countdown: float = 0.0) -> None:
    """Queue the task `name` with `args` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: signature(name, args=args).apply_async(countdown=countdown or None))


def send_each(name: str, args: Iterable[tuple[Any, ...]]) -> None:
    """Queue one task `name` per tuple of arguments, after the current transaction commits."""
    batch = list(args)

    def queue() -> None:
        for one in batch:
            signature(name, args=one).apply_async()

    transaction.on_commit(queue)
