"""The domain: projects with their rubric, images with annotations, samples and their turns.

Invariants that code could forget are database constraints. Feedback from the LLM (drafts)
and from humans (revisions) attaches to a Turn; what came with an imported dataset is kept
apart as ImportedFeedback, marked as such.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

EXTERNAL_ID_MAX = 300
FILE_NAME_MAX = 500
DEFAULT_CRITERIA = ["helpfulness", "honesty", "harmlessness"]


def default_criteria() -> list[str]:
    return list(DEFAULT_CRITERIA)


def default_level_descriptions() -> dict[str, str]:
    return {
        "1": "Fails the criterion badly.",
        "2": "Mostly fails the criterion.",
        "3": "Falls short of the criterion in important ways.",
        "4": "Acceptable, with clear room for improvement.",
        "5": "Good, with minor problems.",
        "6": "Very good; hardly anything to improve.",
        "7": "Exemplary.",
    }


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    ANNOTATOR = "annotator", "Annotator"
    RESEARCHER = "researcher", "Researcher"
    ADJUDICATOR = "adjudicator", "Adjudicator"


class ReviewOrder(models.TextChoices):
    IMPORT = "import", "Import order"
    LOWEST_SCORE = "lowest_score", "Lowest LLM score first"
    CRITERION = "criterion", "One criterion first"
    RANDOM = "random", "Random, with a seed"


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown shown to annotators.")
    # The rubric.
    criteria = models.JSONField(default=default_criteria)
    score_min = models.PositiveSmallIntegerField(default=1)
    score_max = models.PositiveSmallIntegerField(default=7)
    level_descriptions = models.JSONField(default=default_level_descriptions, blank=True)
    # LLM settings. The API key is never stored: it belongs to a named connection, which only
    # superusers define (in the settings).
    llm_connection = models.CharField(
        max_length=100, blank=True, help_text="Name of an LLM connection; empty uses the default one."
    )
    llm_model = models.CharField(max_length=200, blank=True)
    llm_temperature = models.FloatField(default=0.2)
    prompt_version = models.CharField(max_length=50, default="v1")
    # Review.
    review_order = models.CharField(
        max_length=20,
        choices=ReviewOrder.choices,
        default=ReviewOrder.IMPORT,
        help_text="The order of the review queue.",
    )
    review_criterion = models.CharField(max_length=50, blank=True, help_text="Reviewed first, for that order.")
    review_seed = models.IntegerField(default=0, help_text="Seed of the random order.")
    reviews_required = models.PositiveSmallIntegerField(default=1, help_text="Independent reviews per sample.")
    review_lease_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds a claimed sample stays leased; empty: ANNOTATOR_REVIEW_LEASE."
    )
    adjudication_threshold = models.PositiveSmallIntegerField(
        default=2,
        help_text="With several reviews per sample: reviews whose scores of one criterion differ by at least "
        "this much (or that accept and reject) go to adjudication.",
    )
    gold_every = models.PositiveSmallIntegerField(
        default=0,
        help_text="One claim in this many serves an annotator a gold sample (a hidden check); 0: none.",
    )
    # Archived projects are hidden from the lists; nothing of theirs is deleted.
    archived_at = models.DateTimeField(null=True, blank=True)
    members: models.ManyToManyField = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="ProjectMembership", related_name="projects", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(score_min__lt=models.F("score_max")), name="project_scale_ordered"),
            models.CheckConstraint(
                condition=Q(llm_temperature__gte=0) & Q(llm_temperature__lte=2), name="project_temperature_range"
            ),
            models.CheckConstraint(
                condition=Q(reviews_required__gte=1) & Q(reviews_required__lte=20),
                name="project_reviews_required_range",
            ),
            models.CheckConstraint(
                condition=Q(review_order__in=ReviewOrder.values),
                name="project_review_order_valid",
            ),
            models.CheckConstraint(
                condition=Q(review_lease_seconds__isnull=True)
                | (Q(review_lease_seconds__gte=120) & Q(review_lease_seconds__lte=86400)),
                name="project_review_lease_range",
            ),
            models.CheckConstraint(
                condition=Q(adjudication_threshold__gte=1) & Q(adjudication_threshold__lte=100),
                name="project_adjudication_threshold_range",
            ),
            models.CheckConstraint(condition=Q(gold_every__lte=1000), name="project_gold_every_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The rubric's shape, which JSON columns cannot state as constraints."""
        errors: dict[str, str] = {}
        criteria = self.criteria
        if (
            not isinstance(criteria, list)
            or not criteria
            or not all(isinstance(c, str) and c.strip() for c in criteria)
        ):
            errors["criteria"] = "A non-empty list of criterion names."
        elif len(set(criteria)) != len(criteria):
            errors["criteria"] = "Each criterion once."
        levels = self.level_descriptions
        if not isinstance(levels, dict) or not all(isinstance(v, str) for v in levels.values()):
            errors["level_descriptions"] = 'An object from score to description, e.g. {"1": "Fails badly."}.'
        elif self.score_min is not None and self.score_max is not None:
            scale = {str(n) for n in range(self.score_min, self.score_max + 1)}
            stray = sorted(set(levels) - scale)
            if stray:
                errors["level_descriptions"] = f"Scores {', '.join(stray)} are outside the scale."
        if self.review_order == "criterion" and self.review_criterion not in (criteria or []):
            errors["review_criterion"] = "Name one of the project's criteria to review first."
        if errors:
            raise ValidationError(errors)

    @property
    def score_range(self) -> range:
        return range(self.score_min, self.score_max + 1)


class ProjectMembership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.role} in {self.project}"


class OneTimePassword(models.Model):
    """The user's password was chosen by someone else (a superuser adding them as a member with
    *Create the user*, or ``project_member --create``): until it changes, they can only choose their
    own (``annotator.passwords``). Removed by any change of the password (``annotator.tokens``)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"one-time password of user {self.user_id}"


class Image(models.Model):
    """A project's image, known by its original file name.

    The file may arrive after the image is registered (``file`` empty until then). Files are
    stored content-addressed under their sha256, so identical bytes are kept once on disk
    whatever their names or projects.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file_name = models.CharField(max_length=FILE_NAME_MAX, help_text="Original name, such as COCO's 000000151112.jpg.")
    file = models.FileField(upload_to="images/", max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    format = models.CharField(max_length=20, blank=True)
    byte_size = models.PositiveBigIntegerField(null=True, blank=True)
    # Dense annotations: captions (strings), object_boxes ({"label", "bbox": [x, y, w, h]}) and
    # regions ({"description", "bbox"}); boxes in pixels, COCO convention.
    captions = models.JSONField(default=list, blank=True)
    object_boxes = models.JSONField(default=list, blank=True)
    regions = models.JSONField(default=list, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["file_name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "file_name"], name="image_name_unique_per_project"),
            models.CheckConstraint(
                condition=Q(sha256="") | Q(sha256__regex=r"^[0-9a-f]{64}$"), name="image_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(sha256="", file="") | (~Q(sha256="") & ~Q(file="")), name="image_file_has_sha256"
            ),
            models.CheckConstraint(condition=~Q(file_name=""), name="image_file_name_present"),
        ]

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_missing(self) -> bool:
        return not self.file


class ImportBatch(models.Model):
    """One import of one file: what it read, what it did, and every record it refused."""

    # What a run reports as it goes; saved at every checkpoint.
    PROGRESS_FIELDS = (
        "bytes_done",
        "records_read",
        "created",
        "updated",
        "skipped",
        "rejected",
        "images_attached",
        "errors",
        "warnings",
    )

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_batches")
    format = models.CharField(max_length=20)
    file_name = models.CharField(max_length=500)
    file_sha256 = models.CharField(max_length=64, blank=True)
    upload_path = models.CharField(max_length=500, blank=True, help_text="Uploaded file awaiting a worker.")
    images_path = models.CharField(max_length=500, blank=True)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    bytes_total = models.PositiveBigIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0)
    records_read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    images_attached = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="Rejected records: line, field, message.")
    warnings = models.JSONField(
        default=list, blank=True, help_text="Kept records with a problem, e.g. a refused image."
    )
    failure = models.TextField(blank=True)
    # The attempt that runs the batch: its token (a stale attempt's writes are refused), where it
    # runs (host:pid) and its lease, renewed at every committed chunk; see feedback/recovery.py.
    attempt = models.CharField(max_length=32, blank=True)
    attempt_owner = models.CharField(max_length=300, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Where the last committed chunk ended in the file: a resumed attempt starts after it.
    checkpoint_position = models.PositiveBigIntegerField(default=0)
    upload_removed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "import batches"
        constraints = [
            models.CheckConstraint(condition=Q(bytes_done__lte=models.F("bytes_total")), name="batch_progress_bounded"),
        ]

    def __str__(self) -> str:
        return f"{self.format} import of {self.file_name} into {self.project}"


class Sweep(models.Model):
    """When a periodic sweep last ran, so that one worker of many does it per interval."""

    name = models.CharField(max_length=50, primary_key=True)
    ran_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} sweep at {self.ran_at}"


class Sample(models.Model):
    """One conversation about one image in one project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="samples")
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX)
    # RESTRICT: an image still used by samples cannot be deleted alone, but goes with its project.
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.RESTRICT, related_name="samples")
    target_criterion = models.CharField(max_length=50, blank=True, help_text="Empty: all criteria.")
    reference_answer = models.TextField(blank=True)
    source_dataset = models.CharField(max_length=200, blank=True)
    source_model = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True, help_text="Fields of the source record we do not model.")
    content_hash = models.CharField(max_length=64, help_text="Of the imported record, for idempotent re-import.")
    import_batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="samples"
    )
    import_line = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="sample_external_id_unique_per_project"),
            models.CheckConstraint(condition=~Q(external_id=""), name="sample_external_id_present"),
        ]
        indexes = [models.Index(fields=["project", "target_criterion"])]

    def __str__(self) -> str:
        return self.external_id


class Turn(models.Model):
    """One exchange: the user's message and the model's response (none yet for a bare prompt).

    The user message of turn k+1 is the refinement of turn k.
    """

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveSmallIntegerField()
    user_message = models.TextField()
    # NULL, not "": a prompt awaiting its response differs from an empty response.
    model_response = models.TextField(null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["sample_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["sample", "index"], name="turn_index_unique_per_sample"),
            models.CheckConstraint(condition=Q(index__gte=0), name="turn_index_non_negative"),
            models.CheckConstraint(condition=~Q(user_message=""), name="turn_user_message_present"),
        ]

    def __str__(self) -> str:
        return f"{self.sample_id}#{self.index}"


class ImportedFeedback(models.Model):
    """Feedback that came with an imported dataset (e.g. DRESS ratings and critiques).

    Kept as the dataset gave it, apart from LLM drafts and human revisions.
    """

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="imported_feedback")
    criterion = models.CharField(max_length=50)
    score = models.SmallIntegerField(null=True, blank=True)
    rating_raw = models.CharField(max_length=50, blank=True, help_text="The rating exactly as the source wrote it.")
    critique = models.TextField(blank=True)
    refinement = models.TextField(blank=True)
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["turn_id", "criterion"]
        constraints = [
            models.UniqueConstraint(fields=["turn", "criterion"], name="imported_feedback_unique_per_criterion"),
            models.CheckConstraint(condition=~Q(criterion=""), name="imported_feedback_criterion_present"),
        ]

    def __str__(self) -> str:
        return f"{self.criterion} feedback on {self.turn}"
