"""python manage.py import_samples --project P --format F FILE [--images DIR|ZIP]

With --format images, FILE is a folder or zip of image files for images already registered.
"""

from pathlib import Path
from typing import TextIO, cast

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from feedback.errors import InvalidInput, ServiceError
from feedback.importers.service import FORMAT_LABELS, IMAGES_FORMAT, import_file
from feedback.models import ImportBatch
from feedback.references.service import batch_references
from feedback.selectors import project_by_key


class Command(BaseCommand):
    help = "Import samples (or COCO annotations) from a file into a project, with a progress bar and a summary."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        parser.add_argument("--format", required=True, choices=sorted(FORMAT_LABELS))
        parser.add_argument("--images", help="Folder or zip of image files, matched by file name.")
        parser.add_argument(
            "--images-base",
            default="",
            help="Fetch images by reference: s3://bucket/folder/, https://host/folder/ (an allowed host) or a "
            "folder under ANNOTATOR_IMAGE_REF_ROOT; each image's file name is appended. Workers fetch them.",
        )
        parser.add_argument("--criterion", default="", help="The file's criterion (DRESS files hold one each).")
        parser.add_argument("--source-dataset", default="")
        parser.add_argument("--source-model", default="", help="The LVLM whose responses the file holds.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        path: Path = opts["file"]
        if opts["format"] == IMAGES_FORMAT:
            if not path.exists():
                raise CommandError(f"{path} is neither a folder nor a zip of images")
        elif not path.is_file():
            raise CommandError(f"{path} is not a file")
        try:
            project = project_by_key(opts["project"])
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(
            total=path.stat().st_size if path.is_file() else 0,
            unit="B",
            unit_scale=True,
            desc=path.name,
            disable=opts["no_progress"],
            file=cast(TextIO, self.stderr._out),  # the real stream: the bar redraws in place
        )

        def progress(batch: ImportBatch) -> None:
            bar.update(batch.bytes_done - bar.n)
            bar.set_postfix(read=batch.records_read, rejected=batch.rejected, refresh=False)

        try:
            batch = import_file(
                project=project,
                format=opts["format"],
                path=path,
                images=opts["images"],
                criterion=opts["criterion"],
                source_dataset=opts["source_dataset"],
                source_model=opts["source_model"],
                images_base=opts["images_base"],
                on_progress=progress,
            )
        except ServiceError as exc:  # "format: …", "criterion: …": the option at fault
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(summary(batch))
        if batch.status == ImportBatch.Status.FAILED:
            raise CommandError(f"import failed: {batch.failure}")


def summary(batch: ImportBatch) -> str:
    lines = [
        f"Import #{batch.pk} of {batch.file_name} ({batch.format}) into {batch.project}: {batch.status}",
        f"  records read:        {batch.records_read}",
        f"  created:             {batch.created}",
        f"  updated:             {batch.updated}",
        f"  skipped (unchanged): {batch.skipped}",
        f"  rejected:            {batch.rejected}",
        f"  images attached:     {batch.images_attached}",
    ]
    references = batch_references(batch)
    if references.total:
        lines.append(
            f"  image references:    {references.total} registered ({references.fetched} fetched, "
            f"{references.failed} failed, {references.pending} pending: workers fetch them)"
        )
    for error in batch.errors:
        where = f"line {error['line']}" if error.get("line") else "record"
        field = f" {error['field']}:" if error.get("field") else ""
        lines.append(f"  rejected {where}:{field} {error['message']}")
    if batch.rejected > len(batch.errors):
        lines.append(f"  ... and {batch.rejected - len(batch.errors)} more rejected records")
    for warning in batch.warnings:
        where = f"line {warning['line']}: " if warning.get("line") else ""
        lines.append(f"  warning: {where}{warning['message']}")
    return "\n".join(lines)
