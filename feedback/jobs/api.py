"""Jobs in the REST API: launch, list, progress and the admin actions, for a project's admins."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.errors import NotFound
from feedback.jobs.models import Job
from feedback.models import Role
from feedback.permissions import project_access
from feedback.rest.errors import ErrorSerializer

from . import selectors, service
from .estimate import compared
from .selection import STATUSES


def job_of(project, pk: int) -> Job:
    job = Job.objects.filter(project=project, pk=pk).first()
    if job is None:
        raise NotFound("No such job.")
    return job


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
    mode = serializers.ChoiceField(
        choices=Job.Mode.choices,
        default=Job.Mode.LIVE,
        help_text="live: one call per turn; batch: the provider's Batch API, at the batch price.",
    )
    budget = serializers.DecimalField(required=False, allow_null=True, max_digits=14, decimal_places=8, min_value=0)
    drafter = ModelSettingsSerializer(required=False, default=dict)
    responder = ModelSettingsSerializer(required=False, default=dict)
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Answer the estimate (200) and create nothing, send nothing."
    )


class RoleEstimateSerializer(serializers.Serializer):
    role = serializers.CharField()
    connection = serializers.CharField()
    base_url = serializers.CharField()
    model = serializers.CharField()
    calls = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=20, decimal_places=8, help_text="US dollars.")
    priced = serializers.BooleanField(help_text="False: the model has no price in ANNOTATOR_LLM_PRICES (cost 0).")
    tokenizer = serializers.CharField(help_text="How input tokens were counted: the model's tokenizer or an estimate.")
    output = serializers.CharField(help_text="Where the expected output tokens come from.")


class JobEstimateSerializer(serializers.Serializer):
    """A dry run: what the job would send and cost (feedback/jobs/estimate.py)."""

    mode = serializers.CharField(help_text="live, or batch: costs at ANNOTATOR_LLM_BATCH_PRICE, no rate-limit time.")
    calls = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=20, decimal_places=8, help_text="US dollars.")
    seconds = serializers.FloatField(
        allow_null=True, help_text="At the rate limits; null without one, and in batch mode."
    )
    selected = serializers.IntegerField(help_text="Turns (draft job) or samples (respond job) selected.")
    rendered = serializers.IntegerField(help_text="Prompts rendered and counted; the rest scaled from them.")
    roles = RoleEstimateSerializer(many=True)


class JobSerializer(serializers.ModelSerializer):
    created_by: serializers.StringRelatedField = serializers.StringRelatedField()
    estimate_vs_actual = serializers.SerializerMethodField(
        help_text="Once the job has ended: the estimate, the actual figures and each one's error in percent."
    )

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_estimate_vs_actual(self, job: Job) -> dict | None:
        return compared(job)

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "mode",
            "state",
            "selection",
            "llm_settings",
            "rounds",
            "total",
            "tokens_in",
            "tokens_out",
            "cost",
            "budget",
            "estimate",
            "estimate_vs_actual",
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
        project = project_access(request.user, slug, Role.ADMIN).project
        return Response(JobSerializer(selectors.jobs_of(project)[:50], many=True).data)

    @extend_schema(
        request=JobRequestSerializer,
        responses={202: JobSerializer, 200: OpenApiResponse(JobEstimateSerializer, description="A dry run.")},
    )
    def post(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        form = JobRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        arguments = {
            "project": project,
            "user": request.user,
            "kind": data["kind"],
            "selection": dict(data["selection"]),
            "rounds": data["rounds"],
            "mode": data["mode"],
            "budget": data.get("budget"),
            "drafter": dict(data["drafter"]),
            "responder": dict(data["responder"]),
        }
        if data["dry_run"]:
            return Response(JobEstimateSerializer(service.job_dry_run(service.job_request(**arguments))).data)
        job = service.job_create(**arguments)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetail(APIView):
    @extend_schema(responses=JobProgressSerializer)
    def get(self, request, slug, pk):
        project = project_access(request.user, slug, Role.ADMIN).project
        job = job_of(project, pk)
        service.job_watch_kick(job)
        return Response({**JobSerializer(job).data, "progress": selectors.job_progress(job)})


class JobAction(APIView):
    """POST .../jobs/<id>/pause|resume|cancel|retry; resume takes an optional new ``budget``."""

    @extend_schema(
        operation_id="projects_jobs_action",
        request=BudgetSerializer,
        responses={
            200: JobProgressSerializer,
            400: OpenApiResponse(ErrorSerializer, description="A bad budget."),
            404: OpenApiResponse(ErrorSerializer, description="No such job or action."),
            409: OpenApiResponse(ErrorSerializer, description="Not in a state for this action."),
        },
    )
    def post(self, request, slug, pk, action):
        project = project_access(request.user, slug, Role.ADMIN).project
        job = job_of(project, pk)
        service.job_act(job=job, action=action, budget=request.data.get("budget"))
        job.refresh_from_db()
        return Response({**JobSerializer(job).data, "progress": selectors.job_progress(job)})
