"""The annotators' figures in the REST API, for a project's admins: the same as the Annotators pages."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.errors import NotFound
from feedback.models import Role
from feedback.permissions import project_access
from feedback.rest.errors import ErrorSerializer

from .annotators import annotator_detail, annotator_list

TAGS = ["quality"]
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Not an admin of the project.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such project for this user, or no reviews by the user.")
GOLD_HELP = (
    "Gold-check figures (each a Fig: value, n, ci, undefined): turns, decision_agreement, exact, within_1, "
    "critique_distance, refinement_distance; kappa and by_criterion in the detail; null without checks."
)


class AnnotatorRowSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    reviews = serializers.IntegerField(help_text="Submitted reviews, gold checks not counted.")
    gold_checks = serializers.IntegerField()
    flagged_checks = serializers.IntegerField(help_text="Gold checks ended with a flag: not scored.")
    last_review_at = serializers.DateTimeField()
    median_time_ms = serializers.DictField(help_text="value (ms, null without reviews) and n.")
    gold = serializers.DictField(allow_null=True, help_text=GOLD_HELP)


class AnnotatorSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    reviews = serializers.IntegerField()
    gold_checks = serializers.IntegerField()
    flagged_checks = serializers.IntegerField()
    median_time_ms = serializers.DictField(help_text="value (ms) and n: a review's revisions' time summed.")
    throughput = serializers.ListField(
        child=serializers.DictField(), help_text="Per week (its Monday): reviews and gold_checks submitted."
    )
    gold = serializers.DictField(help_text=GOLD_HELP)
    over_time = serializers.ListField(child=serializers.DictField(), help_text="The gold figures per week.")


class AnnotatorList(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="projects_annotators_list",
        responses={200: AnnotatorRowSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
        description="Everyone who submitted a review in the project, with their accuracy on gold checks.",
    )
    def get(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        return Response(AnnotatorRowSerializer(annotator_list(project), many=True).data)


class AnnotatorDetail(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="projects_annotators_retrieve",
        responses={200: AnnotatorSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        description="One annotator: accuracy on gold checks over time, throughput, median time per review.",
    )
    def get(self, request, slug, username):
        project = project_access(request.user, slug, Role.ADMIN).project
        figures = annotator_detail(project, username)
        if figures is None:
            raise NotFound("No reviews by this user in this project.")
        return Response(AnnotatorSerializer(figures).data)
