"""python manage.py create_project --slug S --name N [--from-project P] [--rubric FILE.json] [--guidelines FILE.md]

Creates a project from the command line (the operator's door: no role is checked). ``--rubric`` is a
JSON object with any of ``criteria``, ``score_min``, ``score_max`` and ``level_descriptions``;
``--from-project`` copies another project's rubric, guidelines, LLM and queue settings first.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback.errors import InvalidInput, ServiceError
from feedback.limits import TooDeep, loads_bounded
from feedback.models import ProjectMembership, Role
from feedback.projects import service
from feedback.selectors import project_by_key

RUBRIC_FILE_MAX = 256 * 1024


def read_text(field: str, path: str, limit: int) -> str:
    """A file's text, refused past ``limit`` bytes without reading further (naming ``field``)."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(field, f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise InvalidInput(field, f"{path} is larger than {limit:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(field, f"{path} is not UTF-8 text") from None


def read_rubric(path: str) -> dict:
    try:
        rubric = loads_bounded(read_text("rubric", path, RUBRIC_FILE_MAX))
    except (TooDeep, ValueError) as exc:
        raise InvalidInput("rubric", f"{path} is not valid JSON ({exc})") from None
    if not isinstance(rubric, dict):
        raise InvalidInput("rubric", 'a JSON object such as {"criteria": [...], "score_min": 1, "score_max": 7}')
    unknown = sorted(set(rubric) - set(service.RUBRIC_FIELDS))
    if unknown:
        raise InvalidInput("rubric", f"unknown keys {', '.join(unknown)}; known: {', '.join(service.RUBRIC_FIELDS)}")
    return rubric


class Command(BaseCommand):
    help = "Create a project: its slug, name, and optionally a rubric, guidelines, or another project's settings."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--from-project", help="Copy this project's settings (slug, name or id).")
        parser.add_argument("--rubric", help="A JSON file: criteria, score_min, score_max, level_descriptions.")
        parser.add_argument("--guidelines", help="A Markdown file of guidelines for the reviewers.")
        parser.add_argument("--admin", help="A user name to make the project's admin.")

    def handle(self, *args, **opts):
        try:
            values: dict = {"description": opts["description"]}
            source = project_by_key(opts["from_project"]) if opts["from_project"] else None
            if opts["rubric"]:
                values.update(read_rubric(opts["rubric"]))
            if opts["guidelines"]:
                # Characters are bounded by the service; bytes here, before anything is read whole.
                values["guidelines"] = read_text("guidelines", opts["guidelines"], 4 * service.GUIDELINES_MAX)
            project = service.project_create(slug=opts["slug"], name=opts["name"], from_project=source, **values)
            if opts["admin"]:
                service.member_add(project=project, actor=None, username=opts["admin"], role=Role.ADMIN)
        except ServiceError as exc:  # "criteria: …": the field and the message
            raise CommandError(str(exc)) from None
        admins = ProjectMembership.objects.filter(project=project, role=Role.ADMIN).count()
        self.stdout.write(
            f"Project {project.slug} created: {', '.join(project.criteria)} on {project.score_min}-{project.score_max}"
            f"{f', from {source.slug}' if source else ''}; {admins} admin member(s)."
        )
        if not admins:
            self.stdout.write(
                f"Superusers and the admin group administer it; name its own admin with "
                f"manage.py project_member --project {project.slug} --user NAME --role admin."
            )
