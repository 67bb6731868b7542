from rest_framework import serializers

from ..importers.service import FORMAT_LABELS
from ..models import Image, ImportBatch, ImportedFeedback, Project, Sample, Turn


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
            "llm_endpoint",
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
    image = ImageSerializer(read_only=True)
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


class ImportBatchSerializer(serializers.ModelSerializer):
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
            "started_at",
            "finished_at",
            "created_at",
        ]
        read_only_fields = fields


class ImportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=sorted(FORMAT_LABELS))
    file = serializers.FileField()
    images = serializers.FileField(required=False)
    criterion = serializers.CharField(required=False, allow_blank=True, default="")
    source_model = serializers.CharField(required=False, allow_blank=True, default="")
