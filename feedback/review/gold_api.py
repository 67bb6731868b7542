"""Gold samples in the REST API, under /api/projects/<slug>/gold/: the list, marking a reviewed
sample gold, and retiring one. For the project's admins only: anyone else who is a member gets 403
(annotators never learn which samples are gold), non-members 404."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.rest.parsers import BoundedJSONParser

from ..models import Role
from ..permissions import project_access
from ..rest.errors import ErrorSerializer
from .gold import KEY_MAX, gold_list, gold_mark, gold_retire, gold_samples, sample_by_key

TAGS = ["gold"]
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="Not an admin of the project.")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such project for this user, or no such sample.")


class GoldSerializer(serializers.Serializer):
    sample = serializers.IntegerField(source="sample_id", read_only=True)
    external_id = serializers.CharField(source="sample.external_id", read_only=True)
    marked_by = serializers.CharField(source="marked_by.username", read_only=True)
    marked_at = serializers.DateTimeField(read_only=True)
    checks = serializers.IntegerField(read_only=True, help_text="Submitted gold checks of the sample.")
    expected = serializers.DictField(
        read_only=True, help_text="Turn id to the expected decision, critique, refinement, scores and reason."
    )


class GoldMarkSerializer(serializers.Serializer):
    sample = serializers.CharField(max_length=KEY_MAX, help_text="The sample's external id or number.")


class GoldList(APIView):
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        tags=TAGS,
        operation_id="projects_gold_list",
        responses={200: GoldSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
        description="The project's gold samples, newest first (at most 500), with the checks made of each.",
    )
    def get(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        return Response(GoldSerializer(gold_list(project), many=True).data)

    @extend_schema(
        tags=TAGS,
        operation_id="projects_gold_create",
        request=GoldMarkSerializer,
        responses={
            201: GoldSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not a reviewed, settled, unflagged sample."),
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: OpenApiResponse(ErrorSerializer, description="The sample is gold already."),
        },
        description="Marks a reviewed sample gold: its finals become the expected answer of hidden checks.",
    )
    def post(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        body = GoldMarkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        sample = sample_by_key(project, body.validated_data["sample"])
        gold_mark(project=project, sample=sample, user=request.user)
        marked = gold_samples(project).get(sample=sample)
        return Response(GoldSerializer(marked).data, status=status.HTTP_201_CREATED)


class GoldDetail(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="projects_gold_destroy",
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
        description="Retires a gold sample: served to no one any more; its checks keep their scores.",
    )
    def delete(self, request, slug, sample_id):
        project = project_access(request.user, slug, Role.ADMIN).project
        gold_retire(project=project, sample=sample_by_key(project, sample_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
