"""A reviewed project for the Quality page's browser test and its screenshot, made through the real
review path (claims, revisions, submits), so the summary kept by the review path is the one read.

Made up but shaped like a real run: two imports of answers by two responder models, two rounds per
sample (the second answers the first round's refinement), drafts by two drafting models under two
prompt versions (v2 closer to the reviewers than v1), three reviewers, every sample reviewed once and a
quarter of them twice, reviews spread over four weeks."""

from __future__ import annotations

import io
import random
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from feedback.drafting.models import CallStatus, Draft
from feedback.models import ImportBatch, Project, ReviewOrder, Role, Sample, Turn
from feedback.review.claims import sample_claim
from feedback.review.models import Decision, Revision
from feedback.review.revisions import revision_create
from tests.conftest import make_user
from tests.feedback.job_helpers import make_samples

RESPONDERS = {"lvlm-small": 3.6, "lvlm-large": 4.6}  # the responder models and their mean true score
IMPROVES = {"lvlm-small": 0.3, "lvlm-large": 0.9}  # how much a refinement helps each, on average
DRAFTERS = ("annotator-simulator", "drafter-large")
REVIEWERS = ("ann", "bea", "cem")
WEEKS = 4

CRITIQUE = (
    "The answer names the bus and the street but not the colour of the bus, and it says there are two people "
    "where the image shows one; it is polite and safe."
)
REFINEMENT = "Say that the bus is red and that one person waits at the stop."
EDITS = (
    ("two people", "a crowd"),
    ("polite and safe", "safe but too short"),
    ("the street", "the shop window"),
)


def clamp(value: float, low: int = 1, high: int = 7) -> int:
    return max(low, min(high, round(value)))


def seed_reviewed_project(*, slug: str = "quality", samples: int = 48, seed: int = 0) -> tuple[Project, dict[str, str]]:
    """The project, and the passwords of its users by role or reviewer name (``admin``,
    ``researcher``, ``ann``...). Another slug than the default one names its users after it too
    (``admin.<slug>``), so that two seeded projects can live side by side."""
    rng = random.Random(seed)
    suffix = "" if slug == "quality" else f".{slug}"
    project = Project.objects.create(
        name=f"Street scenes{suffix}", slug=slug, review_order=ReviewOrder.RANDOM, review_seed=seed
    )
    logins = {}
    for name, role in [("admin", Role.ADMIN), ("researcher", Role.RESEARCHER)]:
        make_user(name + suffix, project=project, role=role)
        logins[name] = f"pw-{name}{suffix}"
    reviewers = [make_user(name + suffix, project=project, role=Role.ANNOTATOR) for name in REVIEWERS]
    logins.update({name: f"pw-{name}{suffix}" for name in REVIEWERS})

    criteria = list(project.criteria)
    made: list[Sample] = []
    for number, responder in enumerate(RESPONDERS, start=1):
        batch = ImportBatch.objects.create(
            project=project, format="dress", file_name=f"{responder}_nlf.jsonl", status="completed"
        )
        part = make_samples(project, samples // 2, turns=2, prefix=f"{responder}-", criterion=criteria[number - 1])
        Sample.objects.filter(pk__in=[s.pk for s in part]).update(import_batch=batch, source_model=responder)
        made += part

    truth: dict[tuple[int, str], int] = {}  # (turn id, criterion) -> the score a careful reviewer gives
    week_of: dict[int, int] = {}
    turns = Turn.objects.filter(sample__in=made).select_related("sample").order_by("sample_id", "index")
    for turn in turns:
        responder = turn.sample.source_model
        week = week_of.setdefault(turn.sample_id, rng.randrange(WEEKS))
        version = "v1" if week < 2 else "v2"
        bias, noise = (0.9, 1.1) if version == "v1" else (0.3, 0.6)
        drafter = DRAFTERS[turn.sample_id % 2]
        scores = {}
        for criterion in criteria:
            true = clamp(rng.gauss(RESPONDERS[responder] + turn.index * IMPROVES[responder], 1.0))
            truth[turn.pk, criterion] = true
            scores[criterion] = clamp(true + rng.gauss(bias, noise))
        Draft.objects.create(
            turn=turn,
            status=CallStatus.OK,
            model=drafter,
            endpoint="http://127.0.0.1:8001/v1",
            critique=CRITIQUE,
            refinement=REFINEMENT,
            scores=scores,
            overall=round(sum(scores.values()) / len(scores)),
            prompt_version=version,
            prompt_hash=("1" if version == "v1" else "2") * 64,
            simulated=drafter == "annotator-simulator",
        )

    # Everyone reviews in turn (in the queue's random order) until every sample has one review;
    # then the project asks for two, and a quarter of the samples get their second.
    claims = 0
    for target in (len(made), len(made) // 4):
        for _ in range(target):
            reviewer = reviewers[claims % len(reviewers)]
            assignment = sample_claim(project=project, reviewer=reviewer)
            if assignment is None:
                break
            for turn in Turn.objects.filter(sample_id=assignment.sample_id).order_by("index"):
                review_turn(rng, assignment, turn, reviewer, truth)
            claims += 1
        project.reviews_required = 2
        project.save(update_fields=["reviews_required"])

    # Reviews spread over the weeks the drafts were made in (the review path stamps them now).
    now = timezone.now()
    for sample_id, week in week_of.items():
        when = now - timedelta(days=7 * (WEEKS - 1 - week) + rng.randrange(5), minutes=rng.randrange(600))
        Revision.objects.filter(turn__sample_id=sample_id).update(created_at=when)
    call_command("quality_rebuild", project=project.slug, stdout=io.StringIO())
    return project, logins


def close(finals: dict[str, int], drafted: dict[str, int]) -> bool:
    return all(abs(finals[c] - drafted[c]) <= 1 for c in finals)


def review_turn(rng: random.Random, assignment, turn: Turn, reviewer, truth) -> None:
    draft = turn.drafts.get()
    finals = {c: clamp(truth[turn.pk, c] + rng.choice((0, 0, 0, 0, 1, -1))) for c in draft.scores}
    seconds = rng.randint(25, 240) * 1000
    common = {"assignment": assignment, "turn": turn, "author": reviewer, "base_version": 0, "time_spent_ms": seconds}
    if rng.random() < 0.08:
        revision_create(decision=Decision.REJECTED, reason="The critique describes another image.", **common)
    elif finals == draft.scores or (close(finals, draft.scores) and rng.random() < 0.6):
        revision_create(decision=Decision.ACCEPTED, **common)  # a draft off by one here and there passes
    else:
        critique = draft.critique
        for old, new in rng.sample(EDITS, rng.randint(0, len(EDITS))):
            critique = critique.replace(old, new)
        refinement = draft.refinement if rng.random() < 0.6 else "Name the colour of the bus and count the people."
        revision_create(decision=Decision.EDITED, critique=critique, refinement=refinement, scores=finals, **common)
