"""The Annotators pages of a project, for its admins: everyone who reviewed, and one annotator's
accuracy on gold checks over time, throughput and median time per review (``quality/annotators.py``)."""

from __future__ import annotations

from django.shortcuts import render

from feedback.errors import NotFound
from feedback.models import Role
from feedback.permissions import project_access

from .annotators import annotator_detail, annotator_list


def annotators_page(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    return render(request, "quality/annotators.html", {"project": project, "annotators": annotator_list(project)})


def annotator_page(request, slug, username):
    project = project_access(request.user, slug, Role.ADMIN).project
    figures = annotator_detail(project, username)
    if figures is None:
        raise NotFound("No reviews by this user in this project.")
    return render(request, "quality/annotator.html", {"project": project, "figures": figures})
