"""python manage.py prompt_version --project P list | show N | create [--from N] [--system-file F]
[--user-file F] [--note "…"] [--name NAME] | default N | preview [N] [--sample ID]

A project's prompt versions from the command line, through the same services as the pages and the
API. ``create`` takes the text of ``--from`` (default: the project's default version) for any file
not given; ``-`` reads standard input.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from feedback.drafting import versions
from feedback.errors import ServiceError
from feedback.prompts import selectors
from feedback.selectors import project_by_key

# A template file larger than this cannot hold a valid template (each text is bounded).
FILE_MAX_BYTES = 4 * versions.TEXT_MAX


def read_text(option: str, name: str) -> str:
    if name == "-":
        data = sys.stdin.buffer.read(FILE_MAX_BYTES + 1)
    else:
        path = Path(name)
        if not path.is_file():
            raise CommandError(f"{option}: no file {name}")
        with path.open("rb") as handle:
            data = handle.read(FILE_MAX_BYTES + 1)
    if len(data) > FILE_MAX_BYTES:
        raise CommandError(f"{option}: larger than {FILE_MAX_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{option}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


class Command(BaseCommand):
    help = "List, show, create, preview a project's prompt versions, and choose its default."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Every version, its drafts and which is the default.")
        show = actions.add_parser("show", help="One version's text.")
        show.add_argument("number", type=int)
        create = actions.add_parser("create", help="A new version from another one.")
        create.add_argument("--from", dest="from_number", type=int, help="Default: the project's default version.")
        create.add_argument("--system-file", help="The system text (- reads standard input).")
        create.add_argument("--user-file", help="The user text (- reads standard input).")
        create.add_argument("--note", default="")
        create.add_argument("--name", default="", help="Default: v and its number.")
        default = actions.add_parser("default", help="Make a version the project's default.")
        default.add_argument("number", type=int)
        preview = actions.add_parser("preview", help="The prompt a version renders for a sample (no LLM call).")
        preview.add_argument("number", type=int, nargs="?")
        preview.add_argument("--sample", help="A sample id; default: the first with a response.")

    def handle(self, *args, **opts):
        try:
            project = project_by_key(opts["project"])
            getattr(self, "_" + opts["action"])(project, opts)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None

    def _list(self, project, opts):
        for row in selectors.version_rows(project):
            v = row.version
            marks = " ".join(m for m, on in (("default", row.is_default), ("frozen", row.locked)) if on)
            self.stdout.write(
                f"{v.number:>4}  {v.name:<12} {row.drafts:>8} drafts  {v.sha256[:12]}  "
                f"{v.created_at:%Y-%m-%d %H:%M}  {v.author or '-'}  {marks}  {v.note[:60]}".rstrip()
            )

    def _show(self, project, opts):
        v = versions.version_get(project, opts["number"])
        self.stdout.write(f"# {v.name} (version {v.number}), sha256 {v.sha256}")
        if v.note:
            self.stdout.write(f"# {v.note}")
        self.stdout.write("## system\n" + v.system)
        self.stdout.write("## user\n" + v.user)

    def _create(self, project, opts):
        if opts["from_number"] is not None:
            base = versions.version_get(project, opts["from_number"], field="from")
        else:
            base = versions.default_version(project)
        system = read_text("--system-file", opts["system_file"]) if opts["system_file"] else base.system
        user = read_text("--user-file", opts["user_file"]) if opts["user_file"] else base.user
        version = versions.prompt_version_create(
            project=project, system=system, user=user, note=opts["note"], name=opts["name"] or None, based_on=base
        )
        self.stdout.write(f"{version.name} saved as version {version.number} (sha256 {version.sha256}).")

    def _default(self, project, opts):
        version = versions.version_get(project, opts["number"])
        versions.prompt_version_set_default(project=project, version=version)
        self.stdout.write(f"{version.name} is now the default prompt of {project.slug}.")

    def _preview(self, project, opts):
        if opts["number"] is not None:
            base = versions.version_get(project, opts["number"])
        else:
            base = versions.default_version(project)
        shown = selectors.preview(project=project, system=base.system, user=base.user, sample_id=opts["sample"])
        self.stdout.write(f"# {base.name} on sample {shown.sample.external_id}, turn {shown.turn.index}")
        self.stdout.write("## system\n" + shown.system)
        self.stdout.write("## user\n" + str(shown.user))
