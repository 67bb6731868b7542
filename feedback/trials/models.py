"""A trial, its variants, and the drafts each variant made: their own tables, so that nothing a trial
drafts is a project draft, reaches the review queue or a release."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from feedback.drafting.models import CallStatus


class TrialSet(models.TextChoices):
    SAMPLES = "samples", "A list of samples"
    RANDOM = "random", "A seeded random sample"
    REVIEWED = "reviewed", "Reviewed samples (their human finals are the gold)"


class Trial(models.Model):
    class State(models.TextChoices):
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="trials")
    name = models.CharField(max_length=100, blank=True)
    set_kind = models.CharField(max_length=20, choices=TrialSet.choices)
    set_size = models.PositiveIntegerField(null=True, blank=True, help_text="N of a random or reviewed set.")
    seed = models.PositiveIntegerField(default=0)
    sample_ids = models.JSONField(default=list, help_text="The set: ids of the samples, as chosen.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.RUNNING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    promoted = models.ForeignKey(
        "TrialVariant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The variant made the project's default.",
    )
    promoted_at = models.DateTimeField(null=True, blank=True)
    watched_at = models.DateTimeField(null=True, blank=True, help_text="When its watcher last looked.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(set_kind__in=TrialSet.values), name="trial_set_valid")]

    def __str__(self) -> str:
        return f"trial {self.pk} of {self.project_id}"


class TrialVariant(models.Model):
    """One way of drafting: the drafter's CallSettings (prompt version, connection, model,
    temperature, image on or off), as a job stores them."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="variants")
    position = models.PositiveSmallIntegerField()
    llm_settings = models.JSONField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["trial", "position"], name="trial_variant_once")]

    def __str__(self) -> str:
        return f"variant {self.label} of trial {self.trial_id}"

    @property
    def label(self) -> str:
        return chr(ord("A") + self.position) if self.position < 26 else str(self.position + 1)


class TrialDraft(models.Model):
    """One variant's draft of one turn: the work item and, once it ran, what came back (the fields of
    a Draft). One per variant and turn, so a redelivered message drafts nothing twice."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled with its trial"

    IN_FLIGHT = (State.QUEUED, State.RUNNING)
    OPEN = (State.PENDING, State.QUEUED, State.RUNNING)

    variant = models.ForeignKey(TrialVariant, on_delete=models.CASCADE, related_name="drafts")
    turn = models.ForeignKey("feedback.Turn", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="Queued or running until then; past it, its watcher sends it again."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=20, choices=CallStatus.choices, blank=True)
    error = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    raw_output = models.TextField(blank=True)
    critique = models.TextField(blank=True)
    refinement = models.TextField(blank=True)
    scores = models.JSONField(default=dict, blank=True)
    overall = models.SmallIntegerField(null=True, blank=True)
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    calls = models.PositiveSmallIntegerField(default=0)
    simulated = models.BooleanField(default=False)
    prompt_version = models.CharField(max_length=50, blank=True)
    prompt_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["variant", "turn"], name="trial_draft_once"),
            models.CheckConstraint(condition=Q(status="") | Q(status__in=CallStatus.values), name="trial_draft_status"),
        ]
        indexes = [models.Index(fields=["variant", "state"], name="trial_draft_state")]

    def __str__(self) -> str:
        return f"trial draft of turn {self.turn_id} by {self.variant_id}"
