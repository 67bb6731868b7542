"""Reviewed projects for the tests of the quality figures, made through the real review path:
samples and drafts from the factories, claims from the queue, revisions saved by
``revision_create`` (the last turn's save submits the review), so the summary read is the one the
review path kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feedback.models import Project, Role, Sample, Turn
from feedback.review.claims import sample_claim
from feedback.review.models import Assignment, Decision
from feedback.review.revisions import revision_create
from tests.conftest import make_user
from tests.factories import DraftFactory, SampleFactory

CRITERIA = ["helpfulness", "honesty", "harmlessness"]


@dataclass
class TurnPlan:
    """What the draft of one turn says and what a reviewer makes of it.

    ``draft``: the draft's scores (None: the turn has no draft); ``decision``: accepted / edited /
    rejected; ``final``: the reviewer's scores for an edit (or a rejection that gives some);
    ``critique``: the edited critique (default: the draft's with one word changed)."""

    draft: dict[str, Any] | None
    decision: str = Decision.ACCEPTED
    final: dict[str, Any] | None = None
    critique: str | None = None
    refinement: str | None = None
    time_ms: int = 0


@dataclass
class Review:
    reviewer: Any
    turns: list[TurnPlan]
    submit: bool = True


@dataclass
class SamplePlan:
    reviews: list[Review]
    prompt_version: str = "v1"
    draft_model: str = "drafter-a"
    source_model: str = "lvlm-a"
    draft_critique: str = "The answer names the bus but not its colour ."
    draft_refinement: str = "Mention that the bus is red ."
    import_batch: Any = None
    extra: dict = field(default_factory=dict)


def reviewers(project: Project, *names: str):
    return [make_user(name, project=project, role=Role.ANNOTATOR) for name in names]


def build(project: Project, plans: list[SamplePlan], *, prefix: str = "q") -> list[Sample]:
    """The samples of ``plans`` (in order), drafted and reviewed as planned. Every review of a plan
    claims its sample from the queue: plans are claimed in order, so each reviewer's reviews must
    follow the import order of the samples (as the queue hands them out)."""
    samples = []
    turns_of: dict[int, list[Turn]] = {}
    for number, plan in enumerate(plans):
        turn_count = max(len(r.turns) for r in plan.reviews) if plan.reviews else 1
        sample = SampleFactory.create(
            project=project,
            external_id=f"{prefix}{number}",
            turns=turn_count,
            source_model=plan.source_model,
            import_batch=plan.import_batch,
        )
        turns = list(sample.turns.order_by("index"))
        template = plan.reviews[0].turns if plan.reviews else []
        for turn, spec in zip(turns, template, strict=False):
            if spec.draft is not None:
                DraftFactory.create(
                    turn=turn,
                    scores=dict(spec.draft),
                    model=plan.draft_model,
                    prompt_version=plan.prompt_version,
                    critique=plan.draft_critique,
                    refinement=plan.draft_refinement,
                )
        samples.append(sample)
        turns_of[sample.pk] = turns
    for sample, plan in zip(samples, plans, strict=True):
        for review in plan.reviews:
            assignment = sample_claim(project=project, reviewer=review.reviewer)
            assert assignment is not None and assignment.sample_id == sample.pk, "the queue handed out another sample"
            review_turns(assignment, turns_of[sample.pk], review, plan)
    return samples


def review_turns(assignment: Assignment, turns: list[Turn], review: Review, plan: SamplePlan) -> None:
    specs = list(zip(turns, review.turns, strict=False))
    if not review.submit:
        specs = specs[:-1]  # the last turn left undecided: the review stays leased
    for turn, spec in specs:
        fields: dict[str, Any] = {}
        if spec.decision == Decision.EDITED:
            fields = {
                "critique": spec.critique if spec.critique is not None else plan.draft_critique.replace("bus", "coach"),
                "refinement": spec.refinement if spec.refinement is not None else plan.draft_refinement,
                "scores": spec.final,
            }
        elif spec.decision == Decision.REJECTED:
            fields = {"reason": "Wrong about the picture.", "critique": spec.critique or "", "scores": spec.final}
        revision_create(
            assignment=assignment,
            turn=turn,
            author=review.reviewer,
            base_version=0,
            decision=spec.decision,
            time_spent_ms=spec.time_ms,
            **fields,
        )
