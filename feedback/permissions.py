"""Who may do what in a project. Superusers and the ``admin`` group are admins of every project;
everyone else acts in the projects they are members of, with their membership's role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import NotAllowed, NotFound
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


@dataclass(frozen=True)
class Access:
    """A user's access to one project: its roles there, and whether they administer it."""

    project: Project
    roles: frozenset[str]
    user: Any

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def check_owner(self, owner_id: int | None, what: str = "assignment") -> None:
        """An object of one reviewer (a review assignment): its owner and the project's admins see
        it; to anyone else it does not exist (404, like a project they are not a member of)."""
        if not self.is_admin and owner_id != self.user.pk:
            raise NotFound(f"No such {what}.")


def project_access(user, slug: str, *roles: str) -> Access:
    """The one check of every page and endpoint: the project by its slug, if ``user`` may act in it
    with one of ``roles`` (any role when none is named). No such project, or one the user is not a
    member of: ``NotFound`` (404; projects are not disclosed). A member without the role:
    ``NotAllowed`` (403). Admins (superusers, the ``admin`` group) hold every role in every project."""
    project = Project.objects.filter(slug=slug).first()
    held = roles_in(user, project) if project is not None else set()
    if project is None or not held:
        raise NotFound("No such project.")
    if roles and not held.intersection(roles):
        raise NotAllowed("Your role in this project does not allow this.")
    return Access(project=project, roles=frozenset(held), user=user)


def platform_access(user) -> None:
    """The platform-level check: creating projects is for superusers and the global ``admin``
    group (``NotAllowed``, 403, for anyone else; there is no project to hide)."""
    if not user.is_authenticated or not is_platform_admin(user):
        raise NotAllowed("Only superusers and members of the admin group create projects.")
