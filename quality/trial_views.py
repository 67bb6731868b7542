"""Trial pages: the list with the new-trial form, and a trial's page with each variant's figures,
the drafts of any sample side by side, and the buttons that cancel a running trial and make a
variant the project's default. Admins launch, cancel and promote; researchers read."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from feedback.errors import Conflict, InvalidInput
from feedback.models import Role
from feedback.permissions import project_access
from feedback.polling import render_polled
from feedback.trials import selectors, service
from feedback.trials.models import Trial

from .trial_forms import TrialForm
from .trials import trial_figures

READERS = (Role.ADMIN, Role.RESEARCHER)


@require_http_methods(["GET", "POST"])
def trial_list(request, slug):
    access = project_access(request.user, slug, *READERS)
    project = access.project
    form = TrialForm(request.POST or None, project=project)
    estimate = None
    if request.method == "POST":
        project_access(request.user, slug, Role.ADMIN)
        if form.is_valid():
            arguments = form.service_arguments()
            try:
                if "dry_run" in request.POST:  # the Estimate button: the same form comes back with the figures
                    estimate = service.trial_dry_run(
                        service.trial_request(project=project, user=request.user, **arguments)
                    )
                else:
                    trial = service.trial_create(project=project, user=request.user, **arguments)
                    messages.info(request, f"Trial #{trial.pk} started; this page follows it.")
                    return redirect("quality:trial-detail", slug=project.slug, pk=trial.pk)
            except InvalidInput as exc:  # "variants.1.model: …": the form's rows are not the service's fields
                form.add_error(None, str(exc))
    context = {
        "project": project,
        "trials": selectors.trials_of(project),
        "form": form,
        "is_admin": access.is_admin,
        "estimate": estimate,
    }
    return render(request, "quality/trial_list.html", context, status=400 if form.errors else 200)


@require_GET
def trial_detail(request, slug, pk):
    access = project_access(request.user, slug, *READERS)
    project = access.project
    trial = service.trial_get(project, pk)
    service.trial_watch_kick(trial)
    samples = selectors.trial_samples(trial)
    chosen = samples[0] if samples else None
    wanted = request.GET.get("sample", "")
    if wanted:
        chosen = next((s for s in samples if str(s.pk) == wanted.strip()), None)
        if chosen is None:
            raise InvalidInput("sample", "not a sample of this trial")
    context = {
        "project": project,
        "trial": trial,
        "figures": trial_figures(trial),
        "samples": samples,
        "chosen": chosen,
        "turns": selectors.side_by_side(trial, chosen) if chosen else [],
        "is_admin": access.is_admin,
    }
    return render_polled(
        request,
        "quality/trial_detail.html",
        "quality/_trial_figures.html",
        context,
        polling=trial.state == Trial.State.RUNNING,
    )


@require_POST
def trial_cancel(request, slug, pk):
    project = project_access(request.user, slug, Role.ADMIN).project
    trial = service.trial_cancel(trial=service.trial_get(project, pk))  # a Conflict: a message and back
    messages.info(request, f"Trial #{trial.pk} is cancelled: nothing more is sent; drafts under way finish.")
    return redirect("quality:trial-detail", slug=project.slug, pk=trial.pk)


@require_POST
def trial_promote(request, slug, pk, label):
    project = project_access(request.user, slug, Role.ADMIN).project
    trial = service.trial_get(project, pk)
    variant = service.variant_get(trial, label)
    try:
        project = service.trial_promote(trial=trial, variant=variant)
    except (InvalidInput, Conflict) as exc:
        messages.error(request, str(exc))
    else:
        messages.info(
            request,
            f"Variant {variant.label} is now the project's default: prompt {project.prompt_version}, "
            f"{project.llm_connection} {project.llm_model}, temperature {project.llm_temperature}.",
        )
    return redirect("quality:trial-detail", slug=project.slug, pk=trial.pk)
