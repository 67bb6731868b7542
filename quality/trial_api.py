"""Trials in the REST API, under /api/: list and start (admins start, researchers read), one trial's
figures (the page's JSON), and making a variant the project's default."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.models import EXTERNAL_ID_MAX, Role
from feedback.permissions import project_access
from feedback.rest.errors import ErrorSerializer
from feedback.trials import selectors, service
from feedback.trials.models import Trial, TrialSet

from .trials import trial_figures

READERS = (Role.ADMIN, Role.RESEARCHER)


class TrialSetSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TrialSet.choices)
    samples = serializers.ListField(
        child=serializers.CharField(max_length=EXTERNAL_ID_MAX),
        required=False,
        max_length=service.MAX_SAMPLES,
        help_text="kind samples: the samples' ids.",
    )
    n = serializers.IntegerField(
        required=False, min_value=1, max_value=service.MAX_SAMPLES, help_text="kind random or reviewed: how many."
    )
    seed = serializers.IntegerField(required=False, min_value=0, max_value=service.SEED_MAX)


class TrialVariantSerializer(serializers.Serializer):
    """Drafting settings; what a variant leaves out is the project's."""

    prompt_version = serializers.CharField(required=False, max_length=50)
    connection = serializers.CharField(required=False, max_length=100)
    model = serializers.CharField(required=False, max_length=200)
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    send_image = serializers.BooleanField(required=False)


class TrialCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=service.NAME_MAX)
    set = TrialSetSerializer()
    variants = serializers.ListField(
        child=TrialVariantSerializer(), min_length=service.MIN_VARIANTS, max_length=service.MAX_VARIANTS
    )
    dry_run = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Only estimate each variant's calls, tokens and cost: 200, nothing made.",
    )


class TrialEstimateSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.CharField(help_text="US dollars at the connections' prices.")
    variants = serializers.ListField(
        child=serializers.DictField(), help_text="Per variant: label and the jobs' dry-run estimate of its drafts."
    )


class TrialSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=Trial.State.choices)
    set_kind = serializers.CharField()
    samples = serializers.IntegerField()
    variants = serializers.ListField(child=serializers.DictField())
    promoted = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class TrialFiguresSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=Trial.State.choices)
    set = serializers.DictField()
    promoted = serializers.CharField(allow_null=True)
    created_at = serializers.CharField()
    finished_at = serializers.CharField(allow_null=True)
    criteria = serializers.ListField(child=serializers.CharField())
    variants = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per variant: label, prompt_version, connection, model, temperature, send_image, drafts, done, "
        "failed, cancelled (not drafted: the trial was cancelled), open, failure_rate, repair_rate, reask_rate, "
        "tokens_in, tokens_out, cost, latency_ms {p50, p95}, "
        "gold (turns with a human final), agreement {kappa, within_1, exact}, criteria {criterion: agreement}, "
        "critique_distance, refinement_distance; rates and agreement as figures {value, n, ci, undefined}.",
    )


def _summary(trial: Trial) -> dict:
    return {
        "id": trial.pk,
        "name": trial.name,
        "state": trial.state,
        "set_kind": trial.set_kind,
        "samples": len(trial.sample_ids),
        "variants": [selectors.describe(v) for v in trial.variants.all()],
        "promoted": trial.promoted.label if trial.promoted else None,
        "created_at": trial.created_at,
    }


class TrialList(APIView):
    @extend_schema(
        responses={200: TrialSummarySerializer(many=True)}, description="The project's trials, newest first."
    )
    def get(self, request, slug):
        project = project_access(request.user, slug, *READERS).project
        return Response(TrialSummarySerializer([_summary(t) for t in selectors.trials_of(project)], many=True).data)

    @extend_schema(
        request=TrialCreateSerializer,
        responses={
            201: TrialSummarySerializer,
            200: OpenApiResponse(TrialEstimateSerializer, description="dry_run: the estimate; nothing is made."),
            400: OpenApiResponse(ErrorSerializer, description="A field is wrong or past its bound: `errors` names it."),
            403: OpenApiResponse(ErrorSerializer, description="Not an admin of the project."),
        },
        description="Start a trial: each variant drafts every turn of the set, apart from the project's drafts.",
    )
    def post(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        form = TrialCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # The shapes checked, the service checks the rest on the request as sent (an unknown
        # setting is refused by name there, where the serializer would drop it).
        arguments = {
            "project": project,
            "user": request.user,
            "name": form.validated_data.get("name", ""),
            "set": request.data["set"],
            "variants": request.data["variants"],
        }
        if form.validated_data["dry_run"]:
            return Response(service.trial_dry_run(service.trial_request(**arguments)))
        trial = service.trial_create(**arguments)
        return Response(TrialSummarySerializer(_summary(trial)).data, status=status.HTTP_201_CREATED)


class TrialDetail(APIView):
    @extend_schema(responses={200: TrialFiguresSerializer}, description="The trial's figures, per variant.")
    def get(self, request, slug, pk):
        project = project_access(request.user, slug, *READERS).project
        return Response(trial_figures(service.trial_get(project, pk)))


class TrialCancel(APIView):
    @extend_schema(
        request=None,
        responses={
            200: TrialFiguresSerializer,
            403: OpenApiResponse(ErrorSerializer, description="Not an admin of the project."),
            409: OpenApiResponse(ErrorSerializer, description="The trial is not running (completed or cancelled)."),
        },
        description="Stop a running trial: drafts not yet under way are cancelled and never sent; those under way "
        "finish and count.",
    )
    def post(self, request, slug, pk):
        project = project_access(request.user, slug, Role.ADMIN).project
        service.trial_cancel(trial=service.trial_get(project, pk))
        return Response(trial_figures(service.trial_get(project, pk)))


class TrialPromote(APIView):
    @extend_schema(
        request=None,
        responses={
            200: TrialFiguresSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The trial is still running."),
        },
        description="Make the variant (A, B, ...) the project's default prompt version, connection, model and "
        "temperature.",
    )
    def post(self, request, slug, pk, label):
        project = project_access(request.user, slug, Role.ADMIN).project
        trial = service.trial_get(project, pk)
        service.trial_promote(trial=trial, variant=service.variant_get(trial, label))
        return Response(trial_figures(service.trial_get(project, pk)))
