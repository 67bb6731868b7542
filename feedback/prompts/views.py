"""Prompt version pages: the list, one version, the diff of two, a new version with a live preview
(htmx swaps the rendered prompt in; no LLM is called), and making one the project's default.
Admins make and choose versions; researchers read them."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from feedback.drafting import versions
from feedback.errors import Conflict, InvalidInput
from feedback.models import Role
from feedback.permissions import project_access

from . import selectors
from .forms import VersionForm

READERS = (Role.ADMIN, Role.RESEARCHER)


@require_GET
def prompt_list(request, slug):
    access = project_access(request.user, slug, *READERS)
    context = {
        "project": access.project,
        "rows": selectors.version_rows(access.project),
        "is_admin": access.is_admin,
    }
    return render(request, "feedback/prompt_list.html", context)


@require_GET
def prompt_detail(request, slug, number):
    access = project_access(request.user, slug, *READERS)
    project = access.project
    version = versions.version_get(project, number)
    previous = None
    if version.number > 1:
        previous = project.prompt_versions.filter(number__lt=version.number).order_by("-number").first()
    context = {
        "project": project,
        "row": selectors.row_of(project, version),
        "version": version,
        "previous": previous,
        "is_admin": access.is_admin,
    }
    return render(request, "feedback/prompt_detail.html", context)


@require_GET
def prompt_diff(request, slug):
    access = project_access(request.user, slug, *READERS)
    project = access.project
    old = versions.version_get(project, request.GET.get("a", ""), field="a")
    new = versions.version_get(project, request.GET.get("b", ""), field="b")
    context = {"project": project, "diff": selectors.version_diff(old, new), "rows": selectors.version_rows(project)}
    return render(request, "feedback/prompt_diff.html", context)


@require_http_methods(["GET", "POST"])
def prompt_new(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    base_number = request.GET.get("from") or request.POST.get("from")
    if base_number:
        base = versions.version_get(project, base_number, field="from")
    else:
        base = versions.default_version(project)
    status = 200
    preview = error = None
    if request.method == "POST":
        form = VersionForm(request.POST, project=project)
        if form.is_valid():
            data = form.cleaned_data
            if request.POST.get("action") == "preview":
                preview, error = _preview(project, data["system"], data["user"], data["sample"])
            else:
                try:
                    version = versions.prompt_version_create(
                        project=project,
                        author=request.user,
                        system=data["system"],
                        user=data["user"],
                        note=data["note"],
                        name=data["name"] or None,
                        based_on=base,
                    )
                except (InvalidInput, Conflict) as exc:
                    for field, problems in (exc.errors or {"": [exc.message]}).items():
                        form.add_error(field if field in form.fields else None, problems)
                    status = 400 if isinstance(exc, InvalidInput) else 409
                else:
                    messages.info(request, f"Prompt {version.name} saved as version {version.number}.")
                    return redirect("feedback:prompt-detail", slug=project.slug, number=version.number)
        else:
            status = 400
    else:
        form = VersionForm(project=project, initial={"system": base.system, "user": base.user})
        sample = form.fields["sample"]
        first = next(iter(getattr(sample, "choices", [])), None)
        preview, error = _preview(project, base.system, base.user, first[0] if first else None)
    context = {
        "project": project,
        "form": form,
        "base": base,
        "preview": preview,
        "error": error,
        "placeholders": selectors.placeholders(),
    }
    return render(request, "feedback/prompt_new.html", context, status=status)


def _preview(project, system, user, sample):
    try:
        return selectors.preview(project=project, system=system, user=user, sample_id=sample), None
    except InvalidInput as exc:
        return None, str(exc)


@require_POST
def prompt_preview(request, slug):
    """The rendered prompt for the form's text and sample (htmx swaps this partial in; nothing is
    saved and no model is called). Problems are shown in the partial, named by field."""
    project = project_access(request.user, slug, *READERS).project
    form = VersionForm(request.POST, project=project)
    if form.is_valid():
        preview, error = _preview(
            project, form.cleaned_data["system"], form.cleaned_data["user"], form.cleaned_data["sample"]
        )
    else:
        preview = None
        error = " ".join(f"{field}: {' '.join(str(p) for p in problems)}" for field, problems in form.errors.items())
    return render(request, "feedback/_prompt_preview.html", {"preview": preview, "error": error})


@require_POST
def prompt_default(request, slug, number):
    project = project_access(request.user, slug, Role.ADMIN).project
    version = versions.version_get(project, number)
    versions.prompt_version_set_default(project=project, version=version)
    messages.info(request, f"{version.name} is now the project's default prompt: new jobs draft with it.")
    return redirect("feedback:prompt-list", slug=project.slug)
