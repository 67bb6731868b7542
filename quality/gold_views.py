"""The Gold page of a project, for its admins: the gold samples with the checks made of each, a form
to mark a reviewed sample gold and a button to retire one. Server-rendered, no script."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from feedback.models import Role
from feedback.permissions import project_access
from feedback.review.gold import gold_list, gold_mark, gold_retire, sample_by_key


@require_http_methods(["GET", "POST"])
def gold_page(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    if request.method == "POST":
        sample = sample_by_key(project, request.POST.get("sample", ""))
        gold_mark(project=project, sample=sample, user=request.user)
        messages.info(request, f"Sample {sample.external_id} is gold: its finals are the expected answer.")
        return redirect("quality:gold", slug=project.slug)
    return render(request, "quality/gold.html", {"project": project, "golds": gold_list(project)})


@require_POST
def gold_retire_view(request, slug, sample_pk):
    project = project_access(request.user, slug, Role.ADMIN).project
    sample = sample_by_key(project, sample_pk)
    gold_retire(project=project, sample=sample)
    messages.info(request, f"Sample {sample.external_id} is no longer gold.")
    return redirect("quality:gold", slug=project.slug)
