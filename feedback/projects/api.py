"""Projects and members in the REST API: the list (``?archived=1`` for the archived ones) and
creation (superusers and the ``admin`` group), a project's settings (any member reads, its admins
change them and archive it), and its members (admins and researchers read, admins change)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import selectors as core_selectors
from feedback.errors import InvalidInput, NotFound
from feedback.models import ProjectMembership, ReviewOrder, Role
from feedback.permissions import platform_access, project_access
from feedback.rest.errors import ErrorSerializer
from feedback.rest.serializers import ProjectSerializer

from . import selectors, service


class ProjectSettingsSerializer(ProjectSerializer):
    """A project with its rubric, guidelines, LLM and review-queue settings."""

    archived = serializers.SerializerMethodField()

    class Meta(ProjectSerializer.Meta):
        fields = [
            *ProjectSerializer.Meta.fields,
            "review_order",
            "review_criterion",
            "review_seed",
            "reviews_required",
            "review_lease_seconds",
            "adjudication_threshold",
            "gold_every",
            "archived",
            "archived_at",
        ]

    def get_archived(self, project) -> bool:
        return project.archived_at is not None


class ProjectSettingsDetailSerializer(ProjectSettingsSerializer):
    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta(ProjectSettingsSerializer.Meta):
        fields = [*ProjectSettingsSerializer.Meta.fields, "counts"]


def _settings_fields() -> dict[str, serializers.Field]:
    """The settings a request may set, typed and bounded like the service (which checks again)."""
    s = service
    return {
        "name": serializers.CharField(max_length=s.NAME_MAX, required=False),
        "description": serializers.CharField(max_length=s.DESCRIPTION_MAX, required=False, allow_blank=True),
        "guidelines": serializers.CharField(
            max_length=s.GUIDELINES_MAX, required=False, allow_blank=True, trim_whitespace=False
        ),
        "criteria": serializers.ListField(
            child=serializers.CharField(max_length=s.CRITERION_MAX),
            min_length=1,
            max_length=s.CRITERIA_MAX,
            required=False,
        ),
        "score_min": serializers.IntegerField(min_value=s.SCORE_BOUNDS[0], max_value=s.SCORE_BOUNDS[1], required=False),
        "score_max": serializers.IntegerField(min_value=s.SCORE_BOUNDS[0], max_value=s.SCORE_BOUNDS[1], required=False),
        "level_descriptions": serializers.DictField(
            child=serializers.CharField(max_length=s.LEVEL_DESCRIPTION_MAX, allow_blank=True), required=False
        ),
        "llm_connection": serializers.CharField(max_length=100, required=False, allow_blank=True),
        "llm_model": serializers.CharField(max_length=s.MODEL_MAX, required=False, allow_blank=True),
        "llm_temperature": serializers.FloatField(min_value=0, max_value=2, required=False),
        "prompt_version": serializers.CharField(max_length=s.PROMPT_VERSION_MAX, required=False),
        "review_order": serializers.ChoiceField(choices=ReviewOrder.choices, required=False),
        "review_criterion": serializers.CharField(max_length=s.CRITERION_MAX, required=False, allow_blank=True),
        "review_seed": serializers.IntegerField(min_value=s.SEED_BOUNDS[0], max_value=s.SEED_BOUNDS[1], required=False),
        "reviews_required": serializers.IntegerField(
            min_value=s.REVIEWS_REQUIRED_BOUNDS[0], max_value=s.REVIEWS_REQUIRED_BOUNDS[1], required=False
        ),
        "review_lease_seconds": serializers.IntegerField(
            min_value=s.LEASE_BOUNDS[0], max_value=s.LEASE_BOUNDS[1], required=False, allow_null=True
        ),
        "adjudication_threshold": serializers.IntegerField(
            min_value=s.ADJUDICATION_THRESHOLD_BOUNDS[0], max_value=s.ADJUDICATION_THRESHOLD_BOUNDS[1], required=False
        ),
        "gold_every": serializers.IntegerField(
            min_value=s.GOLD_EVERY_BOUNDS[0],
            max_value=s.GOLD_EVERY_BOUNDS[1],
            required=False,
            help_text="One claim in this many serves an annotator a gold sample (a hidden check); 0: none.",
        ),
    }


class ProjectUpdateSerializer(serializers.Serializer):
    archived = serializers.BooleanField(required=False, help_text="Hide the project from the lists, or show it again.")

    def get_fields(self):
        return {**_settings_fields(), **super().get_fields()}


class ProjectCreateSerializer(serializers.Serializer):
    slug = serializers.CharField(max_length=service.SLUG_MAX)
    from_project = serializers.CharField(
        max_length=service.SLUG_MAX, required=False, help_text="Copy this project's settings (its slug)."
    )

    def get_fields(self):
        fields = {**super().get_fields(), **_settings_fields()}
        fields["name"] = serializers.CharField(max_length=service.NAME_MAX)
        return fields


def _values(data: dict) -> dict:
    return {key: value for key, value in data.items() if key in service.SETTINGS_FIELDS}


ARCHIVED = OpenApiParameter(
    "archived", OpenApiTypes.STR, enum=["0", "1"], description="1: the archived projects instead of the others."
)


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSettingsSerializer

    def get_queryset(self):
        archived = self.request.query_params.get("archived", "0")
        if archived not in ("0", "1"):
            raise InvalidInput("archived", "0 or 1")
        return core_selectors.projects_for_user(self.request.user, archived=archived == "1")

    @extend_schema(parameters=[ARCHIVED])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=ProjectCreateSerializer,
        responses={201: ProjectSettingsSerializer, 403: OpenApiResponse(ErrorSerializer, "Not a platform admin.")},
    )
    def post(self, request):
        platform_access(request.user)
        form = ProjectCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        source = None
        if data.get("from_project"):
            try:
                source = project_access(request.user, data["from_project"]).project
            except NotFound:  # a field of the body, not the address: 400 naming it
                raise InvalidInput("from_project", "no such project") from None
        project = service.project_create(user=request.user, slug=data["slug"], from_project=source, **_values(data))
        return Response(ProjectSettingsSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetail(APIView):
    def _answer(self, project):
        counts = core_selectors.project_counts(project)
        data = ProjectSettingsSerializer(project).data
        return {**data, "sample_count": counts["samples"], "image_count": counts["images"], "counts": counts}

    @extend_schema(responses=ProjectSettingsDetailSerializer)
    def get(self, request, slug):
        return Response(self._answer(project_access(request.user, slug).project))

    @extend_schema(
        request=ProjectUpdateSerializer,
        responses={
            200: ProjectSettingsDetailSerializer,
            409: OpenApiResponse(ErrorSerializer, "The rubric change would orphan scores; `errors` names the field."),
        },
    )
    def patch(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        form = ProjectUpdateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        values = _values(data)
        if values:
            project = service.project_update(project=project, values=values)
        if "archived" in data:
            project = service.project_archive(project=project, archived=data["archived"])
        return Response(self._answer(project))


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    leases = serializers.IntegerField(read_only=True, help_text="Samples the member holds leased in the project.")

    class Meta:
        model = ProjectMembership
        fields = ["username", "role", "leases"]


class NewMemberSerializer(MemberSerializer):
    password = serializers.CharField(
        read_only=True, allow_null=True, help_text="The new user's one-time password, shown this once."
    )

    class Meta(MemberSerializer.Meta):
        fields = ["username", "role", "password"]


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=service.USERNAME_MAX)
    role = serializers.ChoiceField(choices=Role.choices)
    create_user = serializers.BooleanField(
        default=False, help_text="Superusers: make the user, with a one-time password given in the answer."
    )


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class RemovedSerializer(serializers.Serializer):
    username = serializers.CharField()
    released_leases = serializers.IntegerField()


class MemberList(APIView):
    @extend_schema(operation_id="projects_members_list", responses=MemberSerializer(many=True))
    def get(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN, Role.RESEARCHER).project
        return Response(MemberSerializer(selectors.members_of(project), many=True).data)

    @extend_schema(
        request=MemberAddSerializer,
        responses={201: NewMemberSerializer, 409: OpenApiResponse(ErrorSerializer, "Already a member.")},
    )
    def post(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        form = MemberAddSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        membership, password = service.member_add(
            project=project,
            actor=request.user,
            username=data["username"],
            role=data["role"],
            create=data["create_user"],
        )
        body = {"username": membership.user.username, "role": membership.role, "password": password}
        return Response(body, status=status.HTTP_201_CREATED)


class MemberDetail(APIView):
    @extend_schema(responses=MemberSerializer)
    def get(self, request, slug, username):
        project = project_access(request.user, slug, Role.ADMIN, Role.RESEARCHER).project
        membership = selectors.members_of(project).filter(pk=service.membership_of(project, username).pk).get()
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        request=MemberRoleSerializer,
        responses={200: MemberSerializer, 409: OpenApiResponse(ErrorSerializer, "The project's last admin.")},
    )
    def patch(self, request, slug, username):
        project = project_access(request.user, slug, Role.ADMIN).project
        form = MemberRoleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        membership = service.member_set_role(
            project=project, actor=request.user, username=username, role=form.validated_data["role"]
        )
        return Response(MemberSerializer(selectors.members_of(project).get(pk=membership.pk)).data)

    @extend_schema(
        responses={200: RemovedSerializer, 409: OpenApiResponse(ErrorSerializer, "The project's last admin.")}
    )
    def delete(self, request, slug, username):
        project = project_access(request.user, slug, Role.ADMIN).project
        released = service.member_remove(project=project, actor=request.user, username=username)
        return Response({"username": username, "released_leases": released})
