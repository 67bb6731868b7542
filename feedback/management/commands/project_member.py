"""python manage.py project_member --project P --user U --role annotator|researcher|admin|remove [--create]

Adds a user to a project in a role, changes their role, or removes them (the operator's door: no
role is checked). ``--create`` makes the user first and prints a one-time password, once. The last
admin of a project cannot be removed or demoted; a removed annotator's leases go back to the queue
and their revisions stay.
"""

from django.core.management.base import BaseCommand, CommandError

from feedback.errors import NotFound, ServiceError
from feedback.models import ProjectMembership, Role
from feedback.projects import service
from feedback.selectors import project_by_key

REMOVE = "remove"


class Command(BaseCommand):
    help = "Add a member to a project, change their role, or remove them."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        parser.add_argument("--user", required=True, help="The user name.")
        parser.add_argument("--role", required=True, choices=[*Role.values, REMOVE])
        parser.add_argument("--create", action="store_true", help="Create the user, with a one-time password.")

    def handle(self, *args, **opts):
        username, role = opts["user"], opts["role"]
        try:
            project = project_by_key(opts["project"])
            if role == REMOVE:
                released = service.member_remove(project=project, actor=None, username=username)
                self.stdout.write(f"{username} removed from {project.slug}; {released} lease(s) released.")
                return
            member = ProjectMembership.objects.filter(project=project, user__username=username).exists()
            if member and not opts["create"]:
                service.member_set_role(project=project, actor=None, username=username, role=role)
                self.stdout.write(f"{username} is now {role} in {project.slug}.")
                return
            _, password = service.member_add(
                project=project, actor=None, username=username, role=role, create=opts["create"]
            )
        except NotFound as exc:
            raise CommandError(f"user: {exc.message}") from None
        except ServiceError as exc:  # "username: …": the field and the message
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{username} added to {project.slug} as {role}.")
        if password:
            self.stdout.write(
                f"One-time password for {username} (shown only now): {password} — they choose their own at first login"
            )
