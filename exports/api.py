"""Releases in the REST API, for a project's researchers and admins: list, create, detail (with
files and manifest) and file downloads. The same services and selectors as the pages."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import storage
from feedback.errors import NotFound
from feedback.models import Role
from feedback.permissions import project_access
from feedback.rest.errors import ErrorSerializer
from feedback.review.models import Decision

from . import selectors, service
from .filters import DEFAULT_DECISIONS, ReleaseFilters
from .formats import FORMATS
from .models import Release, ReleaseFile
from .views import ROLES

FILTER_FIELDS = set(ReleaseFilters.__dataclass_fields__)


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so that a misspelt filter is an error, not silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            stray = sorted(set(data) - set(self.fields))
            if stray:
                raise serializers.ValidationError({name: ["Unknown field."] for name in stray})
        return super().to_internal_value(data)


class FiltersSerializer(StrictSerializer):
    decisions = serializers.ListField(
        child=serializers.ChoiceField(choices=Decision.values),
        required=False,
        help_text=f"Final decisions released; default {DEFAULT_DECISIONS}.",
    )
    include_imported = serializers.BooleanField(
        required=False, help_text="Feedback that came with the data, on turns nobody reviewed; default true."
    )
    criteria = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Criteria released; empty: all the project's."
    )
    score_ranges = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        required=False,
        help_text='Criterion to [low, high], inclusive, e.g. {"honesty": [5, 7]}.',
    )
    reviewers = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="User names of the final reviewers; empty: anyone."
    )
    date_from = serializers.DateField(required=False, help_text="Final revision on or after this day.")
    date_to = serializers.DateField(required=False, help_text="Final revision on or before this day.")
    prompt_versions = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Prompt versions of the drafts; empty: any."
    )
    include_simulated = serializers.BooleanField(
        required=False, help_text="Feedback that started from a simulator's draft; default true."
    )


class SplitSerializer(StrictSerializer):
    train = serializers.FloatField(required=False, min_value=0, max_value=1)
    validation = serializers.FloatField(required=False, min_value=0, max_value=1)
    test = serializers.FloatField(required=False, min_value=0, max_value=1)
    seed = serializers.CharField(required=False, allow_blank=True, help_text="Seed of the hash that splits images.")


class ReleaseRequestSerializer(StrictSerializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    formats = serializers.ListField(
        child=serializers.CharField(), min_length=1, help_text=f"Format names, e.g. {list(FORMATS)}."
    )
    filters = FiltersSerializer(required=False)
    split = SplitSerializer(required=False, help_text="Fractions adding up to 1; default all train.")
    include_images = serializers.BooleanField(required=False, default=False)


class ReleaseSerializer(serializers.ModelSerializer):
    created_by: serializers.StringRelatedField = serializers.StringRelatedField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "id",
            "url",
            "name",
            "state",
            "formats",
            "filters",
            "split",
            "include_images",
            "samples_total",
            "samples_done",
            "samples_released",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_url(self, release: Release) -> str:
        return reverse("api-release-detail", args=[release.project.slug, release.pk])


class ReleaseFileSerializer(serializers.ModelSerializer):
    download = serializers.SerializerMethodField()

    class Meta:
        model = ReleaseFile
        fields = ["path", "format", "split", "rows", "byte_size", "sha256", "download"]

    def get_download(self, release_file: ReleaseFile) -> str:
        release = release_file.release
        return reverse("api-release-file", args=[release.project.slug, release.pk, release_file.path])


class ReleaseDetailSerializer(ReleaseSerializer):
    files = ReleaseFileSerializer(many=True, read_only=True)
    manifest = serializers.JSONField(read_only=True)

    class Meta(ReleaseSerializer.Meta):
        fields = [*ReleaseSerializer.Meta.fields, "files", "manifest"]


def release_in(project, pk: int) -> Release:
    release = Release.objects.filter(project=project, pk=pk).first()
    if release is None:
        raise NotFound("No such release.")
    release.project = project
    return release


def _as_service_filters(data: dict) -> dict:
    return {k: v.isoformat() if k in ("date_from", "date_to") else v for k, v in data.items()}


class ReleaseListCreate(APIView):
    @extend_schema(
        operation_id="projects_releases_list",
        responses={
            200: ReleaseSerializer(many=True),
            403: OpenApiResponse(ErrorSerializer, description="Not a researcher or admin."),
        },
    )
    def get(self, request, slug):
        project = project_access(request.user, slug, *ROLES).project
        releases = selectors.releases_of(project).select_related("project")[:50]
        return Response(ReleaseSerializer(releases, many=True).data)

    @extend_schema(
        operation_id="projects_releases_create",
        request=ReleaseRequestSerializer,
        responses={
            201: ReleaseSerializer,
            400: OpenApiResponse(ErrorSerializer, description="The fields that are wrong and why."),
            403: OpenApiResponse(ErrorSerializer, description="Not a researcher or admin."),
            409: OpenApiResponse(ErrorSerializer, description="The project is at its release quota."),
        },
    )
    def post(self, request, slug):
        project = project_access(request.user, slug, *ROLES).project
        form = ReleaseRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        release = service.release_create(
            project=project,
            user=request.user,
            name=data.get("name", ""),
            formats=data["formats"],
            filters=_as_service_filters(dict(data.get("filters") or {})),
            split=dict(data.get("split") or {}),
            include_images=data["include_images"],
        )
        return Response(ReleaseSerializer(release).data, status=status.HTTP_201_CREATED)


class ReleaseDetail(APIView):
    @extend_schema(responses=ReleaseDetailSerializer)
    def get(self, request, slug, pk):
        project = project_access(request.user, slug, *ROLES).project
        try:
            release = selectors.release_of(project, pk)
        except Release.DoesNotExist:
            raise NotFound("No such release.") from None
        release.project = project
        for release_file in release.files.all():
            release_file.release = release
        return Response(ReleaseDetailSerializer(release).data)

    @extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted, with its files."),
            409: OpenApiResponse(ErrorSerializer, description="The release is queued or being built: cancel it first."),
        },
        description="Admins of the project only.",
    )
    def delete(self, request, slug, pk):
        project = project_access(request.user, slug, Role.ADMIN).project
        service.release_delete(release=release_in(project, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReleaseCancel(APIView):
    @extend_schema(
        request=None,
        responses={
            200: ReleaseSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The release is not queued or being built."),
        },
        description="Admins of the project only: stops a queued or building release; delete it afterwards.",
    )
    def post(self, request, slug, pk):
        project = project_access(request.user, slug, Role.ADMIN).project
        release = service.release_cancel(release=release_in(project, pk), user=request.user)
        release.project = project
        return Response(ReleaseSerializer(release).data)


class FirstRenderer(BaseContentNegotiation):
    """Any Accept header will do for a download; errors still come back as JSON."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return (renderers[0], renderers[0].media_type)


# The type each file of a release is served as, by its name's ending; any other is octet-stream.
FILE_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".tar": "application/x-tar",
    ".parquet": "application/vnd.apache.parquet",
}
OCTET_STREAM = "application/octet-stream"


def file_type(name: str) -> str:
    return next((kind for suffix, kind in FILE_TYPES.items() if name.endswith(suffix)), OCTET_STREAM)


class ReleaseFileDownload(APIView):
    content_negotiation_class = FirstRenderer

    @extend_schema(
        operation_id="projects_releases_files_retrieve",
        parameters=[OpenApiParameter("path", OpenApiTypes.STR, OpenApiParameter.PATH, description="As in `files`.")],
        responses={
            **{(200, kind): OpenApiTypes.BINARY for kind in [*FILE_TYPES.values(), OCTET_STREAM]},
            (200, "application/json"): OpenApiTypes.ANY,  # the manifest is an object, LLaVA files are lists
            302: OpenApiResponse(
                description="The file is in an object store: its URL, signed for a short time "
                "(ANNOTATOR_STORAGE_DOWNLOADS=signed)."
            ),
            404: OpenApiResponse(
                ErrorSerializer, description="No such release or file, or the release is not complete."
            ),
        },
    )
    def get(self, request, slug, pk, path):
        project = project_access(request.user, slug, *ROLES).project
        name = service.release_file_name(release_in(project, pk), path)
        file_name = PurePosixPath(name).name
        return storage.serve(storage.RELEASES, name, filename=file_name, content_type=file_type(file_name))
