"""Samples for job tests, made in bulk, and the checks every job test makes on its outcome."""

from __future__ import annotations

from collections import Counter

from feedback.drafting.models import CallStatus, Draft
from feedback.jobs.models import Job, JobItem
from feedback.models import Image, Project, Sample, Turn


def make_samples(
    project: Project,
    count: int,
    *,
    criterion: str = "helpfulness",
    turns: int = 1,
    awaiting: bool = False,
    prefix: str = "s",
) -> list[Sample]:
    """``count`` samples of ``turns`` answered turns each (the last one awaiting a response when
    ``awaiting``), about one annotated image."""
    image, _ = Image.objects.get_or_create(
        project=project,
        file_name="street.jpg",
        defaults={
            "width": 640,
            "height": 480,
            "captions": ["A red bus drives down a city street."],
            "object_boxes": [
                {"label": "bus", "bbox": [40, 60, 300, 200]},
                {"label": "person", "bbox": [400, 90, 60, 180]},
            ],
            "regions": [{"description": "a shop window with posters", "bbox": [500, 40, 120, 160]}],
        },
    )
    samples = Sample.objects.bulk_create(
        [
            Sample(
                project=project,
                external_id=f"{prefix}{i}",
                image=image,
                target_criterion=criterion,
                reference_answer="A red double-decker bus drives past a shop.",
                content_hash=f"{prefix}{i}",
            )
            for i in range(count)
        ]
    )
    rows = []
    for sample in samples:
        for index in range(turns):
            last = index == turns - 1
            rows.append(
                Turn(
                    sample=sample,
                    index=index,
                    user_message="What vehicle is in the picture?" if index == 0 else "Say more about its colour.",
                    model_response=None if (awaiting and last) else f"A bus, answer {index} of {sample.external_id}.",
                )
            )
    Turn.objects.bulk_create(rows)
    return samples


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
