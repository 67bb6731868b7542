"""Bulk LLM runs: a Job and one JobItem per turn it covers.

Items are the truth about progress; broker messages only wake workers. Each enqueue gives the
item a fresh token, so a stale or duplicated message finds a token that is no longer its own
and does nothing; a lease lets a watcher re-enqueue what a lost worker held.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


# The choices live at module level so that the models' Meta (a class body of its own, which
# cannot see the model's names) states its constraints from them; the models keep them as
# Job.Kind, Job.State and JobItem.State.
class JobKind(models.TextChoices):
    DRAFT = "draft", "Draft feedback"
    RESPOND = "respond", "Generate responses (DRESS loop)"


class JobMode(models.TextChoices):
    LIVE = "live", "Live: one call per turn, at once"
    BATCH = "batch", "Batch: the provider's Batch API, cheaper, within a day"


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"


class JobItemState(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(models.Model):
    Kind = JobKind
    Mode = JobMode
    State = JobState

    ACTIVE_STATES = (State.QUEUED, State.RUNNING, State.CANCELLING)
    FINAL_STATES = (State.CANCELLED, State.COMPLETED, State.FAILED)

    # The admin actions, and the one table of which of them each state allows: the service refuses
    # the others (a Conflict) and the job page disables their buttons.
    ACTIONS = ("pause", "resume", "cancel", "retry")
    ALLOWED_ACTIONS: dict[str, frozenset[str]] = {
        State.QUEUED: frozenset({"pause", "cancel"}),
        State.RUNNING: frozenset({"pause", "cancel", "retry"}),
        State.PAUSED: frozenset({"resume", "cancel", "retry"}),
        State.CANCELLING: frozenset(),
        State.CANCELLED: frozenset(),
        State.COMPLETED: frozenset({"retry"}),
        State.FAILED: frozenset({"retry"}),
    }

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.LIVE)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    selection = models.JSONField(default=dict, blank=True, help_text="The filter that chose the turns.")
    llm_settings = models.JSONField(default=dict, blank=True, help_text="Model settings, never a key.")
    rounds = models.PositiveSmallIntegerField(default=1)
    total = models.PositiveIntegerField(default=0, help_text="Items planned, rounds still to come included.")
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    reserved_cost = models.DecimalField(
        max_digits=14, decimal_places=8, default=0, help_text="The worst-case cost of calls in flight."
    )
    budget = models.DecimalField(max_digits=14, decimal_places=8, null=True, blank=True)
    estimate = models.JSONField(
        default=dict, blank=True, help_text="What the dry run said before launch: calls, tokens, cost, time."
    )
    stop_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    watched_at = models.DateTimeField(null=True, blank=True)
    batch_ticked_at = models.DateTimeField(
        null=True, blank=True, help_text="Batch mode: when the poller last looked at the job's batches."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=JobKind.values), name="job_kind_valid"),
            models.CheckConstraint(condition=Q(mode__in=JobMode.values), name="job_mode_valid"),
            models.CheckConstraint(condition=Q(state__in=JobState.values), name="job_state_valid"),
            models.CheckConstraint(condition=Q(rounds__gte=1), name="job_rounds_positive"),
            models.CheckConstraint(condition=Q(budget__isnull=True) | Q(budget__gte=0), name="job_budget_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job {self.pk} in {self.project}"

    @property
    def allowed_actions(self) -> frozenset[str]:
        """The admin actions the job's state allows."""
        return self.ALLOWED_ACTIONS.get(self.state, frozenset())

    @classmethod
    def states_allowing(cls, action: str) -> list[str]:
        """The states in which ``action`` is allowed: the condition of the update that performs it."""
        return [state for state, actions in cls.ALLOWED_ACTIONS.items() if action in actions]


class JobItem(models.Model):
    State = JobItemState

    IN_FLIGHT = (State.QUEUED, State.RUNNING)
    FINAL = (State.DONE, State.FAILED, State.CANCELLED)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    turn = models.ForeignKey("feedback.Turn", on_delete=models.CASCADE, related_name="job_items")
    round = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    token = models.CharField(max_length=32, blank=True, help_text="The one message allowed to run this item.")
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Failed attempts; 429s do not count.")
    throttled = models.PositiveIntegerField(default=0, help_text="429 answers received.")
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    part = models.ForeignKey(
        "BatchPart",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="items",
        help_text="Batch mode: the part of the job's batches that asked for this item.",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "turn"], name="job_item_one_per_turn"),
            models.CheckConstraint(condition=Q(state__in=JobItemState.values), name="job_item_state_valid"),
            models.CheckConstraint(
                condition=~Q(state=JobItemState.FAILED) | ~Q(error=""), name="job_item_failure_says_why"
            ),
        ]
        indexes = [
            models.Index(fields=["job", "state"]),
            models.Index(fields=["job", "updated_at"]),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} of job {self.job_id}: turn {self.turn_id} ({self.state})"


class BatchPartState(models.TextChoices):
    WRITING = "writing", "Items chosen; the file is not uploaded yet"
    UPLOADED = "uploaded", "File uploaded; the batch is not created yet"
    SUBMITTED = "submitted", "Batch created; waiting for the provider"
    READING = "reading", "Batch ended; storing its results"
    DONE = "done", "Every item stored or sent to the live path"
    CANCELLED = "cancelled", "Cancelled with its job"


class BatchPart(models.Model):
    """One file of a batch-mode job's requests and the provider's batch that answers it.

    Each remote step records its id here before the next one starts, so that a worker lost
    between two steps leaves a part the next poll resumes where it was: a part ``writing`` is
    written and uploaded again, one ``uploaded`` finds its batch by its file or creates it, one
    ``submitted`` is polled, one ``reading`` reads its files again (items already stored are
    skipped). A lease (token, lease_until) keeps two workers off the same step."""

    State = BatchPartState
    OPEN = (State.WRITING, State.UPLOADED, State.SUBMITTED, State.READING)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="batch_parts")
    number = models.PositiveIntegerField(help_text="1, 2, ... within the job.")
    call = models.CharField(max_length=20, default="draft", help_text="What its lines ask for: draft or respond.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.WRITING)
    requests = models.PositiveIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    input_file_id = models.CharField(max_length=200, blank=True)
    remote_id = models.CharField(max_length=200, blank=True, help_text="The provider's batch id.")
    remote_status = models.CharField(max_length=40, blank=True)
    output_file_id = models.CharField(max_length=200, blank=True)
    error_file_id = models.CharField(max_length=200, blank=True)
    completed = models.PositiveIntegerField(default=0, help_text="Lines the provider answered.")
    failed = models.PositiveIntegerField(default=0, help_text="Lines the provider failed.")
    stored = models.PositiveIntegerField(default=0, help_text="Items stored from the batch's answers.")
    to_live = models.PositiveIntegerField(default=0, help_text="Items sent to the live path instead.")
    reserved_cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When the provider's batch ended.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="batch_part_number_unique"),
            models.CheckConstraint(condition=Q(state__in=BatchPartState.values), name="batch_part_state_valid"),
        ]
        indexes = [models.Index(fields=["job", "state"])]

    def __str__(self) -> str:
        return f"part {self.number} of job {self.job_id} ({self.state})"
