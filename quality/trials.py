"""A trial's figures: each variant's spending, speed and failures (feedback.trials.selectors) and,
against the human finals of the reviewed turns in its set, the agreement figures the Quality page
gives the project's drafts (``quality.stats``: kappa, within ±1, word edit distance of critique and
refinement). Here because the figures live in this app, which sits above feedback."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from feedback.trials import selectors
from feedback.trials.models import Trial

from . import stats

# Bootstrap resamples of a trial's kappa interval: a trial holds at most a few thousand pairs.
RESAMPLES = 500


def _agreement(pairs: list[tuple[int, int]], labels: list[int]) -> dict[str, stats.Fig]:
    table = np.zeros((len(labels), len(labels)), dtype=np.int64)
    position = {label: i for i, label in enumerate(labels)}
    for draft, final in pairs:
        if draft in position and final in position:
            table[position[draft], position[final]] += 1
    figures = stats.agreement(table, labels, seed=0, resamples=RESAMPLES)
    return {"kappa": figures["kappa"], "within_1": figures["within_1"], "exact": figures["exact"]}


def _dollars(amount: Decimal) -> str:
    """US dollars to the cent's millionth (what a row keeps), without trailing zeros."""
    return f"{amount:.8f}".rstrip("0").rstrip(".") or "0"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def trial_figures(trial: Trial) -> dict[str, Any]:
    """JSON-ready figures of every variant of the trial."""
    project = trial.project
    criteria = list(project.criteria)
    labels = list(range(project.score_min, project.score_max + 1))
    pairs = selectors.scored_pairs(trial)
    out = []
    for fig in selectors.variant_figures(trial):
        scored = pairs[fig.variant.pk]
        by_criterion: dict[str, list[tuple[int, int]]] = {c: [] for c in criteria}
        critique: list[float] = []
        refinement: list[float] = []
        for draft, final in scored:
            for criterion in criteria:
                a, b = (draft.scores or {}).get(criterion), final.scores.get(criterion)
                if isinstance(a, int) and isinstance(b, int):
                    by_criterion[criterion].append((a, b))
            critique.append(stats.word_edit_distance(draft.critique, final.critique))
            refinement.append(stats.word_edit_distance(draft.refinement, final.refinement))
        pooled = [pair for criterion in criteria for pair in by_criterion[criterion]]
        finished = fig.finished
        out.append(
            {
                **fig.settings,
                "drafts": fig.total,
                "done": fig.done,
                "failed": fig.failed,
                "cancelled": fig.cancelled,
                "open": fig.open,
                "failure_rate": stats.proportion(fig.failed, finished),
                "repair_rate": stats.proportion(fig.repaired, finished),
                "reask_rate": stats.proportion(fig.reasked, finished),
                "tokens_in": fig.tokens_in,
                "tokens_out": fig.tokens_out,
                "cost": _dollars(fig.cost),
                "latency_ms": {"p50": _ms(fig.latency_p50), "p95": _ms(fig.latency_p95)},
                "gold": len(scored),
                "agreement": _agreement(pooled, labels),
                "criteria": {c: _agreement(by_criterion[c], labels) for c in criteria},
                "critique_distance": stats.mean(critique),
                "refinement_distance": stats.mean(refinement),
            }
        )
    return {
        "id": trial.pk,
        "name": trial.name,
        "state": trial.state,
        "set": {"kind": trial.set_kind, "n": trial.set_size, "seed": trial.seed, "samples": len(trial.sample_ids)},
        "promoted": trial.promoted.label if trial.promoted else None,
        "created_at": trial.created_at.isoformat(),
        "finished_at": trial.finished_at.isoformat() if trial.finished_at else None,
        "criteria": criteria,
        "variants": out,
    }
