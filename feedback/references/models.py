"""Images known by reference: where a worker fetches an image's file from, and how that went.

An import may name an image by reference (``s3://bucket/key``, ``https://host/path`` or a path
under the read-only root) instead of bringing its file. The image is registered at once, without
a file, with one ImageReference; a worker on the ``default`` queue fetches the bytes, checks and
stores them as any imported file (feedback/images.py), and records the outcome here: the pages
say whether an image is pending or why its fetch failed, and the import's report lists failures.
"""

from django.db import models
from django.db.models import Q

from feedback.models import Image, ImportBatch

URI_MAX = 2000


class ImageReference(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        FETCHING = "fetching"
        FETCHED = "fetched"
        FAILED = "failed"

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="reference")
    uri = models.CharField(
        max_length=URI_MAX, help_text="s3://bucket/key, https://host/path, or a path under the root."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    reason = models.TextField(blank=True, help_text="Why the last attempt failed (kept while retrying).")
    attempts = models.PositiveIntegerField(default=0)
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="image_references"
    )
    import_line = models.PositiveIntegerField(null=True, blank=True)
    # The fetch holding the reference (a stale one writes nothing) and its lease; for a pending
    # reference, when it was queued: the sweep sends it again when no worker took it within a lease.
    attempt = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="After a transient failure: not before.")
    fetched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "fetching", "fetched", "failed"]), name="imageref_state_valid"
            ),
            models.CheckConstraint(condition=~Q(uri=""), name="imageref_uri_present"),
        ]
        indexes = [
            models.Index(fields=["state", "heartbeat_at"], name="imageref_state_heartbeat"),
            models.Index(fields=["import_batch", "state"], name="imageref_batch_state"),
        ]

    def __str__(self) -> str:
        return f"{self.uri} ({self.state})"
