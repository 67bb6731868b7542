"""The Celery application: named queues so that slow LLM calls never starve exports."""

import os
import time

from celery import Celery
from celery.signals import task_postrun
from kombu import Queue
from kombu.transport import TRANSPORT_ALIASES

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

# "filesystem://" takes the embedded broker that writes each message atomically.
TRANSPORT_ALIASES["filesystem"] = "annotator.broker:Transport"

app = Celery("annotator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "llm", "exports")]
app.autodiscover_tasks()

# Celery's Django fix-up closes every database connection before and after each task unless
# this is set: a new PostgreSQL session per LLM call cost more than the call's own work. The
# handler below keeps Django's rules instead: a connection that failed or outlived
# CONN_MAX_AGE is closed after the task, and the next task opens a fresh one.
app.conf.update(CELERY_DB_REUSE_MAX=1_000_000)


@task_postrun.connect
def _close_failed_or_old_connections(task=None, **_: object) -> None:
    if task is not None and getattr(task.request, "is_eager", False):
        return  # eager tasks run inside the caller's transaction
    from django.db import connections

    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        if conn.errors_occurred or (conn.close_at is not None and now >= conn.close_at):
            conn.close_if_unusable_or_obsolete()
