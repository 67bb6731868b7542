"""The REST API's core endpoints (samples, imports): token or session authentication, the same role
checks and services as the pages. Projects and members are in ``feedback.projects.api``."""

from django.db.models import Prefetch, prefetch_related_objects
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.models import ImportBatch, Role, Sample
from feedback.review.models import Revision

from . import selectors
from .errors import NotFound
from .importers.uploads import check_upload_size, import_upload_create
from .permissions import project_access
from .rest.serializers import (
    ImportBatchSerializer,
    ImportRequestSerializer,
    SampleDetailSerializer,
    SampleSerializer,
    import_batches_data,
)


class SampleList(generics.ListAPIView):
    serializer_class = SampleSerializer

    def get_queryset(self):
        project = project_access(self.request.user, self.kwargs["slug"]).project
        params = self.request.query_params
        return selectors.sample_page_queryset(
            project, criterion=params.get("criterion"), missing_image=params.get("missing_image") == "1"
        ).prefetch_related("turns__imported_feedback")


class SampleDetail(APIView):
    """A sample with each turn's successful drafts; admins and researchers also get each turn's
    revisions (every reviewer's), annotators get ``revisions: null`` so that reviews stay independent."""

    @extend_schema(responses=SampleDetailSerializer)
    def get(self, request, slug, pk):
        access = project_access(request.user, slug)
        project = access.project
        try:
            sample = selectors.sample_detail(project, pk)
        except Sample.DoesNotExist:
            raise NotFound("No such sample.") from None
        show_revisions = access.has(Role.ADMIN, Role.RESEARCHER)
        if show_revisions:
            revisions = Revision.objects.select_related("author").defer("diff").order_by("assignment_id", "version")
            prefetch_related_objects(
                list(sample.turns.all()), Prefetch("revisions", queryset=revisions, to_attr="visible_revisions")
            )
        context = {"request": request, "show_revisions": show_revisions}
        return Response(SampleDetailSerializer(sample, context=context).data)


class ImportCreate(APIView):
    """Upload a file (and optionally a zip of images); the import runs on a worker. Answers 202,
    or 413 (before the body is read) past ``ANNOTATOR_UPLOAD_MAX_BYTES``."""

    def initial(self, request, *args, **kwargs):
        # Authentication may read the body (the session's CSRF check): the size comes first.
        if request.method == "POST":
            check_upload_size(request)
        super().initial(request, *args, **kwargs)

    @extend_schema(responses=ImportBatchSerializer(many=True))
    def get(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        batches = list(ImportBatch.objects.filter(project=project)[:50])
        return Response(import_batches_data(batches))

    @extend_schema(request=ImportRequestSerializer, responses={202: ImportBatchSerializer})
    def post(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
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
            images_base=form.validated_data["images_base"],
        )
        return Response(ImportBatchSerializer(batch).data, status=status.HTTP_202_ACCEPTED)


class ImportDetail(APIView):
    @extend_schema(responses=ImportBatchSerializer)
    def get(self, request, slug, pk):
        project = project_access(request.user, slug, Role.ADMIN).project
        return Response(ImportBatchSerializer(get_object_or_404(ImportBatch, project=project, pk=pk)).data)
