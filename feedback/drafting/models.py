"""What the LLM produced: drafts of feedback and generated responses, both immutable records,
and the shared state of the global rate limit."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class CallStatus(models.TextChoices):
    OK = "ok", "Parsed as sent"
    REPAIRED = "repaired", "Repaired"
    REASKED = "reasked", "Right after one re-ask"
    FAILED = "failed", "Failed"


class LLMCall(models.Model):
    """Provenance shared by drafts and generated responses: who answered, how, at what cost."""

    # Each record declares its own turn and job, for related names of its own.
    status = models.CharField(max_length=20, choices=CallStatus.choices)
    error = models.TextField(blank=True)
    model = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=500, help_text="Base URL, never with credentials.")
    params = models.JSONField(default=dict, blank=True, help_text="Request parameters (no key).")
    raw_output = models.TextField(blank=True, help_text="Every answer's text, as received.")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    calls = models.PositiveSmallIntegerField(default=1, help_text="Requests made, a re-ask included.")
    simulated = models.BooleanField(default=False, help_text="Answered by the project's LLM simulator.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def succeeded(self) -> bool:
        return self.status != CallStatus.FAILED


class Draft(LLMCall):
    """The LLM's feedback on one turn: critique, refinement and a score per criterion."""

    turn = models.ForeignKey("feedback.Turn", on_delete=models.CASCADE, related_name="drafts")
    job = models.ForeignKey("feedback.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="drafts")
    critique = models.TextField(blank=True)
    refinement = models.TextField(blank=True)
    scores = models.JSONField(default=dict, blank=True, help_text="Criterion to score on the project's scale.")
    overall = models.SmallIntegerField(null=True, blank=True)
    prompt_version = models.CharField(max_length=50)
    prompt_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["turn_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "turn"], condition=~Q(status=CallStatus.FAILED), name="draft_one_per_turn_per_job"
            ),
            models.CheckConstraint(condition=Q(status__in=CallStatus.values), name="draft_status_valid"),
            models.CheckConstraint(
                condition=Q(status=CallStatus.FAILED) | (~Q(critique="") & Q(overall__isnull=False)),
                name="draft_complete_unless_failed",
            ),
            models.CheckConstraint(
                condition=~Q(status=CallStatus.FAILED) | ~Q(error=""), name="draft_failure_says_why"
            ),
        ]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self) -> str:
        return f"draft {self.pk} of turn {self.turn_id} ({self.status})"


class Generation(LLMCall):
    """A response of the model under study, generated for a turn that awaited one."""

    turn = models.ForeignKey("feedback.Turn", on_delete=models.CASCADE, related_name="generations")
    job = models.ForeignKey("feedback.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="generations")

    class Meta:
        ordering = ["turn_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "turn"], condition=~Q(status=CallStatus.FAILED), name="generation_one_per_turn_per_job"
            ),
            models.CheckConstraint(condition=Q(status__in=CallStatus.values), name="generation_status_valid"),
        ]

    def __str__(self) -> str:
        return f"generation {self.pk} for turn {self.turn_id} ({self.status})"


class RateLimitBucket(models.Model):
    """The database backend of the global rate limit: one row per limited key (GCRA state)."""

    key = models.CharField(max_length=300, unique=True)
    tat = models.FloatField(default=0.0, help_text="Theoretical arrival time, seconds since the epoch.")

    def __str__(self) -> str:
        return self.key


class PromptVersion(models.Model):
    """One version of a project's drafting prompt: system and user text with named placeholders.

    Its text never changes once it drafted (``locked_at``): a new wording is a new version. Version 1
    of every project is the shipped ``v1``. ``sha256`` is the hash drafts record as ``prompt_hash``.
    """

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="prompt_versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=50, help_text="What drafts and the project's default call it, e.g. v2.")
    system = models.TextField()
    user = models.TextField()
    sha256 = models.CharField(max_length=64)
    note = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    based_on = models.PositiveIntegerField(
        null=True, blank=True, help_text="The number of the version it started from."
    )
    locked_at = models.DateTimeField(null=True, blank=True, help_text="When it first drafted: never edited since.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="prompt_version_number_unique"),
            models.UniqueConstraint(fields=["project", "name"], name="prompt_version_name_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="prompt_version_number_positive"),
            models.CheckConstraint(condition=~Q(name=""), name="prompt_version_name_present"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="prompt_version_sha256_hex"),
        ]

    def __str__(self) -> str:
        return f"prompt {self.name} of project {self.project_id}"
