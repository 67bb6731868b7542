"""Who may do what in a project. Superusers and the ``admin`` group are admins of every project;
everyone else acts in the projects they are members of, with their membership's role."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Project, Role

ADMIN_GROUP = "admin"


def is_platform_admin(user) -> bool:
    return user.is_superuser or user.groups.filter(name=ADMIN_GROUP).exists()


def roles_in(user, project: Project) -> set[str]:
    if not user.is_authenticated:
        return set()
    if is_platform_admin(user):
        return set(Role.values)
    return set(project.memberships.filter(user=user).values_list("role", flat=True))


def require_role(user, project: Project, *roles: str) -> set[str]:
    """The user's roles; a non-member gets 404 (projects are not disclosed), a member without the role 403."""
    held = roles_in(user, project)
    if not held:
        raise Http404("No such project.")
    if roles and not held.intersection(roles):
        raise PermissionDenied("Your role in this project does not allow this.")
    return held
