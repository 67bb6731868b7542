"""python manage.py quality_report --project P [--format json|markdown] [--criterion C]
[--prompt-version V] [--model M] [--import ID] [--since YYYY-MM-DD] [--until YYYY-MM-DD]

Prints the project's quality figures: the JSON of the API, or a short Markdown summary."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from feedback.errors import InvalidInput
from feedback.selectors import project_by_key
from quality.figures import compute, markdown_table
from quality.filters import QualityFilters

OPTIONS = {
    "criterion": "criterion",
    "prompt_version": "prompt_version",
    "model": "model",
    "import_id": "import",
    "since": "since",
    "until": "until",
}


class Command(BaseCommand):
    help = "Print a project's quality figures (drafter vs human, reviewer vs reviewer, the models under study)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        parser.add_argument("--format", choices=["json", "markdown"], default="json")
        parser.add_argument("--criterion")
        parser.add_argument("--prompt-version", dest="prompt_version")
        parser.add_argument("--model", help="A drafting or responder model.")
        parser.add_argument("--import", dest="import_id", help="Id of an import batch.")
        parser.add_argument("--since", help="YYYY-MM-DD")
        parser.add_argument("--until", help="YYYY-MM-DD")

    def handle(self, *args, **options):
        try:
            project = project_by_key(options["project"])
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        params = {key: options[name] for name, key in OPTIONS.items() if options.get(name) not in (None, "")}
        try:
            filters = QualityFilters.parse(params, criteria=list(project.criteria))
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        figures = compute(project, filters)
        if options["format"] == "markdown":
            self.stdout.write(markdown_table(figures), ending="")
        else:
            self.stdout.write(json.dumps(figures, indent=2))
