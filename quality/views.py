"""The Quality page of a project, for its admins and researchers: the figures of
``quality.figures.compute`` as tables, and as plots drawn in the browser from the same JSON."""

from __future__ import annotations

from django.shortcuts import render

from feedback.errors import InvalidInput
from feedback.models import Role
from feedback.permissions import project_access

from . import page
from .figures import cached
from .filters import QualityFilters


def quality_page(request, slug):
    project = project_access(request.user, slug, Role.ADMIN, Role.RESEARCHER).project
    error = None
    try:
        filters = QualityFilters.parse(request.GET, criteria=list(project.criteria))
    except InvalidInput as exc:  # the page still shows the unfiltered figures, under the error
        error, filters = exc, QualityFilters()
    figures = cached(project, filters)
    context = {"project": project, "figures": figures, "tables": page.tables(figures), "error": error}
    return render(request, "quality/quality.html", context, status=400 if error else 200)
