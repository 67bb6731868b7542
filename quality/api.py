"""The quality figures in the REST API, for a project's admins and researchers: the same JSON as
the page and ``manage.py quality_report``, under the same filters (query parameters)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.models import Role
from feedback.permissions import project_access
from feedback.rest.errors import ErrorSerializer

from .figures import cached
from .filters import TEXT_MAX, QualityFilters

ROLES = (Role.ADMIN, Role.RESEARCHER)

FIG = inline_serializer(
    "QualityFig",
    {
        "value": serializers.FloatField(allow_null=True),
        "n": serializers.IntegerField(),
        "ci": serializers.ListField(child=serializers.FloatField(), allow_null=True, min_length=2, max_length=2),
        "undefined": serializers.CharField(allow_null=True, help_text="Why the value is undefined, else null."),
    },
)


class QualitySerializer(serializers.Serializer):
    """The figures JSON; every figure is a Fig: value, n, 95 % ci (or null) and why it is undefined."""

    project = serializers.CharField()
    filters = serializers.DictField(help_text="The filters applied, null where not set.")
    options = serializers.DictField(help_text="criteria, prompt_versions, models, imports [{id, label}].")
    scale = serializers.DictField(child=serializers.IntegerField(), help_text="min and max of the score scale.")
    drafter = serializers.DictField(
        help_text="Drafter vs human: n, decisions, criteria {exact, within_1, kappa, spearman, mean_diff, confusion, "
        "draft_distribution, final_distribution}, text {critique, refinement: mean, histogram}, by "
        "{prompt_version, model, import: rows}, over_time."
    )
    reviewers = serializers.DictField(
        help_text="Reviewer vs reviewer: n (samples with two or more reviews), alpha, pairwise, decisions, annotators."
    )
    models = serializers.ListField(
        child=serializers.DictField(),
        help_text="Per responder model: source, n, scores {criterion: {mean, human, draft}}, interaction.",
    )


def _text(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=description)


PARAMETERS = [
    _text("criterion", "One of the project's criteria; all of them when absent."),
    _text("prompt_version", f"Prompt version of the drafts (at most {TEXT_MAX} characters)."),
    _text("model", "A drafting model or a responder model: rows matching either count."),
    OpenApiParameter("import", OpenApiTypes.INT, OpenApiParameter.QUERY, description="Id of an import batch."),
    OpenApiParameter("since", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="Reviews saved on or after."),
    OpenApiParameter("until", OpenApiTypes.DATE, OpenApiParameter.QUERY, description="Reviews saved on or before."),
]


class ProjectQuality(APIView):
    @extend_schema(
        operation_id="projects_quality_retrieve",
        parameters=PARAMETERS,
        responses={
            200: QualitySerializer,
            400: OpenApiResponse(ErrorSerializer, description="A filter is unknown or wrong: `errors` names it."),
            403: OpenApiResponse(ErrorSerializer, description="Not a researcher or admin."),
        },
        description="How good the drafts, the reviews and the model under study are (admins and researchers). "
        "Only submitted reviews count.",
    )
    def get(self, request, slug):
        project = project_access(request.user, slug, *ROLES).project
        filters = QualityFilters.parse(request.query_params, criteria=list(project.criteria))
        return Response(cached(project, filters))
