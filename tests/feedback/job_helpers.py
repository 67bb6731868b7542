"""The checks every job test makes on its outcome."""

from __future__ import annotations

from collections import Counter

from feedback.drafting.models import CallStatus, Draft
from feedback.jobs.models import Job, JobItem
from feedback.models import Project, Sample
from tests.factories import SampleFactory


def make_samples(
    project: Project,
    count: int,
    *,
    criterion: str = "helpfulness",
    turns: int = 1,
    awaiting: bool = False,
    prefix: str = "s",
) -> list[Sample]:
    """``SampleFactory.create_numbered`` under its former name, for callers not yet moved to it
    (the quality tests' seed)."""
    return SampleFactory.create_numbered(
        count, project=project, prefix=prefix, target_criterion=criterion, turns=turns, turns__awaiting_last=awaiting
    )


def successful_drafts_per_turn(job: Job) -> Counter:
    return Counter(Draft.objects.filter(job=job).exclude(status=CallStatus.FAILED).values_list("turn_id", flat=True))


def assert_each_item_settled_once(job: Job) -> None:
    """Every item done (one successful draft for its turn) or failed (a reason, and no success)."""
    per_turn = successful_drafts_per_turn(job)
    duplicates = {turn: n for turn, n in per_turn.items() if n > 1}
    assert not duplicates, f"turns drafted more than once: {duplicates}"
    for item in JobItem.objects.filter(job=job):
        if item.state == JobItem.State.DONE:
            assert per_turn[item.turn_id] == 1, f"item {item.pk} is done without its draft"
        else:
            assert item.state == JobItem.State.FAILED, f"item {item.pk} ended {item.state}"
            assert item.error, f"failed item {item.pk} does not say why"
            assert per_turn[item.turn_id] == 0
            assert Draft.objects.filter(job=job, turn_id=item.turn_id, status=CallStatus.FAILED).exclude(error="")
