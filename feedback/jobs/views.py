"""Job pages, for a project's admins: the list, the launch form, and the live job page."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from feedback.drafting import connections
from feedback.errors import Conflict, InvalidInput
from feedback.jobs.models import Job
from feedback.models import Role
from feedback.permissions import project_access
from feedback.polling import render_polled

from . import selectors, service
from .estimate import compared
from .forms import JobForm


def key_status() -> list[dict]:
    """The connections, and whether their keys are set: never what they are, nor where they go."""
    found = connections.registry()
    return [found[name].public() for name in sorted(found)]


def job_list(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    page = Paginator(selectors.jobs_of(project), 25).get_page(request.GET.get("page"))
    return render(request, "feedback/job_list.html", {"project": project, "page": page})


@require_http_methods(["GET", "POST"])
def job_new(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    form = JobForm(request.POST or None, project=project, user=request.user)
    estimate = None
    if request.method == "POST" and form.is_valid():
        try:
            if "dry_run" in request.POST:  # the Estimate button: the same form comes back with the figures
                estimate = service.job_dry_run(
                    service.job_request(project=project, user=request.user, **form.service_arguments())
                )
            else:
                job = service.job_create(project=project, user=request.user, **form.service_arguments())
                messages.info(request, f"Job #{job.pk} launched; this page follows its progress.")
                return redirect("feedback:job-detail", slug=project.slug, pk=job.pk)
        except InvalidInput as exc:  # "drafter.model: …": the form's fields are not the service's
            form.add_error(None, str(exc))
    context = {"project": project, "form": form, "connections": key_status(), "estimate": estimate}
    return render(request, "feedback/job_new.html", context)


def job_detail(request, slug, pk):
    project = project_access(request.user, slug, Role.ADMIN).project
    job = get_object_or_404(Job.objects.select_related("created_by"), project=project, pk=pk)
    service.job_watch_kick(job)
    progress = selectors.job_progress(job)
    if request.GET.get("format") == "json":
        return JsonResponse(progress)
    return render_polled(
        request,
        "feedback/job_detail.html",
        "feedback/_job_progress.html",
        {
            "project": project,
            "job": job,
            "progress": progress,
            "simulated": job.drafts.filter(simulated=True).exists(),
            "compared": compared(job),
        },
        polling=progress["state"] in Job.ACTIVE_STATES,
    )


@require_POST
def job_action(request, slug, pk, action):
    if action not in service.ACTIONS:
        raise Http404("No such action.")
    project = project_access(request.user, slug, Role.ADMIN).project
    job = get_object_or_404(Job, project=project, pk=pk)
    try:
        count = service.job_act(job=job, action=action, budget=request.POST.get("budget") or None)
    except (InvalidInput, Conflict) as exc:  # a bad budget; a state that refuses the action
        messages.error(request, str(exc))
    else:
        if count is not None:
            messages.info(request, f"{count} failed item(s) queued again.")
    return redirect("feedback:job-detail", slug=project.slug, pk=job.pk)
