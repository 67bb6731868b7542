"""Dataset releases: what a researcher asked for, how far the build is, and what it wrote.

A release is immutable once built: its files, their sha256 and row counts, and the manifest
stay as they were written. Only the build itself moves its state forward.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


# At module level so that Release's Meta (which cannot see the model's names) states its
# constraints from it; the model keeps it as Release.State.
class ReleaseState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Building"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Release(models.Model):
    State = ReleaseState

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="releases")
    name = models.CharField(max_length=200, help_text="Shown in the list and the dataset card.")
    formats = models.JSONField(help_text='Format names, e.g. ["dress", "rich"].')
    filters = models.JSONField(default=dict, blank=True, help_text="The filters, as validated.")
    split = models.JSONField(default=dict, blank=True, help_text="Fractions per split and the hash seed.")
    include_images = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    samples_total = models.PositiveIntegerField(default=0, help_text="Samples of the project to read.")
    samples_done = models.PositiveIntegerField(default=0)
    samples_released = models.PositiveIntegerField(default=0)
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # The attempt that builds it: its token (a stale or cancelled attempt's writes are refused),
    # where it runs (host:pid) and its lease, renewed at every chunk; see feedback/recovery.py.
    attempt = models.CharField(max_length=32, blank=True)
    attempt_owner = models.CharField(max_length=300, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=ReleaseState.values), name="release_state_valid"),
            models.CheckConstraint(condition=Q(samples_done__lte=models.F("samples_total")), name="release_progress"),
            models.CheckConstraint(
                condition=~Q(state__in=[ReleaseState.FAILED, ReleaseState.CANCELLED]) | ~Q(error=""),
                name="release_failure_says_why",
            ),
        ]

    def __str__(self) -> str:
        return f"release {self.pk} of {self.project}: {self.name}"

    @property
    def finished(self) -> bool:
        return self.state in (self.State.COMPLETED, self.State.FAILED, self.State.CANCELLED)

    @property
    def active(self) -> bool:
        """Queued or being built: it may be cancelled, not deleted."""
        return self.state in (self.State.QUEUED, self.State.RUNNING)


class ReleaseFile(models.Model):
    """One file of a release, as written: its path inside the release, rows, size and sha256."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="files")
    path = models.CharField(max_length=300, help_text="Inside the release folder, e.g. train/helpfulness_nlf.jsonl.")
    format = models.CharField(max_length=30, help_text="The format that wrote it; 'card' or 'manifest' for those.")
    split = models.CharField(max_length=30, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    byte_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["path"]
        constraints = [models.UniqueConstraint(fields=["release", "path"], name="release_file_path_once")]

    def __str__(self) -> str:
        return self.path
