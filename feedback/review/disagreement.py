"""Disagreement between the independent reviews of a sample, and opening its adjudication case.

Apart from the saving of adjudications (``adjudication.py``) so that saving a revision, which
opens the case, does not import what imports it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from feedback.models import Project

from .models import Adjudication, AdjudicationCase, Assignment, Decision, Revision

ACCEPTING = frozenset({Decision.ACCEPTED, Decision.EDITED})


def turn_disagreements(reviews: Sequence[Any], criteria: Iterable[str], threshold: int) -> list[str]:
    """Why these reviews of one turn disagree (each a Revision or anything with ``decision`` and
    ``scores``); empty when they agree. Scores are compared where at least two reviews gave one."""
    reasons = []
    decisions = {r.decision for r in reviews}
    if Decision.REJECTED in decisions and decisions & ACCEPTING:
        reasons.append("decision: " + " vs ".join(sorted(decisions)))
    for criterion in criteria:
        given = [n for r in reviews if (n := _score((r.scores or {}).get(criterion))) is not None]
        if len(given) >= 2 and max(given) - min(given) >= threshold:
            reasons.append(f"{criterion}: {min(given)} vs {max(given)}")
    return reasons


def _score(value: Any) -> int | None:
    """A stored score as a number; None when none was given (or it is not a number)."""
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def reviews_by_turn(sample_id: int) -> dict[int, list[Revision]]:
    """Each turn's latest revision of every submitted, unflagged review of the sample (gold checks
    are no reviews of it), in the order the reviews were claimed (one query)."""
    latest: dict[tuple[int, int], Revision] = {}
    for revision in (
        Revision.objects.filter(
            assignment__sample_id=sample_id,
            assignment__state=Assignment.State.SUBMITTED,
            assignment__flag="",
            assignment__gold=False,
        )
        .select_related("author", "assignment")
        .order_by("turn_id", "assignment__claimed_at", "assignment_id", "version")
    ):
        latest[(revision.turn_id, revision.assignment_id)] = revision  # the chain's latest wins
    by_turn: dict[int, list[Revision]] = defaultdict(list)
    for (turn_id, _), revision in latest.items():
        by_turn[turn_id].append(revision)
    return dict(by_turn)


def sample_disagreements(project: Project, sample_id: int) -> dict[int, list[str]]:
    """The turns of the sample whose reviews disagree, with the reasons."""
    found = {}
    for turn_id, reviews in reviews_by_turn(sample_id).items():
        reasons = turn_disagreements(reviews, project.criteria, project.adjudication_threshold)
        if len(reviews) >= 2 and reasons:
            found[turn_id] = reasons
    return found


def adjudication_open(*, project: Project, sample_id: int) -> AdjudicationCase | None:
    """Called when a review of the sample is submitted (or corrected after submission): once all
    its required reviews are in and they disagree, the sample goes to adjudication, once."""
    if project.reviews_required < 2:
        return None
    reviews = Assignment.objects.filter(sample_id=sample_id, state=Assignment.State.SUBMITTED, gold=False)
    if reviews.exclude(flag="").exists() or reviews.count() < project.reviews_required:
        return None  # a flagged sample is never released; one still in review waits
    if AdjudicationCase.objects.filter(sample_id=sample_id).exists():
        return None
    found = sample_disagreements(project, sample_id)
    if not found:
        return None
    try:
        with transaction.atomic():
            return AdjudicationCase.objects.create(
                project=project,
                sample_id=sample_id,
                turns={str(turn_id): reasons for turn_id, reasons in found.items()},
                opened_at=timezone.now(),
            )
    except IntegrityError:
        return None  # opened by a concurrent submission


def adjudication_recheck(project: Project) -> dict[str, int]:
    """After a change of the project's threshold: each case still waiting is compared again under
    the new one. A case none of whose turns disagree any more is closed (deleted: nothing was
    settled in it; its reviews go straight through); one whose settled turns are all that still
    disagree is settled; the others keep the turns that still disagree (and those settled). Samples
    without a case are not re-opened: their reviews agreed when they were in, and may be released."""
    counts = {"rechecked": 0, "closed": 0, "settled": 0}
    pending = AdjudicationCase.objects.filter(project=project, settled_at__isnull=True).order_by("id")
    for case in pending.iterator(chunk_size=500):
        counts["rechecked"] += 1
        found = {str(turn_id): reasons for turn_id, reasons in sample_disagreements(project, case.sample_id).items()}
        done = {str(t) for t in Adjudication.objects.filter(case=case).values_list("turn_id", flat=True)}
        turns = {**{t: case.turns[t] for t in done if t in case.turns}, **found}
        if not turns:
            case.delete()
            counts["closed"] += 1
        elif set(turns) <= done:
            case.turns, case.settled_at = turns, timezone.now()
            case.save(update_fields=["turns", "settled_at"])
            counts["settled"] += 1
        elif turns != case.turns:
            case.turns = turns
            case.save(update_fields=["turns"])
    return counts
