"""python manage.py export_dataset --project P --format dress [--format rich] [filters] [--split 0.8,0.1,0.1]

Creates a release and builds it in this process (no worker needed), with a progress bar over the
project's samples, then prints the release folder and each file's rows and sha256.
"""

from __future__ import annotations

from typing import TextIO, cast

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exports.forms import names_in
from exports.models import Release
from exports.service import release_build, release_create, release_location
from exports.splits import SPLITS
from feedback.errors import InvalidInput, ServiceError
from feedback.selectors import project_by_key


def score_ranges_from(values: list[str]) -> dict[str, list[int]]:
    """``honesty=5:7`` → ``{"honesty": [5, 7]}``; the service checks criteria and order."""
    ranges = {}
    for value in values:
        criterion, _, bounds = value.partition("=")
        low, _, high = bounds.partition(":")
        try:
            ranges[criterion.strip()] = [int(low), int(high)]
        except ValueError:
            raise CommandError(f"score_ranges: {value!r} is not CRITERION=LOW:HIGH, e.g. honesty=5:7.") from None
    return ranges


def split_from(text: str | None, seed: str) -> dict:
    if not text:
        return {"seed": seed} if seed else {}
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > len(SPLITS):
        raise CommandError(f"split: at most {len(SPLITS)} fractions ({', '.join(SPLITS)}), not {text!r}.")
    try:
        fractions = [float(p) for p in parts]
    except ValueError:
        raise CommandError(f"split: fractions such as 0.8,0.1,0.1, not {text!r}.") from None
    return {**dict(zip(SPLITS, fractions, strict=False)), "seed": seed}


class Command(BaseCommand):
    help = "Create a dataset release of a project and build it here, with a progress bar; prints its files."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        parser.add_argument(
            "--format",
            action="append",
            default=[],
            dest="formats",
            help="A format name (dress, rich, ...); repeatable.",
        )
        parser.add_argument("--name", default="")
        parser.add_argument("--user", default="", help="User name recorded as the release's creator.")
        parser.add_argument("--decisions", default="", help="Final decisions released; default accepted,edited.")
        parser.add_argument(
            "--criteria", action="append", default=[], help="Criteria released (comma list); default all."
        )
        parser.add_argument(
            "--score-range", action="append", default=[], dest="score_ranges", help="CRITERION=LOW:HIGH; repeatable."
        )
        parser.add_argument(
            "--reviewer", action="append", default=[], dest="reviewers", help="A user name; repeatable."
        )
        parser.add_argument(
            "--from", dest="date_from", default="", help="Final revision on or after this day (YYYY-MM-DD)."
        )
        parser.add_argument(
            "--to", dest="date_to", default="", help="Final revision on or before this day (YYYY-MM-DD)."
        )
        parser.add_argument(
            "--prompt-version",
            action="append",
            default=[],
            dest="prompt_versions",
            help="Draft prompt version; repeatable.",
        )
        parser.add_argument("--no-imported", action="store_true", help="Leave out feedback that came with the data.")
        parser.add_argument("--no-simulated", action="store_true", help="Leave out feedback from simulated drafts.")
        parser.add_argument("--split", help="Train,validation,test fractions, e.g. 0.8,0.1,0.1; default all train.")
        parser.add_argument("--seed", default="", help="Seed of the hash that splits images.")
        parser.add_argument("--images", action="store_true", help="Copy the image files into the release.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        try:
            project = project_by_key(opts["project"])
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        user = None
        if opts["user"]:
            user = get_user_model().objects.filter(username=opts["user"]).first()
            if user is None:
                raise CommandError(f"user: no user {opts['user']!r}.")
        filters: dict = {
            "include_imported": not opts["no_imported"],
            "include_simulated": not opts["no_simulated"],
            "criteria": [c for value in opts["criteria"] for c in names_in(value)],
            "score_ranges": score_ranges_from(opts["score_ranges"]),
            "reviewers": [r for value in opts["reviewers"] for r in names_in(value)],
            "date_from": opts["date_from"],
            "date_to": opts["date_to"],
            "prompt_versions": [v for value in opts["prompt_versions"] for v in names_in(value)],
        }
        if opts["decisions"]:
            filters["decisions"] = names_in(opts["decisions"])
        try:
            release = release_create(
                project=project,
                user=user,
                formats=[f for value in opts["formats"] for f in names_in(value)],
                name=opts["name"],
                filters=filters,
                split=split_from(opts["split"], opts["seed"]),
                include_images=opts["images"],
                enqueue=False,
            )
        except ServiceError as exc:  # "filters.decisions: …", or the quota
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Release #{release.pk} {release.name!r} of {project.slug}: {', '.join(release.formats)}.")
        built = self.build(release, quiet=opts["no_progress"])
        if built.state != Release.State.COMPLETED:
            raise CommandError(f"release #{built.pk} failed: {built.error}")
        self.stdout.write(self.summary(built))

    def build(self, release: Release, *, quiet: bool) -> Release:
        bar = tqdm(
            total=0,
            unit="sample",
            desc=f"release {release.pk}",
            disable=quiet,
            file=cast(TextIO, self.stderr._out),  # the real stream: the bar redraws in place
        )

        def progress(current: Release) -> None:
            bar.total = current.samples_total
            bar.update(current.samples_done - bar.n)
            bar.set_postfix(released=current.samples_released, refresh=False)

        try:
            built = release_build(release_id=release.pk, progress=progress)
        finally:
            bar.close()
        assert built is not None, "a release just created is queued"
        return built

    def summary(self, release: Release) -> str:
        counts = release.manifest.get("counts", {})
        lines = [
            f"Release #{release.pk} completed: {release.samples_released} of {release.samples_total} samples, "
            f"{counts.get('turns', 0)} turns released.",
            f"Folder: {release_location(release)}",
        ]
        files = list(release.files.all())
        width = max((len(f.path) for f in files), default=0)
        for f in files:
            lines.append(f"  {f.path:<{width}}  {f.rows:>8} rows  {f.byte_size:>10} bytes  sha256 {f.sha256}")
        return "\n".join(lines)
