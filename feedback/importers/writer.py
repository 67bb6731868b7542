"""Storing checked sample records, a chunk at a time.

A chunk is written in one transaction with a handful of bulk queries; should the database refuse
anything in it, the chunk is rolled back and written again record by record, each in its own
transaction, so a record is stored whole or reported, never half.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from ..images import ImageRefused, ImageSource, apply_file
from ..models import EXTERNAL_ID_MAX, FILE_NAME_MAX, Image, ImportBatch, ImportedFeedback, Project, Sample, Turn
from ..references.service import ReferenceRegistrar
from .records import FeedbackRecord, ImageRecord, RecordError, SampleRecord

# (field of Image, field of ImageRecord)
ANNOTATION_FIELDS = (("captions", "captions"), ("object_boxes", "objects"), ("regions", "regions"))


@dataclass
class Pending:
    line: int
    record: SampleRecord
    content_hash: str
    existing_id: int | None = None


Report = Callable[[int | None, str, str], None]


def _identity(item: Any) -> str:
    return json.dumps(item, sort_keys=True, separators=(",", ":"))


def merge_list(current: list, new: list) -> list:
    """Union in order: re-importing the same annotations changes nothing. Items are compared
    through a set (an image may carry tens of thousands of boxes)."""
    merged = list(current)
    seen = {_identity(item) for item in merged}
    for item in new:
        key = _identity(item)
        if key not in seen:
            seen.add(key)
            merged.append(item)
    return merged


def merge_image(image: Image, ref: ImageRecord) -> bool:
    changed = False
    for name, ref_name in ANNOTATION_FIELDS:
        merged = merge_list(getattr(image, name), getattr(ref, ref_name))
        if merged != getattr(image, name):
            setattr(image, name, merged)
            changed = True
    if ref.notes and ref.notes not in image.notes:
        image.notes = f"{image.notes}\n{ref.notes}".strip()
        changed = True
    if image.is_missing:
        for dim in ("width", "height"):
            value = getattr(ref, dim)
            if value and getattr(image, dim) != value:
                setattr(image, dim, value)
                changed = True
    return changed


class ImageResolver:
    """Finds or registers the project's images by file name, attaching files from the source once
    each; an image still without a file whose record names a reference (or that the import's
    images base names) has its reference registered for a worker to fetch."""

    def __init__(
        self,
        project: Project,
        source: ImageSource | None,
        batch: ImportBatch,
        warn: Report,
        references: ReferenceRegistrar | None = None,
    ) -> None:
        self.project = project
        self.source = source
        self.batch = batch
        self.warn = warn
        self.references = references
        self.tried: set[str] = set()

    def resolve(self, refs: list[tuple[int, ImageRecord]]) -> tuple[dict[str, Image], set[str], set[str]]:
        """The images by file name, the names registered now, and the names whose existing row changed.

        New images are inserted complete (annotations and file), so a first import writes each
        image row once.
        """
        names = {ref.file_name for _, ref in refs}
        images = {img.file_name: img for img in Image.objects.filter(project=self.project, file_name__in=names)}
        fresh = {name: Image(project=self.project, file_name=name) for name in names - images.keys()}
        changed: dict[str, Image] = {}
        for line, ref in refs:
            image = images.get(ref.file_name) or fresh[ref.file_name]
            touched = merge_image(image, ref)
            touched = (image.is_missing and self.attach(line, image)) or touched
            if touched and image.file_name in images:
                changed[image.file_name] = image
        if fresh:
            Image.objects.bulk_create(fresh.values(), ignore_conflicts=True)
            stored = {img.file_name: img for img in Image.objects.filter(project=self.project, file_name__in=fresh)}
            for name, row in stored.items():
                # Another import may have registered the name first: bring ours into its row.
                if self.absorb(row, fresh[name]):
                    changed[name] = row
            images.update(stored)
        self.save(list(changed.values()))
        self.register_references(refs, images)
        return images, set(fresh), set(changed)

    def register_references(self, refs: list[tuple[int, ImageRecord]], images: dict[str, Image]) -> None:
        if self.references is None:
            return
        items = []
        for line, ref in refs:
            image = images.get(ref.file_name)
            if image is not None and image.is_missing:
                items.append((line, image, ref.ref))
        self.references.register(items)

    @staticmethod
    def absorb(row: Image, ours: Image) -> bool:
        ref = ImageRecord(
            ours.file_name, ours.width, ours.height, ours.captions, ours.object_boxes, ours.regions, ours.notes
        )
        touched = merge_image(row, ref)
        if row.is_missing and not ours.is_missing:
            for name in ("file", "sha256", "format", "byte_size", "width", "height"):
                setattr(row, name, getattr(ours, name))
            touched = True
        return touched

    def attach_missing(self, refs: list[tuple[int, ImageRecord]]) -> None:
        """Attaches files to images still without one, leaving their annotations alone."""
        lines: dict[str, int] = {}
        for line, ref in refs:
            lines.setdefault(ref.file_name, line)
        missing = list(Image.objects.filter(project=self.project, file_name__in=list(lines), file=""))
        self.attach_files(missing, lines)
        self.register_references(refs, {image.file_name: image for image in missing})

    def attach_files(self, images, lines: dict[str, int] | None = None) -> None:
        """Attaches files to these images (rows without one), reporting refusals at their source line."""
        lines = lines or {}
        self.save([image for image in images if self.attach(lines.get(image.file_name, 0), image)])

    def save(self, images: list[Image]) -> None:
        if not images:
            return
        now = timezone.now()
        for image in images:
            image.updated_at = now
        Image.objects.bulk_update(
            images,
            [
                "captions",
                "object_boxes",
                "regions",
                "notes",
                "width",
                "height",
                "file",
                "sha256",
                "format",
                "byte_size",
                "updated_at",
            ],
        )

    def attach(self, line: int, image: Image) -> bool:
        if self.source is None or image.file_name in self.tried:
            return False
        self.tried.add(image.file_name)
        try:
            # A file past the size limits is refused before it is read whole.
            data = self.source.read(image.file_name)
            if data is None:
                return False
            apply_file(image, data)
        except ImageRefused as exc:
            self.warn(
                line, "image", f"image {image.file_name} refused: {exc}; the sample is kept, its image still missing"
            )
            return False
        self.batch.images_attached += 1
        return True


class SampleWriter:
    def __init__(self, project: Project, batch: ImportBatch, images: ImageResolver, reject: Report) -> None:
        self.project = project
        self.batch = batch
        self.images = images
        self.reject = reject
        # Ids found stored unchanged, with their line: their rows still name an earlier batch, so a
        # later use of the id in this file is told apart from an update only by this.
        self.unchanged_lines: dict[str, int] = {}

    def write_chunk(self, chunk: list[tuple[int, SampleRecord]]) -> None:
        pending, unchanged = self.classify(chunk)
        if unchanged and (self.images.source is not None or self.images.references is not None):
            # Files may arrive after their samples: importing the same file again with images attaches them.
            self.images.attach_missing([(p.line, p.record.image) for p in unchanged if p.record.image])
        if not pending:
            return
        attached, tried = self.batch.images_attached, set(self.images.tried)
        try:
            with transaction.atomic():
                self.store(pending)
        except DatabaseError:
            self.batch.images_attached, self.images.tried = attached, tried
            for item in pending:
                self.write_one(item)

    def write_one(self, item: Pending) -> None:
        try:
            with transaction.atomic():
                self.store([item])
        except DatabaseError as exc:
            self.reject(item.line, "", f"the database refused the record: {str(exc).splitlines()[0]}")

    def classify(self, chunk: list[tuple[int, SampleRecord]]) -> tuple[list[Pending], list[Pending]]:
        """Records to write, and those already stored unchanged (skipped).

        Rejects an id used twice in this file with different content.
        """
        first_seen: dict[str, Pending] = {}
        for line, record in chunk:
            item = Pending(line, record, record.content_hash())
            seen = first_seen.get(record.external_id)
            if seen is None:
                first_seen[record.external_id] = item
            elif seen.content_hash == item.content_hash:
                self.batch.skipped += 1
            else:
                self.reject(
                    line,
                    "id",
                    f"{record.external_id!r} was already used at line {seen.line} of this file, with different content",
                )
        existing = {
            row["external_id"]: row
            for row in Sample.objects.filter(project=self.project, external_id__in=list(first_seen)).values(
                "id", "external_id", "content_hash", "import_batch_id", "import_line"
            )
        }
        pending, unchanged = [], []
        for external_id, item in first_seen.items():
            row = existing.get(external_id)
            earlier_line = self.unchanged_lines.get(external_id)
            if earlier_line is None and row is not None and row["import_batch_id"] == self.batch.pk:
                earlier_line = row["import_line"]
            if row is None:
                pending.append(item)
            elif row["content_hash"] == item.content_hash:
                self.batch.skipped += 1
                if earlier_line is None:
                    self.unchanged_lines[external_id] = item.line
                    unchanged.append(item)
            elif earlier_line is not None:
                self.reject(
                    item.line,
                    "id",
                    f"{external_id!r} was already used at line {earlier_line} of this file, with different content",
                )
            else:
                item.existing_id = row["id"]
                pending.append(item)
        return pending, unchanged

    def store(self, pending: list[Pending]) -> None:
        created = updated = 0
        images, _, _ = self.images.resolve([(p.line, p.record.image) for p in pending if p.record.image])
        new_samples: list[Sample] = []
        new_items: list[Pending] = []
        for item in pending:
            rec = item.record
            fields = {
                "image": images[rec.image.file_name] if rec.image else None,
                "target_criterion": rec.target_criterion,
                "reference_answer": rec.reference_answer,
                "source_dataset": rec.source_dataset,
                "source_model": rec.source_model,
                "metadata": rec.metadata,
                "content_hash": item.content_hash,
                "import_batch": self.batch,
                "import_line": item.line,
            }
            if item.existing_id is None:
                new_samples.append(Sample(project=self.project, external_id=rec.external_id, **fields))
                new_items.append(item)
            else:
                Sample.objects.filter(pk=item.existing_id).update(**fields, updated_at=timezone.now())
                self.replace_turns(item.existing_id, rec)
                updated += 1
        if new_samples:
            Sample.objects.bulk_create(new_samples)
            turns: list[Turn] = []
            feedback: list[ImportedFeedback] = []
            for sample, item in zip(new_samples, new_items, strict=True):
                for i, t in enumerate(item.record.turns):
                    turn = Turn(sample=sample, index=i, user_message=t.user, model_response=t.model)
                    turns.append(turn)
                    feedback.extend(self.feedback(turn, fb) for fb in t.feedback)
            Turn.objects.bulk_create(turns)
            ImportedFeedback.objects.bulk_create(feedback)
            created += len(new_samples)
        self.batch.created += created
        self.batch.updated += updated

    def feedback(self, turn: Turn, fb: FeedbackRecord) -> ImportedFeedback:
        return ImportedFeedback(
            turn=turn,
            criterion=fb.criterion,
            score=fb.score,
            rating_raw=fb.rating_raw,
            critique=fb.critique,
            refinement=fb.refinement,
            source=f"{self.batch.format}:{self.batch.file_name}"[:200],
        )

    def replace_turns(self, sample_id: int, rec: SampleRecord) -> None:
        """Updates turn texts in place (turn ids survive) and replaces the imported feedback."""
        current = {t.index: t for t in Turn.objects.filter(sample_id=sample_id)}
        ImportedFeedback.objects.filter(turn__sample_id=sample_id).delete()
        Turn.objects.filter(sample_id=sample_id, index__gte=len(rec.turns)).delete()
        feedback: list[ImportedFeedback] = []
        for i, t in enumerate(rec.turns):
            turn = current.get(i)
            if turn is None:
                turn = Turn.objects.create(sample_id=sample_id, index=i, user_message=t.user, model_response=t.model)
            elif (turn.user_message, turn.model_response) != (t.user, t.model):
                turn.user_message, turn.model_response = t.user, t.model
                turn.save(update_fields=["user_message", "model_response"])
            feedback.extend(self.feedback(turn, fb) for fb in t.feedback)
        ImportedFeedback.objects.bulk_create(feedback)


def check_limits(record: SampleRecord) -> None:
    """Lengths the database would refuse, caught first so the message names the field."""
    if len(record.external_id) > EXTERNAL_ID_MAX:
        raise RecordError("id", f"longer than {EXTERNAL_ID_MAX} characters")
    if record.image and len(record.image.file_name) > FILE_NAME_MAX:
        raise RecordError("image", f"file name longer than {FILE_NAME_MAX} characters")
    if len(record.turns) > 1000:
        raise RecordError("turns", "more than 1000 turns")
