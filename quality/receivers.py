"""The review path keeps the summary current: feedback never imports quality, so quality listens.

A saved revision rewrites its chain's row; an assignment saved with a new state flips whether its
rows count. Both run inside the saving transaction: the summary commits, or rolls back, with it.

Deletions reach the rows by cascades (a turn, sample, reviewer or revision deleted) or set their
columns to null (a draft or an import deleted): the project's cube is then recomputed from its rows
when the deletion commits (``quality.cube``).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from feedback.drafting.models import Draft
from feedback.models import ImportBatch
from feedback.review.models import Assignment, Revision

from . import cube, summary
from .models import ReviewedTurn


@receiver(post_save, sender=Revision, dispatch_uid="quality.revision_saved")
def on_revision_saved(sender: Any, instance: Revision, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or not created:
        return
    summary.revision_saved(instance)


@receiver(post_save, sender=Assignment, dispatch_uid="quality.assignment_saved")
def on_assignment_saved(
    sender: Any, instance: Assignment, created: bool, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw or created or (update_fields is not None and "state" not in update_fields):
        return
    summary.assignment_saved(instance.pk, instance.sample_id, instance.state, instance.project_id)


@receiver(pre_delete, sender=ReviewedTurn, dispatch_uid="quality.row_deleted")
def on_row_deleted(sender: Any, instance: ReviewedTurn, using: str = "default", **kwargs: Any) -> None:
    cube.recompute_on_commit(instance.project_id, using)


@receiver(pre_delete, sender=Draft, dispatch_uid="quality.draft_deleted")
def on_draft_deleted(sender: Any, instance: Draft, using: str = "default", **kwargs: Any) -> None:
    for project_id in (
        ReviewedTurn.objects.using(using).filter(draft_id=instance.pk).values_list("project_id", flat=True).distinct()
    ):
        cube.recompute_on_commit(project_id, using)


@receiver(pre_delete, sender=ImportBatch, dispatch_uid="quality.import_deleted")
def on_import_deleted(sender: Any, instance: ImportBatch, using: str = "default", **kwargs: Any) -> None:
    if ReviewedTurn.objects.using(using).filter(import_batch_id=instance.pk).exists():
        cube.recompute_on_commit(instance.project_id, using)
