"""Release pages, for a project's researchers and admins: the list with live progress, the
new-release form, the release page, and downloads of its files (checked, never a public URL).

Releases are immutable: there is no edit page.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from feedback import storage
from feedback.errors import Conflict, InvalidInput, NotFound
from feedback.models import Project, Role
from feedback.permissions import Access, project_access
from feedback.polling import render_polled

from . import selectors, service
from .forms import ReleaseForm
from .models import Release

ROLES = (Role.RESEARCHER, Role.ADMIN)
PER_PAGE = 25


def _access(request, slug: str) -> Access:
    """For the project's researchers and admins (404 for non-members, 403 for annotators)."""
    return project_access(request.user, slug, *ROLES)


def _release(project: Project, pk: int) -> Release:
    try:
        return selectors.release_of(project, pk)
    except Release.DoesNotExist:
        raise NotFound("No such release.") from None


@require_GET
def release_list(request, slug):
    project = _access(request, slug).project
    if request.GET.get("format") == "json":
        ids = [i for i in request.GET.get("ids", "").split(",") if i.isdigit()]
        return JsonResponse({"releases": selectors.releases_progress(project, ids)})
    page = Paginator(selectors.releases_of(project), PER_PAGE).get_page(request.GET.get("page"))
    rows = [(release, selectors.data_files(release)) for release in page]
    return render_polled(
        request,
        "exports/release_list.html",
        "exports/_release_rows.html",
        {"project": project, "page": page, "rows": rows},
        polling=any(release.active for release, _ in rows),
    )


@require_http_methods(["GET", "POST"])
def release_new(request, slug):
    project = _access(request, slug).project
    form = ReleaseForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        try:
            release = service.release_create(project=project, user=request.user, **form.service_arguments())
        except InvalidInput as exc:
            form.add_service_error(exc)
        except Conflict as exc:  # the project is at its quota
            form.add_error(None, exc.message)
        else:
            messages.info(request, f"Release #{release.pk} queued; this page follows its build.")
            return redirect("exports:release-detail", slug=project.slug, pk=release.pk)
    return render(request, "exports/release_new.html", {"project": project, "form": form})


@require_GET
def release_detail(request, slug, pk):
    access = _access(request, slug)
    project = access.project
    release = _release(project, pk)
    progress = selectors.release_progress(release)
    if request.GET.get("format") == "json":
        return JsonResponse(progress)
    return render_polled(
        request,
        "exports/release_detail.html",
        "exports/_release_progress.html",
        {
            "project": project,
            "release": release,
            "progress": progress,
            "files": list(release.files.all()),
            "card": selectors.card_file(release),
            "can_delete": access.is_admin and not release.active,
            "can_cancel": access.is_admin and release.active,
            "manifest": json.dumps(release.manifest, indent=2, ensure_ascii=False) if release.manifest else "",
        },
        polling=release.active,
    )


@require_GET
def release_file(request, slug, pk, path):
    project = _access(request, slug).project
    name = service.release_file_name(_release(project, pk), path)
    return storage.serve(storage.RELEASES, name, filename=PurePosixPath(name).name)


@require_POST
def release_delete(request, slug, pk):
    """Admins only: a release's files are the researchers' record of what they trained on."""
    project = project_access(request.user, slug, Role.ADMIN).project
    release = _release(project, pk)
    try:
        service.release_delete(release=release)
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect("exports:release-detail", slug=project.slug, pk=release.pk)
    messages.info(request, f"Release #{pk} and its files were deleted.")
    return redirect("exports:release-list", slug=project.slug)


@require_POST
def release_cancel(request, slug, pk):
    """Admins only: stops a queued or building release (a stuck one too); delete it afterwards."""
    project = project_access(request.user, slug, Role.ADMIN).project
    release = _release(project, pk)
    try:
        service.release_cancel(release=release, user=request.user)
    except Conflict as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"Release #{pk} was cancelled; you may now delete it.")
    return redirect("exports:release-detail", slug=project.slug, pk=release.pk)
