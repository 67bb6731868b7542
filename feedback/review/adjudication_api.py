"""Adjudication in the REST API, under /api/projects/<slug>/adjudication/: the queue of samples whose
reviews disagree, one sample's reviews side by side with their diffs, and saving a turn's final.

For adjudicators and the project's admins: researchers and annotators get 403, non-members 404.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.rest.parsers import BoundedJSONParser

from ..models import Sample, Turn
from ..permissions import project_access
from ..rest.errors import ErrorSerializer
from ..rest.serializers import DraftSerializer, RevisionSerializer
from . import adjudication_selectors as selectors
from .adjudication import ADJUDICATORS, adjudication_save, case_for
from .models import Adjudication, AdjudicationCase, Decision
from .serializers import BoundedText

TAGS = ["adjudication"]
FIELD_ERRORS = OpenApiResponse(ErrorSerializer, description="Invalid input: ``errors`` maps fields to messages.")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Neither an adjudicator nor an admin of the project.")
NOT_FOUND = OpenApiResponse(
    ErrorSerializer, description="No such project for this user, or no such sample waiting for adjudication."
)


def _segments() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(trim_whitespace=False), min_length=2, max_length=2),
        read_only=True,
    )


class VersionDiffSerializer(serializers.Serializer):
    """Word diffs as ``[op, text]`` segments (op one of same, del, ins) and score changes as
    ``[criterion, before, after]``."""

    critique = _segments()
    refinement = _segments()
    scores = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=3, max_length=3), read_only=True
    )


class ReviewVersionSerializer(serializers.Serializer):
    revision = RevisionSerializer(read_only=True)
    against_draft = VersionDiffSerializer(read_only=True, allow_null=True)
    against_first = VersionDiffSerializer(
        read_only=True, allow_null=True, help_text="Against the first review's version; null for the first."
    )


class AdjudicationSerializer(serializers.ModelSerializer):
    adjudicator: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Adjudication
        fields = [
            "id",
            "turn",
            "adjudicator",
            "revision",
            "edited",
            "decision",
            "critique",
            "refinement",
            "scores",
            "reason",
            "created_at",
        ]
        read_only_fields = fields


class TurnAdjudicationSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="turn.id", read_only=True)
    index = serializers.IntegerField(source="turn.index", read_only=True)
    user_message = serializers.CharField(source="turn.user_message", read_only=True)
    model_response = serializers.CharField(source="turn.model_response", read_only=True, allow_null=True)
    draft = DraftSerializer(read_only=True, allow_null=True)
    reasons = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Why the reviews disagree."
    )
    reviews = ReviewVersionSerializer(many=True, read_only=True)
    adjudication = AdjudicationSerializer(read_only=True, allow_null=True)


class CaseSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="sample.external_id", read_only=True)
    adjudicated = serializers.IntegerField(read_only=True, help_text="Turns settled so far.")
    turns = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        read_only=True,
        help_text="Disagreeing turn id to the reasons.",
    )

    class Meta:
        model = AdjudicationCase
        fields = ["sample", "external_id", "turns", "adjudicated", "opened_at", "settled_at"]
        read_only_fields = fields


class QueueSerializer(serializers.Serializer):
    pending = serializers.IntegerField(read_only=True)
    settled = serializers.IntegerField(read_only=True)
    results = CaseSerializer(many=True, read_only=True, help_text=f"At most {selectors.QUEUE_MAX}, oldest first.")


class AdjudicationPageSerializer(serializers.Serializer):
    sample = serializers.IntegerField(source="sample.id", read_only=True)
    external_id = serializers.CharField(source="sample.external_id", read_only=True)
    opened_at = serializers.DateTimeField(source="case.opened_at", read_only=True)
    settled_at = serializers.DateTimeField(source="case.settled_at", read_only=True, allow_null=True)
    turns = TurnAdjudicationSerializer(many=True, read_only=True)


class QueueQuerySerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=selectors.QUEUE_STATES, required=False, default="pending")


class ScoresField(serializers.DictField):
    child = serializers.IntegerField()


class AdjudicationRequestSerializer(serializers.Serializer):
    revision = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The reviewer's version kept: a revision id of the turn's reviews."
    )
    decision = serializers.ChoiceField(
        choices=Decision.choices, required=False, help_text="Omitted: the chosen version's, unless edited."
    )
    critique = BoundedText("critique", required=False, help_text="Omitted: the chosen version's.")
    refinement = BoundedText("refinement", required=False, help_text="Omitted: the chosen version's.")
    scores = ScoresField(required=False, help_text="Omitted: the chosen version's.")
    reason = BoundedText("reason", required=False, help_text="Why the draft is rejected, to reject.")


class AdjudicationView(APIView):
    parser_classes = [BoundedJSONParser]


class QueueList(AdjudicationView):
    @extend_schema(
        tags=TAGS,
        operation_id="projects_adjudication_list",
        summary="Samples to adjudicate",
        description="The project's samples whose reviews disagree: pending (default), settled or all.",
        parameters=[OpenApiParameter("state", str, enum=list(selectors.QUEUE_STATES), required=False)],
        responses={200: QueueSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request, slug):
        project = project_access(request.user, slug, *ADJUDICATORS).project
        query = QueueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        counts = selectors.queue_counts(project)
        cases = selectors.adjudication_queue(project, state=query.validated_data["state"])
        return Response(QueueSerializer({**counts, "results": cases}).data)


class CaseDetail(AdjudicationView):
    @extend_schema(
        tags=TAGS,
        operation_id="projects_adjudication_sample_retrieve",
        summary="A sample's reviews side by side",
        description="Per answered turn: the draft, each submitted review's latest version with its diffs "
        "against the draft it started from and against the first review, why they disagree, and the "
        "adjudication once saved.",
        responses={200: AdjudicationPageSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request, slug, sample_id):
        project = project_access(request.user, slug, *ADJUDICATORS).project
        case = case_for(project, sample_id)
        return Response(AdjudicationPageSerializer(selectors.adjudication_page(project, case)).data)


class AdjudicationCreate(AdjudicationView):
    @extend_schema(
        tags=TAGS,
        request=AdjudicationRequestSerializer,
        summary="Settle a turn",
        description="Keeps one reviewer's version (``revision``) as the turn's final, or an edit of it "
        "(any of decision, critique, refinement, scores, reason). One per turn: 409 once settled.",
        responses={
            201: AdjudicationSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: OpenApiResponse(ErrorSerializer, description="The turn is settled already."),
        },
    )
    def post(self, request, slug, sample_id, turn_id):
        project = project_access(request.user, slug, *ADJUDICATORS).project
        case_for(project, sample_id)
        sample = get_object_or_404(Sample, project=project, pk=sample_id)
        turn = get_object_or_404(Turn, sample=sample, pk=turn_id)
        form = AdjudicationRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        revision_id = data.pop("revision")
        adjudication = adjudication_save(
            project=project, sample=sample, turn=turn, adjudicator=request.user, revision_id=revision_id, edit=data
        )
        return Response(AdjudicationSerializer(adjudication).data, status=status.HTTP_201_CREATED)
