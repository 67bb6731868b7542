"""The review path keeps the summary current: feedback never imports quality, so quality listens.

A saved revision rewrites its chain's row; an assignment saved with a new state flips whether its
rows count. Both run inside the saving transaction: the summary commits, or rolls back, with it.

Deletions reach the rows by cascades (a turn, sample, reviewer or revision deleted) or set their
columns to null (a draft or an import deleted): the project's cube is then recomputed from its rows
when the deletion commits (``quality.cube``). A deleted draft or generation that no row names still
changes the figures of the model under study: a new figures version, on commit (the cached figures'
stamp sees additions by itself).
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from feedback.drafting.models import Draft, Generation
from feedback.models import ImportBatch, Turn
from feedback.review.models import Assignment, Revision

from . import cube, summary
from .models import ReviewedTurn


@receiver(post_save, sender=Revision, dispatch_uid="quality.revision_saved")
def on_revision_saved(sender: Any, instance: Revision, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or not created or instance.assignment.gold:  # a gold check is no review of its sample
        return
    summary.revision_saved(instance)


@receiver(post_save, sender=Assignment, dispatch_uid="quality.assignment_saved")
def on_assignment_saved(
    sender: Any, instance: Assignment, created: bool, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw or created or instance.gold or (update_fields is not None and "state" not in update_fields):
        return
    summary.assignment_saved(instance.pk, instance.sample_id, instance.state, instance.project_id)


@receiver(pre_delete, sender=ReviewedTurn, dispatch_uid="quality.row_deleted")
def on_row_deleted(sender: Any, instance: ReviewedTurn, using: str = "default", **kwargs: Any) -> None:
    cube.on_commit(instance.project_id, using)


@receiver(pre_delete, sender=Draft, dispatch_uid="quality.draft_deleted")
@receiver(pre_delete, sender=Generation, dispatch_uid="quality.generation_deleted")
def on_call_deleted(sender: Any, instance: Draft | Generation, using: str = "default", **kwargs: Any) -> None:
    """A deleted draft sets its reviewed rows' draft to null (the cube is recomputed); any deleted
    draft or generation changes the figures of the model under study (a new figures version)."""
    project_id = (
        Turn.objects.using(using).filter(pk=instance.turn_id).values_list("sample__project_id", flat=True).first()
    )
    if project_id is None:
        return
    reviewed = sender is Draft and ReviewedTurn.objects.using(using).filter(draft_id=instance.pk).exists()
    cube.on_commit(project_id, using, recompute_cube=reviewed)


@receiver(pre_delete, sender=ImportBatch, dispatch_uid="quality.import_deleted")
def on_import_deleted(sender: Any, instance: ImportBatch, using: str = "default", **kwargs: Any) -> None:
    reviewed = ReviewedTurn.objects.using(using).filter(import_batch_id=instance.pk).exists()
    cube.on_commit(instance.project_id, using, recompute_cube=reviewed)
