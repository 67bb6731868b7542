"""Reads of the settings and members pages (one query each, whatever the project holds)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from feedback.models import Project, ProjectMembership
from feedback.review.models import Assignment


def members_of(project: Project) -> QuerySet[ProjectMembership]:
    """The memberships with their users, and how many samples each member holds leased here."""
    leased = Q(user__assignments__project=project, user__assignments__state=Assignment.State.LEASED)
    return (
        ProjectMembership.objects.filter(project=project)
        .select_related("user")
        .annotate(leases=Count("user__assignments", filter=leased))
        .order_by("user__username")
    )
