"""Worker heartbeats: each Celery worker records where it runs, what it consumes and when it was
last seen, so that admins can tell a live pool from a dead one (feedback/workers/heartbeat.py)."""

from django.db import models


class WorkerHeartbeat(models.Model):
    name = models.CharField(max_length=300, unique=True, help_text="Celery's node name, e.g. llm@host.")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list)
    pool = models.CharField(max_length=50, blank=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="Set when the worker shut down cleanly.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
