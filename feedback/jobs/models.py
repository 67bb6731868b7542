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

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=JobKind.values), name="job_kind_valid"),
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
