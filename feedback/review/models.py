"""Human review: the queue of samples, reviewers' leases on them, and their revisions.

An Assignment is one reviewer's independent review of one sample: it holds the lease while the
reviewer works and stays as the record of the review once submitted. The revisions of an
assignment form a chain per turn (versions 1, 2, ...); a unique constraint on the chain is
what turns a save based on a stale version into a conflict instead of a silent overwrite.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class QueueItem(models.Model):
    """A sample's place in its project's review queue.

    ``sort_key`` follows the project's order setting; ``open`` turns false once the sample has
    the reviews the project requires, so that claims never walk past finished samples;
    ``holding`` counts the places taken (leased or submitted), updated with every lease.
    """

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="queue_items")
    sample = models.OneToOneField("feedback.Sample", on_delete=models.CASCADE, related_name="queue_item")
    sort_key = models.FloatField(default=0)
    open = models.BooleanField(default=True)
    reviews_done = models.PositiveSmallIntegerField(default=0)
    holding = models.PositiveSmallIntegerField(default=0, help_text="Review places leased or submitted.")

    class Meta:
        indexes = [
            models.Index(fields=["project", "sort_key", "sample"], condition=Q(open=True), name="queue_open_in_order"),
        ]

    def __str__(self) -> str:
        return f"queue item of sample {self.sample_id}"


class QueueState(models.Model):
    """The order settings a project's queue was last sorted by (a change re-sorts the whole queue),
    and how many samples the queue holds and how many of them are reviewed (closed).

    The two counts are kept by database triggers on the queue items (migration 0006), in the
    transaction that inserts, closes, reopens or deletes them, whatever code does it: the review
    page shows them on every render, and counting 60,000 items each time took a third of it.
    Lock order: whoever changes an item's ``open`` locks this row first (``queue_sync`` and
    ``assignment_submit`` do), so the trigger's write never waits behind a lock on items.
    """

    project = models.OneToOneField("feedback.Project", on_delete=models.CASCADE, related_name="queue_state")
    order_signature = models.CharField(max_length=200, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    items = models.PositiveIntegerField(default=0, help_text="Queue items of the project (kept by a trigger).")
    closed = models.PositiveIntegerField(default=0, help_text="Of them, closed: fully reviewed (kept by a trigger).")

    def __str__(self) -> str:
        return f"queue state of {self.project_id}"


class QueueChange(models.Model):
    """A note that a sample was added to the project or given a draft, not yet taken into the queue.

    Database triggers (migration 0005) write these notes in the very transaction that inserts the
    sample or the draft, whatever code inserts them (importers, jobs, ``bulk_create``, the admin).
    A note therefore becomes visible exactly when its sample or draft does, in whatever order
    concurrent transactions commit, which a high-water mark of ids cannot promise: a transaction
    may commit a lower id after another committed a higher one. ``queue_sync`` takes the notes in
    and deletes them, so the table holds only what arrived since the last sync.
    """

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="+")
    sample = models.ForeignKey("feedback.Sample", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"queue change of sample {self.sample_id}"


class Flag(models.TextChoices):
    BAD_IMAGE = "bad_image", "Bad image"
    UNANSWERABLE = "unanswerable", "Unanswerable"
    OFF_TOPIC = "off_topic", "Off-topic"


# At module level so that Assignment's Meta (which cannot see the model's names) states its
# constraints from it; the model keeps it as Assignment.State.
class AssignmentState(models.TextChoices):
    LEASED = "leased", "In review"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Lease expired"


# The states that hold one of the sample's review places.
HOLDING_STATES = [AssignmentState.LEASED, AssignmentState.SUBMITTED]


class Assignment(models.Model):
    State = AssignmentState
    HOLDING = tuple(HOLDING_STATES)

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="assignments")
    sample = models.ForeignKey("feedback.Sample", on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    lane = models.PositiveSmallIntegerField(help_text="Which of the sample's N independent reviews this is (1..N).")
    gold = models.BooleanField(
        default=False,
        help_text="A check of the reviewer against a gold sample's expected answer: holds none of the sample's "
        "review places, is never released, never adjudicated.",
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.LEASED)
    flag = models.CharField(max_length=20, choices=Flag.choices, blank=True)
    flag_note = models.TextField(blank=True)
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-claimed_at", "-id"]
        constraints = [
            # No review place of a sample is ever held twice: the guard against double claims.
            models.UniqueConstraint(
                fields=["sample", "lane"],
                condition=Q(state__in=HOLDING_STATES, gold=False),
                name="assignment_lane_once",
            ),
            # Nobody reviews the same sample twice.
            models.UniqueConstraint(
                fields=["sample", "reviewer"],
                condition=Q(state__in=HOLDING_STATES, gold=False),
                name="assignment_reviewer_once",
            ),
            # Nobody gets the same gold sample twice, whatever became of the first check.
            models.UniqueConstraint(fields=["sample", "reviewer"], condition=Q(gold=True), name="assignment_gold_once"),
            models.CheckConstraint(condition=Q(state__in=AssignmentState.values), name="assignment_state_valid"),
            models.CheckConstraint(
                condition=Q(flag="") | Q(state=AssignmentState.SUBMITTED), name="assignment_flag_on_submit"
            ),
            models.CheckConstraint(condition=Q(lane__gte=1), name="assignment_lane_positive"),
        ]
        indexes = [
            models.Index(fields=["sample", "state"]),
            models.Index(fields=["project", "reviewer", "state"]),
            models.Index(
                fields=["expires_at"], condition=Q(state=AssignmentState.LEASED), name="assignment_lease_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk}: sample {self.sample_id} to {self.reviewer_id} ({self.state})"


class Decision(models.TextChoices):
    ACCEPTED = "accepted", "Accepted as drafted"
    EDITED = "edited", "Edited"
    REJECTED = "rejected", "Rejected"


class Revision(models.Model):
    """A human's version of the feedback on one turn. Never updated, never deleted by the app."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="revisions")
    turn = models.ForeignKey("feedback.Turn", on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField(help_text="1, 2, ... within the assignment's chain for the turn.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="revisions")
    draft = models.ForeignKey(
        "feedback.Draft", null=True, blank=True, on_delete=models.PROTECT, related_name="revisions"
    )
    decision = models.CharField(max_length=20, choices=Decision.choices)
    reason = models.TextField(blank=True, help_text="Why the draft was rejected.")
    critique = models.TextField(blank=True)
    refinement = models.TextField(blank=True)
    scores = models.JSONField(default=dict, blank=True)
    time_spent_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    diff = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="Word diffs of critique and refinement ({field: [[op, text], ...]}) against the previous "
        "revision of the chain, the first against its draft: computed once, when saved (null: not yet).",
    )

    class Meta:
        ordering = ["turn_id", "assignment_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "turn", "version"], name="revision_version_once"),
            models.CheckConstraint(condition=Q(decision__in=Decision.values), name="revision_decision_valid"),
            models.CheckConstraint(
                condition=~Q(decision=Decision.REJECTED) | ~Q(reason=""), name="revision_reject_says_why"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="revision_version_positive"),
        ]
        indexes = [models.Index(fields=["author", "created_at"])]

    def __str__(self) -> str:
        return f"revision {self.version} of turn {self.turn_id} ({self.decision})"


class WorkingCopy(models.Model):
    """Unsaved typing, autosaved so that a closed tab or a reload loses nothing."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="working_copies")
    turn = models.ForeignKey("feedback.Turn", on_delete=models.CASCADE, related_name="+")
    fields = models.JSONField(default=dict)
    base_version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "turn"], name="working_copy_once")]
        verbose_name_plural = "working copies"

    def __str__(self) -> str:
        return f"working copy of turn {self.turn_id} in assignment {self.assignment_id}"


class AdjudicationCase(models.Model):
    """A sample whose submitted reviews disagree, waiting for (or settled by) an adjudicator.

    Opened once, when the sample's last required review is submitted (one case per sample: a
    disagreement reaches adjudication exactly once); ``turns`` holds the turns that disagree and
    why. Settled when each of those turns has its Adjudication.
    """

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="adjudication_cases")
    sample = models.OneToOneField("feedback.Sample", on_delete=models.CASCADE, related_name="adjudication_case")
    turns = models.JSONField(
        default=dict, help_text='Turn id to the reasons it disagrees: {"12": ["honesty: 2 vs 5"]}.'
    )
    opened_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        indexes = [
            models.Index(
                fields=["project", "opened_at"], condition=Q(settled_at__isnull=True), name="adjudication_case_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"adjudication case of sample {self.sample_id}"


class Adjudication(models.Model):
    """The final feedback of one turn, settled by an adjudicator: one reviewer's version (``revision``),
    as it was or edited. One per turn; in releases it is the turn's final feedback."""

    case = models.ForeignKey(AdjudicationCase, on_delete=models.CASCADE, related_name="adjudications")
    sample = models.ForeignKey("feedback.Sample", on_delete=models.CASCADE, related_name="adjudications")
    turn = models.OneToOneField("feedback.Turn", on_delete=models.CASCADE, related_name="adjudication")
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications")
    revision = models.ForeignKey(
        Revision, on_delete=models.PROTECT, related_name="adjudications", help_text="The reviewer's version chosen."
    )
    edited = models.BooleanField(default=False, help_text="The adjudicator changed the chosen version.")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    critique = models.TextField(blank=True)
    refinement = models.TextField(blank=True)
    scores = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["turn_id"]
        constraints = [
            models.CheckConstraint(condition=Q(decision__in=Decision.values), name="adjudication_decision_valid"),
            models.CheckConstraint(
                condition=~Q(decision=Decision.REJECTED) | ~Q(reason=""), name="adjudication_reject_says_why"
            ),
        ]

    def __str__(self) -> str:
        return f"adjudication of turn {self.turn_id} ({self.decision})"


class GoldSample(models.Model):
    """A reviewed sample whose finals are the expected answer of hidden checks (``review/gold.py``).

    ``expected`` is the finals as they were when the sample was marked, by turn id:
    ``{"12": {"decision", "critique", "refinement", "scores", "reason"}}``, so that a later change of
    the sample's reviews does not move the answer annotators were scored against. A gold sample is
    never released.
    """

    project = models.ForeignKey("feedback.Project", on_delete=models.CASCADE, related_name="gold_samples")
    sample = models.OneToOneField("feedback.Sample", on_delete=models.CASCADE, related_name="gold")
    expected = models.JSONField(default=dict)
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    marked_at = models.DateTimeField()
    retired_at = models.DateTimeField(
        null=True, blank=True, help_text="No longer served; its checks keep their scores, the sample is released again."
    )

    class Meta:
        ordering = ["marked_at", "id"]
        indexes = [models.Index(fields=["project", "id"])]

    def __str__(self) -> str:
        return f"gold sample {self.sample_id}"
