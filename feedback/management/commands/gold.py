"""python manage.py gold --project P list | mark SAMPLE [SAMPLE ...] --user U | retire SAMPLE [SAMPLE ...]

Gold samples from the command line, through the same services as the Gold page and the API. SAMPLE
is the sample's external id (or its number); U an admin of the project, recorded as who marked it.
A mark refused (not reviewed, flagged, waiting for adjudication, gold already) names the sample and
stops the command; the samples before it stay marked.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from feedback.errors import InvalidInput, NotAllowed, NotFound, ServiceError
from feedback.models import Role
from feedback.permissions import roles_in
from feedback.review.gold import gold_count, gold_list, gold_mark, gold_retire, sample_by_key
from feedback.selectors import project_by_key

# Samples one command takes at most.
SAMPLES_MAX = 1000


class Command(BaseCommand):
    help = "List, mark and retire the gold samples of a project (hidden checks of reviewers)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="The gold samples, newest first, with the checks made of each.")
        mark = actions.add_parser("mark", help="Make reviewed samples gold: their finals become the answer.")
        mark.add_argument("samples", nargs="+")
        mark.add_argument("--user", required=True, help="An admin of the project.")
        retire = actions.add_parser("retire", help="Serve these gold samples to no one any more.")
        retire.add_argument("samples", nargs="+")

    def handle(self, *args, **opts):
        try:
            project = project_by_key(opts["project"])
            if len(opts.get("samples") or []) > SAMPLES_MAX:
                raise InvalidInput("samples", f"at most {SAMPLES_MAX:,} a command")
            getattr(self, "_" + opts["action"])(project, opts)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None

    def _list(self, project, opts):
        self.stdout.write(f"{gold_count(project)} gold samples, one claim in {project.gold_every or '- (off)'}")
        for gold in gold_list(project):
            self.stdout.write(
                f"{gold.sample.external_id}  marked by {gold.marked_by} {gold.marked_at:%Y-%m-%d %H:%M}  "
                f"{gold.checks} checks"
            )

    def _mark(self, project, opts):
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise InvalidInput("user", f"no user {opts['user'][:100]!r}")
        held = roles_in(user, project)
        if not held:
            raise NotFound(f"user: {user} is not a member of this project")
        if Role.ADMIN not in held:
            raise NotAllowed(f"user: {user} is not an admin of this project")
        for key in opts["samples"]:
            sample = sample_by_key(project, key)
            gold = gold_mark(project=project, sample=sample, user=user)
            self.stdout.write(f"{sample.external_id}: gold ({len(gold.expected)} turns in the answer)")

    def _retire(self, project, opts):
        for key in opts["samples"]:
            sample = sample_by_key(project, key)
            gold_retire(project=project, sample=sample)
            self.stdout.write(f"{sample.external_id}: retired")
