"""python manage.py quality_rebuild [--project P]

Rebuilds the quality summary (``quality.models``) from the saved revisions: of one project, or of
every project. The review path keeps it current; this is for data that arrived another way (bulk
loads, restored backups) and for checking that the kept summary and a rebuilt one agree."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from feedback.errors import InvalidInput
from feedback.models import Project
from feedback.selectors import project_by_key
from quality.summary import rebuild


class Command(BaseCommand):
    help = "Rebuild the quality summary tables from the revisions (one project or all)."

    def add_arguments(self, parser):
        parser.add_argument("--project", help="Project slug, name or id; all projects when absent.")

    def handle(self, *args, **options):
        if options.get("project"):
            try:
                projects = [project_by_key(options["project"])]
            except InvalidInput as exc:
                raise CommandError(str(exc)) from None
        else:
            projects = list(Project.objects.order_by("pk"))
        for slug, rows in rebuild(projects).items():
            self.stdout.write(f"{slug}: {rows:,} reviewed turns")
