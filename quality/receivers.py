"""The review path keeps the summary current: feedback never imports quality, so quality listens.

A saved revision rewrites its chain's row; an assignment saved with a new state flips whether its
rows count. Both run inside the saving transaction: the summary commits, or rolls back, with it.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from feedback.review.models import Assignment, Revision

from . import summary


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
    summary.assignment_saved(instance.pk, instance.sample_id, instance.state)
