from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from feedback.drafting.models import Draft
from feedback.models import Image, ImportBatch, ImportedFeedback, Project, Sample, Turn
from feedback.review.models import Revision

from ..importers.service import FORMAT_LABELS
from ..references.service import batch_references, batches_references


class ProjectSerializer(serializers.ModelSerializer):
    sample_count = serializers.IntegerField(read_only=True)
    image_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "guidelines",
            "criteria",
            "score_min",
            "score_max",
            "level_descriptions",
            "llm_connection",
            "llm_model",
            "llm_temperature",
            "prompt_version",
            "sample_count",
            "image_count",
        ]


class ImageSerializer(serializers.ModelSerializer):
    missing = serializers.BooleanField(source="is_missing", read_only=True)
    objects = serializers.JSONField(source="object_boxes")

    class Meta:
        model = Image
        fields = [
            "id",
            "file_name",
            "missing",
            "sha256",
            "width",
            "height",
            "format",
            "captions",
            "objects",
            "regions",
            "notes",
        ]


class ImageWithUrlSerializer(ImageSerializer):
    """The image with the address of its file; ``url`` is null until the file has been imported."""

    url = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "url"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_url(self, image: Image) -> str | None:
        return None if image.is_missing else reverse("feedback:image-file", args=[image.pk])


class DraftSerializer(serializers.ModelSerializer):
    """The LLM's feedback on a turn (successful drafts only are shown)."""

    class Meta:
        model = Draft
        fields = [
            "id",
            "critique",
            "refinement",
            "scores",
            "overall",
            "model",
            "prompt_version",
            "simulated",
            "created_at",
        ]
        read_only_fields = fields


class RevisionSerializer(serializers.ModelSerializer):
    """A human's version of the feedback on a turn; ``version`` counts within its assignment's chain."""

    author: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Revision
        fields = [
            "id",
            "version",
            "turn",
            "assignment",
            "author",
            "decision",
            "critique",
            "refinement",
            "scores",
            "reason",
            "time_spent_ms",
            "draft",
            "created_at",
        ]
        read_only_fields = fields


class ImportedFeedbackSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportedFeedback
        fields = ["criterion", "score", "rating_raw", "critique", "refinement", "source"]


class TurnSerializer(serializers.ModelSerializer):
    imported_feedback = ImportedFeedbackSerializer(many=True, read_only=True)

    class Meta:
        model = Turn
        fields = ["index", "user_message", "model_response", "imported_feedback"]


class SampleSerializer(serializers.ModelSerializer):
    image = ImageSerializer(read_only=True, allow_null=True)
    turns = TurnSerializer(many=True, read_only=True)

    class Meta:
        model = Sample
        fields = [
            "id",
            "external_id",
            "image",
            "target_criterion",
            "reference_answer",
            "source_dataset",
            "source_model",
            "metadata",
            "turns",
        ]


class ImageReferenceFailureSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="The line of the first record naming the image.")
    file_name = serializers.CharField()
    uri = serializers.CharField()
    reason = serializers.CharField()


class ImageReferencesSerializer(serializers.Serializer):
    """What became of the image references the import registered (fetched by workers after it ends)."""

    total = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Not fetched yet (queued, fetching or waiting to retry).")
    fetched = serializers.IntegerField()
    failed = serializers.IntegerField()
    failures = ImageReferenceFailureSerializer(many=True, help_text="The first 200 failures, with their reasons.")


class ImportBatchSerializer(serializers.ModelSerializer):
    image_references = serializers.SerializerMethodField()

    @extend_schema_field(ImageReferencesSerializer)
    def get_image_references(self, batch: ImportBatch) -> dict:
        # A list passes every batch's report in its context (two queries for the page).
        known = self.context.get("image_references")
        report = known[batch.pk] if known is not None else batch_references(batch)
        return {
            "total": report.total,
            "pending": report.pending,
            "fetched": report.fetched,
            "failed": report.failed,
            "failures": report.failures,
        }

    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "format",
            "file_name",
            "file_sha256",
            "status",
            "bytes_total",
            *ImportBatch.PROGRESS_FIELDS,
            "failure",
            "image_references",
            "started_at",
            "finished_at",
            "created_at",
        ]
        read_only_fields = fields


def import_batches_data(batches: list[ImportBatch]) -> list[dict]:
    """A list of imports with their image references, in a constant number of queries."""
    context = {"image_references": batches_references([b.pk for b in batches])}
    return list(ImportBatchSerializer(batches, many=True, context=context).data)


class ImportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=sorted(FORMAT_LABELS))
    file = serializers.FileField()
    images = serializers.FileField(required=False)
    criterion = serializers.CharField(required=False, allow_blank=True, default="")
    source_model = serializers.CharField(required=False, allow_blank=True, default="")
    images_base = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=1000,
        help_text="Fetch the images by reference: s3://bucket/folder/, https://host/folder/ (an allowed host) or "
        "a folder under the read-only root; each image's file name is appended.",
    )


class TurnDetailSerializer(TurnSerializer):
    """A turn with its successful drafts and, for admins and researchers, its revisions.

    ``revisions`` is null for annotators: each review of a sample stays independent of the others.
    """

    drafts = serializers.SerializerMethodField()
    revisions = serializers.SerializerMethodField()

    class Meta(TurnSerializer.Meta):
        fields = ["id", *TurnSerializer.Meta.fields, "drafts", "revisions"]

    @extend_schema_field(DraftSerializer(many=True))
    def get_drafts(self, turn: Turn) -> list:
        return list(DraftSerializer([d for d in turn.drafts.all() if d.succeeded], many=True).data)

    @extend_schema_field(RevisionSerializer(many=True, allow_null=True))
    def get_revisions(self, turn: Turn) -> list | None:
        if not self.context.get("show_revisions"):
            return None
        revisions = turn.visible_revisions  # type: ignore[attr-defined]  # prefetched by the view
        return list(RevisionSerializer(revisions, many=True).data)


class SampleDetailSerializer(SampleSerializer):
    image = ImageWithUrlSerializer(read_only=True, allow_null=True)
    turns = TurnDetailSerializer(many=True, read_only=True)

    class Meta(SampleSerializer.Meta):
        pass


class ProjectDetailSerializer(ProjectSerializer):
    """A project with its counts of samples, images, turns and feedback (for the schema)."""

    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta(ProjectSerializer.Meta):
        fields = [*ProjectSerializer.Meta.fields, "counts"]
