"""Shared setup for the tests of human review: drafted samples, reviewers, and checks on the queue."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from feedback.drafting.models import CallStatus
from feedback.models import Project, Role, Sample, Turn
from feedback.review.claims import sample_claim
from feedback.review.models import Assignment, Decision, QueueItem
from feedback.review.revisions import SaveResult, revision_create
from tests.conftest import make_user
from tests.factories import SCORES, DraftFactory, SampleFactory


def make_drafted_samples(
    project: Project,
    count: int,
    *,
    turns: int = 1,
    drafted: bool = True,
    overall: int = 5,
    criterion: str = "helpfulness",
    awaiting: bool = False,
    prefix: str = "s",
) -> list[Sample]:
    """``count`` samples (in import order, named ``<prefix>0``...) of ``turns`` answered turns (the
    last one awaiting its response when ``awaiting``), each answered turn with a successful draft
    when ``drafted``."""
    samples = SampleFactory.create_numbered(
        count, project=project, prefix=prefix, target_criterion=criterion, turns=turns, turns__awaiting_last=awaiting
    )
    if drafted:
        for turn in Turn.objects.filter(sample__in=samples, model_response__isnull=False):
            DraftFactory.create(turn=turn, overall=overall)
    return samples


def configure(project: Project, **settings) -> Project:
    """Changes the project's settings, validated as the settings form would."""
    for name, value in settings.items():
        setattr(project, name, value)
    project.full_clean()
    project.save()
    return project


def make_reviewers(project: Project, *names: str, role: str = Role.ANNOTATOR):
    """Members of ``project`` with ``role``, one per name."""
    return [make_user(name, project=project, role=role) for name in names]


def claim_one(project: Project, reviewer: User) -> Assignment:
    """A claim the test expects to give a sample."""
    assignment = sample_claim(project=project, reviewer=reviewer)
    assert assignment is not None, f"{reviewer} got no sample"
    return assignment


def answered_turns(assignment: Assignment) -> list[Turn]:
    return list(Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False).order_by("index"))


def decide_all(assignment: Assignment, user: User | None = None) -> list[SaveResult]:
    """Decides every answered turn of the assignment's sample, as its reviewer by default: accepts
    the draft where there is one, else saves feedback of one's own."""
    results = []
    for turn in answered_turns(assignment):
        drafted = turn.drafts.exclude(status=CallStatus.FAILED).exists()
        own: dict[str, Any] = {} if drafted else {"critique": "Names the bus, not its colour.", "scores": SCORES}
        results.append(
            revision_create(
                assignment=assignment,
                turn=turn,
                author=user or assignment.reviewer,
                base_version=0,
                decision=Decision.ACCEPTED if drafted else Decision.EDITED,
                **own,
            )
        )
    return results


def expire(assignment: Assignment) -> None:
    """Lets the lease run out as if the reviewer had gone away."""
    Assignment.objects.filter(pk=assignment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def item_of(sample_id: int) -> QueueItem:
    return QueueItem.objects.get(sample_id=sample_id)


def assert_holding_consistent(project: Project) -> None:
    """Each queue item's ``holding`` equals its sample's leased and submitted assignments, and no
    place (lane) nor reviewer holds a sample twice."""
    holding = Assignment.objects.filter(project=project, state__in=Assignment.HOLDING)
    held = Counter(holding.values_list("sample_id", flat=True))
    counted = dict(QueueItem.objects.filter(project=project).values_list("sample_id", "holding"))
    assert counted == {sample_id: held[sample_id] for sample_id in counted}
    lanes = Counter(holding.values_list("sample_id", "lane"))
    assert not [key for key, n in lanes.items() if n > 1], "a lane is held twice"
    reviewers = Counter(holding.values_list("sample_id", "reviewer_id"))
    assert not [key for key, n in reviewers.items() if n > 1], "a reviewer holds a sample twice"


def submitted_per_sample(project: Project) -> Counter:
    return Counter(
        Assignment.objects.filter(project=project, state=Assignment.State.SUBMITTED).values_list("sample_id", flat=True)
    )
