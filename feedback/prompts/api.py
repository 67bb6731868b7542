"""Prompt versions in the REST API, under /api/projects/<slug>/prompts/: the list and a new version
(from another one: its text unless given), one version (PATCH edits a version that never drafted,
or any version's note), the preview of a text on a sample (no LLM call), and the project's default.
Admins write; researchers read and preview."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.drafting import versions
from feedback.drafting.models import PromptVersion
from feedback.models import Role
from feedback.permissions import project_access
from feedback.rest.errors import ErrorSerializer

from . import selectors

READERS = (Role.ADMIN, Role.RESEARCHER)


class PromptVersionSerializer(serializers.ModelSerializer):
    author: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    drafts = serializers.IntegerField(read_only=True, help_text="Drafts made with this exact version (name and hash).")
    is_default = serializers.BooleanField(read_only=True, help_text="The project's jobs draft with it by default.")
    locked = serializers.BooleanField(
        read_only=True, help_text="It drafted (or is the shipped v1): its text never changes."
    )

    class Meta:
        model = PromptVersion
        fields = [
            "number",
            "name",
            "system",
            "user",
            "sha256",
            "note",
            "author",
            "based_on",
            "created_at",
            "locked_at",
            "drafts",
            "is_default",
            "locked",
        ]


def _data(row: selectors.VersionRow) -> dict:
    data = PromptVersionSerializer(row.version).data
    data.update(drafts=row.drafts, is_default=row.is_default, locked=row.locked)
    return data


class PromptCreateSerializer(serializers.Serializer):
    from_version = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=versions.VERSIONS_MAX,
        help_text="The version to start from (its text unless given); default: the project's default.",
    )
    system = serializers.CharField(required=False, max_length=versions.TEXT_MAX, trim_whitespace=False)
    user = serializers.CharField(required=False, max_length=versions.TEXT_MAX, trim_whitespace=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=versions.NOTE_MAX, trim_whitespace=False)
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=versions.NAME_MAX, help_text="Default: v and its number."
    )


class PromptEditSerializer(serializers.Serializer):
    system = serializers.CharField(required=False, max_length=versions.TEXT_MAX, trim_whitespace=False)
    user = serializers.CharField(required=False, max_length=versions.TEXT_MAX, trim_whitespace=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=versions.NOTE_MAX, trim_whitespace=False)


class PreviewRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=versions.VERSIONS_MAX,
        help_text="Preview this version's text (unless system/user are given).",
    )
    system = serializers.CharField(required=False, max_length=versions.TEXT_MAX, trim_whitespace=False)
    user = serializers.CharField(required=False, max_length=versions.TEXT_MAX, trim_whitespace=False)
    sample = serializers.IntegerField(
        required=False, min_value=1, help_text="A sample id of the project; default: its first sample with a response."
    )


class PreviewSerializer(serializers.Serializer):
    sample = serializers.IntegerField()
    external_id = serializers.CharField()
    turn = serializers.IntegerField(help_text="The index of the turn rendered: the sample's first with a response.")
    system = serializers.CharField()
    user = serializers.CharField()


class PromptList(APIView):
    @extend_schema(responses={200: PromptVersionSerializer(many=True)})
    def get(self, request, slug):
        project = project_access(request.user, slug, *READERS).project
        return Response([_data(row) for row in selectors.version_rows(project)])

    @extend_schema(
        request=PromptCreateSerializer,
        responses={201: PromptVersionSerializer, 403: OpenApiResponse(ErrorSerializer, "Not an admin of the project.")},
    )
    def post(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        form = PromptCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if "from_version" in data:
            base = versions.version_get(project, data["from_version"], field="from_version")
        else:
            base = versions.default_version(project)
        version = versions.prompt_version_create(
            project=project,
            author=request.user,
            system=data.get("system", base.system),
            user=data.get("user", base.user),
            note=data.get("note", ""),
            name=data.get("name") or None,
            based_on=base,
        )
        return Response(_data(selectors.row_of(project, version)), status=status.HTTP_201_CREATED)


class PromptDetail(APIView):
    @extend_schema(responses={200: PromptVersionSerializer})
    def get(self, request, slug, number):
        project = project_access(request.user, slug, *READERS).project
        return Response(_data(selectors.row_of(project, versions.version_get(project, number))))

    @extend_schema(request=PromptEditSerializer, responses={200: PromptVersionSerializer})
    def patch(self, request, slug, number):
        project = project_access(request.user, slug, Role.ADMIN).project
        version = versions.version_get(project, number)
        form = PromptEditSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        version = versions.prompt_version_edit(version=version, **form.validated_data)
        return Response(_data(selectors.row_of(project, version)))


class PromptPreview(APIView):
    @extend_schema(request=PreviewRequestSerializer, responses={200: PreviewSerializer})
    def post(self, request, slug):
        project = project_access(request.user, slug, *READERS).project
        form = PreviewRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if "version" in data:
            base = versions.version_get(project, data["version"], field="version")
        else:
            base = versions.default_version(project)
        shown = selectors.preview(
            project=project,
            system=data.get("system", base.system),
            user=data.get("user", base.user),
            sample_id=data.get("sample"),
        )
        return Response(
            {
                "sample": shown.sample.pk,
                "external_id": shown.sample.external_id,
                "turn": shown.turn.index,
                "system": shown.system,
                "user": shown.user,
            }
        )


class PromptDefault(APIView):
    @extend_schema(request=None, responses={200: PromptVersionSerializer})
    def post(self, request, slug, number):
        project = project_access(request.user, slug, Role.ADMIN).project
        version = versions.version_get(project, number)
        project = versions.prompt_version_set_default(project=project, version=version)
        return Response(_data(selectors.row_of(project, version)))
