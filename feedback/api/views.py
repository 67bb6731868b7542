"""The REST API: token or session authentication, the same role checks and services as the pages."""

from django.shortcuts import get_object_or_404
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..importers.uploads import import_upload_create
from ..models import ImportBatch, Project, Role
from ..permissions import require_role
from .serializers import ImportBatchSerializer, ImportRequestSerializer, ProjectSerializer, SampleSerializer


def project_for(request, slug: str, *roles: str) -> Project:
    project = get_object_or_404(Project, slug=slug)
    require_role(request.user, project, *roles)
    return project


class ProjectList(generics.ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return selectors.projects_for_user(self.request.user)


class ProjectDetail(APIView):
    def get(self, request, slug):
        project = project_for(request, slug)
        counts = selectors.project_counts(project)
        # The list's annotated counts, here taken from the full counts (the serializer skips them).
        data = {**ProjectSerializer(project).data, "sample_count": counts["samples"], "image_count": counts["images"]}
        return Response({**data, "counts": counts})


class SampleList(generics.ListAPIView):
    serializer_class = SampleSerializer

    def get_queryset(self):
        project = project_for(self.request, self.kwargs["slug"])
        params = self.request.query_params
        return selectors.sample_page_queryset(
            project, criterion=params.get("criterion"), missing_image=params.get("missing_image") == "1"
        ).prefetch_related("turns__imported_feedback")


class ImportCreate(APIView):
    """Upload a file (and optionally a zip of images); the import runs on a worker. Answers 202."""

    def get(self, request, slug):
        project = project_for(request, slug, Role.ADMIN)
        batches = ImportBatch.objects.filter(project=project)[:50]
        return Response(ImportBatchSerializer(batches, many=True).data)

    def post(self, request, slug):
        project = project_for(request, slug, Role.ADMIN)
        form = ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        batch = import_upload_create(
            project=project,
            user=request.user,
            format=form.validated_data["format"],
            upload=form.validated_data["file"],
            images=form.validated_data.get("images"),
            criterion=form.validated_data["criterion"],
            source_model=form.validated_data["source_model"],
        )
        return Response(ImportBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)


class ImportDetail(APIView):
    def get(self, request, slug, pk):
        project = project_for(request, slug, Role.ADMIN)
        return Response(ImportBatchSerializer(get_object_or_404(ImportBatch, project=project, pk=pk)).data)
