"""Adjudication pages: the queue of disagreeing samples, and one sample's reviews side by side with
a form per turn to keep one reviewer's version or an edit of it. Server-rendered, no script."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from ..errors import InvalidInput
from ..models import Sample, Turn
from ..permissions import project_access
from . import adjudication_selectors as selectors
from .adjudication import ADJUDICATORS, adjudication_save, case_for
from .models import Decision

ID_MAX_DIGITS = 18  # an id, within bigint


def adjudication_queue(request, slug):
    project = project_access(request.user, slug, *ADJUDICATORS).project
    state = request.GET.get("state", "pending")
    if state not in selectors.QUEUE_STATES:
        raise InvalidInput("state", f"One of {', '.join(selectors.QUEUE_STATES)}.")
    return render(
        request,
        "feedback/adjudication_queue.html",
        {
            "project": project,
            "state": state,
            "states": selectors.QUEUE_STATES,
            "cases": selectors.adjudication_queue(project, state=state),
            "counts": selectors.queue_counts(project),
            "shown_max": selectors.QUEUE_MAX,
        },
    )


@require_http_methods(["GET", "POST"])
def adjudication_sample(request, slug, sample_pk):
    project = project_access(request.user, slug, *ADJUDICATORS).project
    sample = get_object_or_404(Sample, project=project, pk=sample_pk)
    case = case_for(project, sample.pk)
    if request.method == "POST":
        turn = get_object_or_404(Turn, sample=sample, pk=_id(request.POST, "turn"))
        edit = None
        if request.POST.get("mode") == "edit":
            edit = {
                "decision": request.POST.get("decision", ""),
                "critique": request.POST.get("critique", ""),
                "refinement": request.POST.get("refinement", ""),
                "reason": request.POST.get("reason", ""),
                "scores": {
                    name: request.POST.get(f"score-{name}", "")
                    for name in project.criteria
                    if request.POST.get(f"score-{name}", "") != ""
                },
            }
        adjudication_save(
            project=project,
            sample=sample,
            turn=turn,
            adjudicator=request.user,
            revision_id=_id(request.POST, "revision"),
            edit=edit,
        )
        messages.info(request, f"Turn {turn.index + 1} settled.")
        return redirect("feedback:adjudication-sample", slug=project.slug, sample_pk=sample.pk)
    page = selectors.adjudication_page(project, case)
    return render(
        request,
        "feedback/adjudication.html",
        {
            "project": project,
            "page": page,
            "sample": page.sample,
            "decisions": Decision.choices,
            "scale": list(project.score_range),
        },
    )


def _id(data, name: str) -> int:
    value = data.get(name, "")
    if not (value.isascii() and value.isdigit() and len(value) <= ID_MAX_DIGITS):
        raise InvalidInput(name, "The form must name it by its number.")
    return int(value)
