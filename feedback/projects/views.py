"""Project pages: a new project (superusers and the ``admin`` group), a project's settings (its
admins edit, researchers read), the guidelines preview, archiving, and the members page."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from feedback.errors import Conflict, InvalidInput
from feedback.models import Role
from feedback.permissions import is_platform_admin, platform_access, project_access
from feedback.selectors import projects_for_user

from . import guidelines, selectors, service
from .forms import MemberAddForm, MemberRoleForm, ProjectCreateForm, ProjectSettingsForm, add_service_errors


@require_http_methods(["GET", "POST"])
def project_new(request):
    platform_access(request.user)
    form = ProjectCreateForm(request.POST or None, projects=list(projects_for_user(request.user)))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        source = project_access(request.user, data["from_project"]).project if data["from_project"] else None
        try:
            project = service.project_create(
                user=request.user,
                slug=data["slug"],
                name=data["name"],
                description=data["description"],
                from_project=source,
            )
        except InvalidInput as exc:
            add_service_errors(form, exc.errors)
        else:
            messages.info(request, f"Project {project.name} created; you are its admin.")
            return redirect("feedback:project-settings", slug=project.slug)
    return render(request, "feedback/project_new.html", {"form": form})


@require_http_methods(["GET", "POST"])
def project_settings(request, slug):
    access = project_access(request.user, slug, Role.ADMIN, Role.RESEARCHER)
    project = access.project
    if request.method == "GET":
        form = ProjectSettingsForm(project=project, read_only=not access.is_admin)
        return _settings_page(request, access, form)
    project = project_access(request.user, slug, Role.ADMIN).project
    form = ProjectSettingsForm(request.POST, project=project)
    preview = None
    if form.is_valid():
        if request.POST.get("action") == "preview":
            preview = guidelines.render(form.cleaned_data["guidelines"])
        else:
            try:
                service.project_update(project=project, values=form.values())
            except (InvalidInput, service.RubricInUse) as exc:
                add_service_errors(form, exc.errors)
            else:
                messages.info(request, "Settings saved.")
                return redirect("feedback:project-settings", slug=project.slug)
    return _settings_page(request, access, form, preview=preview, status=200 if form.is_valid() else 400)


def _settings_page(request, access, form, *, preview=None, status=200):
    project = access.project
    context = {
        "project": project,
        "form": form,
        "is_admin": access.is_admin,
        "preview": preview if preview is not None else guidelines.render(project.guidelines),
        "project_fields": ["name", "description"],
        "guideline_fields": ["guidelines"],
        "rubric_fields": ["criteria", "score_min", "score_max", "level_descriptions"],
        "llm_fields": ["llm_connection", "llm_model", "llm_temperature", "prompt_version"],
        "queue_fields": [
            "review_order",
            "review_criterion",
            "review_seed",
            "reviews_required",
            "review_lease_seconds",
            "adjudication_threshold",
            "gold_every",
        ],
    }
    return render(request, "feedback/project_settings.html", context, status=status)


@require_POST
def guidelines_preview(request, slug):
    """The guidelines as reviewers will see them (htmx swaps this partial in; nothing is saved)."""
    project_access(request.user, slug, Role.ADMIN)
    text = request.POST.get("guidelines", "")
    if len(text) > service.GUIDELINES_MAX:
        error = f"guidelines: at most {service.GUIDELINES_MAX:,} characters (got {len(text):,})"
        return render(request, "feedback/_guidelines_preview.html", {"error": error}, status=400)
    return render(request, "feedback/_guidelines_preview.html", {"preview": guidelines.render(text)})


@require_POST
def project_archive(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    archived = request.POST.get("archived") == "1"
    service.project_archive(project=project, archived=archived)
    if archived:
        messages.info(request, f"{project.name} is archived: hidden from the lists, nothing deleted.")
    else:
        messages.info(request, f"{project.name} is back in the lists.")
    return redirect("feedback:project-settings", slug=project.slug)


@require_http_methods(["GET", "POST"])
def project_members(request, slug):
    access = project_access(request.user, slug, Role.ADMIN, Role.RESEARCHER)
    project = access.project
    can_create = request.user.is_superuser
    form = MemberAddForm(can_create=can_create)
    password = new_user = None
    status = 200
    if request.method == "POST":
        project = project_access(request.user, slug, Role.ADMIN).project
        form = MemberAddForm(request.POST, can_create=can_create)
        if form.is_valid():
            try:
                membership, password = service.member_add(
                    project=project,
                    actor=request.user,
                    username=form.cleaned_data["username"],
                    role=form.cleaned_data["role"],
                    create=form.cleaned_data.get("create", False),
                )
            except (InvalidInput, Conflict) as exc:
                add_service_errors(form, exc.errors or {"username": [exc.message]})
                status = 400 if isinstance(exc, InvalidInput) else 409
            else:
                if password is None:
                    messages.info(request, f"{membership.user.username} added as {membership.role}.")
                    return redirect("feedback:project-members", slug=project.slug)
                # The one-time password is shown on this answer only: never put in a message (a cookie).
                form = MemberAddForm(can_create=can_create)
                new_user = membership.user.username
                messages.info(request, f"{membership.user.username} created and added as {membership.role}.")
        else:
            status = 400
    context = {
        "project": project,
        "members": selectors.members_of(project),
        "form": form,
        "is_admin": access.is_admin,
        "roles": Role.choices,
        "new_password": password,
        "new_user": new_user,
        "platform_admin": is_platform_admin(request.user),
    }
    return render(request, "feedback/project_members.html", context, status=status)


@require_POST
def member_role(request, slug, username):
    project = project_access(request.user, slug, Role.ADMIN).project
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        raise InvalidInput("role", "one of " + ", ".join(Role.values))
    membership = service.member_set_role(
        project=project, actor=request.user, username=username, role=form.cleaned_data["role"]
    )
    messages.info(request, f"{membership.user.username} is now {membership.role}.")
    return redirect("feedback:project-members", slug=project.slug)


@require_POST
def member_remove(request, slug, username):
    project = project_access(request.user, slug, Role.ADMIN).project
    released = service.member_remove(project=project, actor=request.user, username=username)
    note = f"; {released} leased sample(s) went back to the queue" if released else ""
    messages.info(request, f"{username} removed{note}. Their reviews stay.")
    return redirect("feedback:project-members", slug=project.slug)
