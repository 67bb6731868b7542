"""Jobs in the REST API: launch, list, progress and the admin actions, for a project's admins."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.views import project_for
from feedback.models import Job, Role

from . import selectors, service
from .selection import STATUSES


def field_error(exc: ValueError) -> Response:
    """The services' "field: message" errors as DRF's field errors."""
    field, _, message = str(exc).partition(": ")
    if not message or " " in field:
        return Response({"non_field_errors": [str(exc)]}, status=400)
    return Response({field: [message]}, status=400)


class SelectionSerializer(serializers.Serializer):
    criterion = serializers.CharField(required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=list(STATUSES), default="never")
    import_batch = serializers.IntegerField(required=False, allow_null=True, default=None)
    sample_ids = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    limit = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)


class ModelSettingsSerializer(serializers.Serializer):
    connection = serializers.CharField(
        required=False, allow_blank=True, help_text="The name of an LLM connection, as the job form lists them."
    )
    model = serializers.CharField(required=False, allow_blank=True)
    base_url = serializers.CharField(
        required=False, allow_blank=True, help_text="Superusers only: a URL of no connection, called without a key."
    )
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    max_tokens = serializers.IntegerField(required=False, min_value=1)
    structured = serializers.ChoiceField(choices=["json_schema", "json_object", "none"], required=False)
    send_image = serializers.BooleanField(required=False)
    prompt_version = serializers.CharField(required=False)


class JobRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Job.Kind.values)
    selection = SelectionSerializer(required=False, default=dict)
    rounds = serializers.IntegerField(required=False, default=1, min_value=1, max_value=service.MAX_ROUNDS)
    budget = serializers.DecimalField(required=False, allow_null=True, max_digits=14, decimal_places=8, min_value=0)
    drafter = ModelSettingsSerializer(required=False, default=dict)
    responder = ModelSettingsSerializer(required=False, default=dict)


class JobSerializer(serializers.ModelSerializer):
    created_by: serializers.StringRelatedField = serializers.StringRelatedField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "state",
            "selection",
            "llm_settings",
            "rounds",
            "total",
            "tokens_in",
            "tokens_out",
            "cost",
            "budget",
            "stop_reason",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class JobProgressSerializer(JobSerializer):
    """A job with its progress counts (for the schema)."""

    progress = serializers.DictField(read_only=True)

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "progress"]


class BudgetSerializer(serializers.Serializer):
    budget = serializers.DecimalField(required=False, allow_null=True, max_digits=14, decimal_places=8, min_value=0)


class JobListCreate(APIView):
    @extend_schema(operation_id="projects_jobs_list", responses=JobSerializer(many=True))
    def get(self, request, slug):
        project = project_for(request, slug, Role.ADMIN)
        return Response(JobSerializer(selectors.jobs_of(project)[:50], many=True).data)

    @extend_schema(request=JobRequestSerializer, responses={202: JobSerializer})
    def post(self, request, slug):
        project = project_for(request, slug, Role.ADMIN)
        form = JobRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            job = service.job_create(
                project=project,
                user=request.user,
                kind=data["kind"],
                selection=dict(data["selection"]),
                rounds=data["rounds"],
                budget=data.get("budget"),
                drafter=dict(data["drafter"]),
                responder=dict(data["responder"]),
            )
        except ValueError as exc:
            return field_error(exc)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetail(APIView):
    @extend_schema(responses=JobProgressSerializer)
    def get(self, request, slug, pk):
        project = project_for(request, slug, Role.ADMIN)
        job = get_object_or_404(Job, project=project, pk=pk)
        service.job_watch_kick(job)
        return Response({**JobSerializer(job).data, "progress": selectors.job_progress(job)})


class JobAction(APIView):
    """POST .../jobs/<id>/pause|resume|cancel|retry; resume takes an optional new ``budget``."""

    @extend_schema(
        operation_id="projects_jobs_action",
        request=BudgetSerializer,
        responses={
            200: JobProgressSerializer,
            404: OpenApiResponse(description="No such job or action."),
            409: OpenApiResponse(description="Not in a state for this action."),
        },
    )
    def post(self, request, slug, pk, action):
        project = project_for(request, slug, Role.ADMIN)
        job = get_object_or_404(Job, project=project, pk=pk)
        if action not in service.ACTIONS:
            return Response({"detail": f"no action {action!r}"}, status=404)
        try:
            service.job_act(job=job, action=action, budget=request.data.get("budget"))
        except service.JobStateError as exc:
            return Response({"detail": str(exc)}, status=409)
        except ValueError as exc:
            return field_error(exc)
        job.refresh_from_db()
        return Response({**JobSerializer(job).data, "progress": selectors.job_progress(job)})
