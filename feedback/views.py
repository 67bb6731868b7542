"""Browser pages. Each one checks the role, calls a selector or a service, and renders."""

from pathlib import PurePosixPath

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from . import selectors, storage
from .errors import NotFound
from .forms import ImportForm
from .images import served_content_type
from .importers.service import FORMAT_LABELS
from .importers.uploads import import_upload_create, upload_size_checked
from .models import Image, ImportBatch, Role
from .permissions import is_platform_admin, project_access
from .polling import render_polled
from .projects.guidelines import render as render_guidelines
from .references.service import batch_references
from .rest.serializers import ImportBatchSerializer


def project_list(request):
    archived = request.GET.get("archived") == "1"
    context = {
        "projects": selectors.projects_for_user(request.user, archived=archived),
        "archived": archived,
        "can_create": is_platform_admin(request.user),
    }
    return render(request, "feedback/project_list.html", context)


def project_detail(request, slug):
    access = project_access(request.user, slug)
    project, roles = access.project, access.roles
    return render(
        request,
        "feedback/project_detail.html",
        {
            "project": project,
            "roles": roles,
            "is_admin": Role.ADMIN in roles,
            "can_review": bool(roles & {Role.ANNOTATOR, Role.ADMIN}),
            "counts": selectors.project_counts(project),
            "by_criterion": selectors.samples_by_criterion(project),
            "batches": project.import_batches.select_related("created_by")[:10],
            "guidelines": render_guidelines(project.guidelines) if project.guidelines else "",
        },
    )


def sample_list(request, slug):
    project = project_access(request.user, slug).project
    criterion = request.GET.get("criterion")
    missing = request.GET.get("missing") == "1"
    page = Paginator(selectors.sample_page_queryset(project, criterion=criterion, missing_image=missing), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "feedback/sample_list.html",
        {"project": project, "page": page, "criterion": criterion, "missing": missing},
    )


def sample_detail(request, slug, pk):
    project = project_access(request.user, slug).project
    try:
        page = selectors.sample_page(project, pk)
    except project.samples.model.DoesNotExist:
        raise NotFound("No such sample.") from None
    return render(
        request, "feedback/sample_detail.html", {"project": project, "sample": page.sample, "turns": page.turns}
    )


def image_file(request, pk):
    """An image's file: inline only as the raster type its bytes were checked to be at import
    (never what the stored name implies); anything else is a download. The browser is told not
    to sniff, and the response may run nothing (a sandbox with no sources). From an object store
    under signed downloads, a redirect to a signed URL that makes the store answer the same type
    and disposition."""
    image = get_object_or_404(Image.objects.select_related("project"), pk=pk)
    project_access(request.user, image.project.slug)
    if image.is_missing:
        raise NotFound("The image file has not been imported yet.")
    content_type = served_content_type(image.format)
    response = storage.serve(
        storage.MEDIA,
        image.file.name,
        filename=PurePosixPath(image.file_name).name,
        content_type=content_type or "application/octet-stream",
        attachment=not content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_http_methods(["GET", "POST"])
@upload_size_checked
def import_new(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        batch = import_upload_create(
            project=project,
            user=request.user,
            format=form.cleaned_data["format"],
            upload=form.cleaned_data["file"],
            images=form.cleaned_data["images"],
            criterion=form.cleaned_data["criterion"],
            source_model=form.cleaned_data["source_model"],
            images_base=form.cleaned_data["images_base"],
        )
        messages.info(request, f"Import #{batch.pk} queued; this page follows its progress.")
        return redirect("feedback:import-detail", slug=project.slug, pk=batch.pk)
    return render(request, "feedback/import_new.html", {"project": project, "form": form, "formats": FORMAT_LABELS})


def import_detail(request, slug, pk):
    project = project_access(request.user, slug, Role.ADMIN).project
    batch = get_object_or_404(ImportBatch, project=project, pk=pk)
    if request.GET.get("format") == "json":
        return JsonResponse(ImportBatchSerializer(batch).data)
    references = batch_references(batch)
    return render_polled(
        request,
        "feedback/import_detail.html",
        "feedback/_import_progress.html",
        {"project": project, "batch": batch, "references": references},
        # Image references are fetched after the import ends: the page follows them too.
        polling=batch.status in (ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING) or not references.done,
    )
