"""What a trial shows: each variant's spending, speed and failures, the human finals of its turns
(the gold), and the variants' drafts of one sample side by side with their word diffs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum

from feedback.drafting.models import CallStatus
from feedback.drafting.service import CallSettings
from feedback.models import Project, Sample, Turn
from feedback.review.diff import Segments, word_diff
from feedback.review.models import Adjudication, Assignment, Decision, Revision

from .models import Trial, TrialDraft, TrialVariant


def trials_of(project: Project) -> list[Trial]:
    return list(Trial.objects.filter(project=project).prefetch_related("variants")[:200])


def describe(variant: TrialVariant) -> dict[str, Any]:
    """What a variant is, for people: its prompt version, connection, model, temperature and image."""
    cs = CallSettings.from_dict(variant.llm_settings)
    return {
        "label": variant.label,
        "prompt_version": cs.prompt_version,
        "connection": cs.connection or cs.base_url,
        "model": cs.model,
        "temperature": cs.temperature,
        "send_image": cs.send_image,
    }


def percentile(values: list[int], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class VariantFigures:
    variant: TrialVariant
    settings: dict[str, Any]
    total: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    repaired: int = 0
    reasked: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = field(default_factory=Decimal)
    latency_p50: float | None = None
    latency_p95: float | None = None

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def open(self) -> int:
        return self.total - self.finished - self.cancelled


def variant_figures(trial: Trial) -> list[VariantFigures]:
    """Per variant: drafts done and failed, repaired (an answer fixed by the parser) and re-asked,
    tokens, cost, and the latency of its answered drafts (p50, p95). Two queries."""
    variants = list(trial.variants.all())
    counts = {
        row["variant_id"]: row
        for row in TrialDraft.objects.filter(variant__trial=trial)
        .values("variant_id")
        .annotate(
            total=Count("id"),
            done=Count("id", filter=Q(state=TrialDraft.State.DONE)),
            failed=Count("id", filter=Q(state=TrialDraft.State.FAILED)),
            cancelled=Count("id", filter=Q(state=TrialDraft.State.CANCELLED)),
            repaired=Count("id", filter=Q(status=CallStatus.REPAIRED)),
            reasked=Count("id", filter=Q(status=CallStatus.REASKED)),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            cost=Sum("cost"),
        )
    }
    latencies: dict[int, list[int]] = {v.pk: [] for v in variants}
    for variant_id, latency in TrialDraft.objects.filter(
        variant__trial=trial, state=TrialDraft.State.DONE, calls__gt=0
    ).values_list("variant_id", "latency_ms"):
        latencies[variant_id].append(latency)
    out = []
    for variant in variants:
        row = counts.get(variant.pk, {})
        out.append(
            VariantFigures(
                variant=variant,
                settings=describe(variant),
                total=row.get("total", 0),
                done=row.get("done", 0),
                failed=row.get("failed", 0),
                cancelled=row.get("cancelled", 0),
                repaired=row.get("repaired", 0),
                reasked=row.get("reasked", 0),
                tokens_in=row.get("tokens_in") or 0,
                tokens_out=row.get("tokens_out") or 0,
                cost=row.get("cost") or Decimal(0),
                latency_p50=percentile(latencies[variant.pk], 50),
                latency_p95=percentile(latencies[variant.pk], 95),
            )
        )
    return out


@dataclass(frozen=True)
class Final:
    """A turn's human final: the adjudicated version, else the latest revision of a submitted review
    that did not reject the draft."""

    critique: str
    refinement: str
    scores: dict[str, Any]


def human_finals(turn_ids: list[int]) -> dict[int, Final]:
    """The human finals of those turns that have one (rejections are not gold: they say what is
    wrong, not what is right)."""
    finals: dict[int, Final] = {}
    revisions = (
        Revision.objects.filter(turn_id__in=turn_ids, assignment__state=Assignment.State.SUBMITTED)
        .exclude(decision=Decision.REJECTED)
        .order_by("turn_id", "created_at", "id")
        .values_list("turn_id", "critique", "refinement", "scores")
    )
    for turn_id, critique, refinement, scores in revisions:
        finals[turn_id] = Final(critique, refinement, scores or {})  # the latest wins
    adjudicated = Adjudication.objects.filter(turn_id__in=turn_ids).values_list(
        "turn_id", "decision", "critique", "refinement", "scores"
    )
    for turn_id, decision, critique, refinement, scores in adjudicated:
        if decision == Decision.REJECTED:
            finals.pop(turn_id, None)
        else:
            finals[turn_id] = Final(critique, refinement, scores or {})
    return finals


def trial_turn_ids(trial: Trial) -> list[int]:
    return list(
        TrialDraft.objects.filter(variant__trial=trial).order_by("turn_id").values_list("turn_id", flat=True).distinct()
    )


def scored_pairs(trial: Trial) -> dict[int, list[tuple[TrialDraft, Final]]]:
    """Per variant id: its answered drafts paired with their turn's human final (turns with one)."""
    finals = human_finals(trial_turn_ids(trial))
    pairs: dict[int, list[tuple[TrialDraft, Final]]] = {v.pk: [] for v in trial.variants.all()}
    drafts = TrialDraft.objects.filter(
        variant__trial=trial, state=TrialDraft.State.DONE, turn_id__in=list(finals)
    ).only("variant_id", "turn_id", "critique", "refinement", "scores")
    for draft in drafts:
        pairs[draft.variant_id].append((draft, finals[draft.turn_id]))
    return pairs


def trial_samples(trial: Trial) -> list[Sample]:
    return list(Sample.objects.filter(pk__in=trial.sample_ids).order_by("pk"))


@dataclass
class SideBySide:
    """One turn: its human final (if any) and each variant's draft, each with its word diff against
    the final, else against the first variant's draft."""

    turn: Turn
    final: Final | None
    against: str
    columns: list[dict[str, Any]]


def side_by_side(trial: Trial, sample: Sample) -> list[SideBySide]:
    variants = list(trial.variants.all())
    turns = list(Turn.objects.filter(sample=sample, pk__in=trial_turn_ids(trial)).order_by("index"))
    finals = human_finals([t.pk for t in turns])
    drafts = {(d.variant_id, d.turn_id): d for d in TrialDraft.objects.filter(variant__in=variants, turn__in=turns)}
    out = []
    for turn in turns:
        final = finals.get(turn.pk)
        first = drafts.get((variants[0].pk, turn.pk))
        base_critique = final.critique if final else (first.critique if first else "")
        base_refinement = final.refinement if final else (first.refinement if first else "")
        columns = []
        for variant in variants:
            draft = drafts.get((variant.pk, turn.pk))
            critique_diff: Segments = word_diff(base_critique, draft.critique) if draft else []
            refinement_diff: Segments = word_diff(base_refinement, draft.refinement) if draft else []
            columns.append(
                {
                    "label": variant.label,
                    "draft": draft,
                    "critique_diff": critique_diff,
                    "refinement_diff": refinement_diff,
                }
            )
        against = "the human final" if final else f"variant {variants[0].label}"
        out.append(SideBySide(turn, final, against, columns))
    return out
