"""Each annotator of a project, for its admins: accuracy on gold checks over time, throughput and the
median time per review.

A gold check (``feedback/review/gold.py``) is scored turn by turn against its gold sample's expected
answer: the decision agrees when both accept (as drafted or edited) or both reject; each criterion's
score pair counts toward exact and within-one agreement and the quadratic weighted kappa
(``stats.agreement``, rows the expected score, columns the annotator's); the critique's and the
refinement's word edit distance to the expected ones. A flagged check has no answer to score and is
counted apart. Reads are a fixed number of queries whatever the project holds; the rows read are
bounded (``MAX_CHECKS``, ``MAX_REVIEWS``, the most recent first).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from feedback.models import Project
from feedback.review.disagreement import ACCEPTING
from feedback.review.models import Assignment, GoldSample, Revision

from . import stats
from .summary import score_of

# Gold checks scored per request, the most recent first.
MAX_CHECKS = 20_000
# Reviews whose time is read for the median, the most recent first.
MAX_REVIEWS = 50_000
# Annotators listed at most.
MAX_ANNOTATORS = 500
# Bootstrap resamples behind kappa's interval: a page, not a paper.
RESAMPLES = 200


def week_of(moment: datetime | None) -> date:
    """The Monday of the moment's week, in the site's time zone."""
    if moment is None:
        return date.min
    day = timezone.localtime(moment).date() if timezone.is_aware(moment) else moment.date()
    return day - timedelta(days=day.weekday())


@dataclass
class Scored:
    """The gold-check turns of one annotator (or of one week of theirs), tallied."""

    turns: int = 0
    decisions_agree: int = 0
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (expected, given)
    by_criterion: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    critique: list[float] = field(default_factory=list)
    refinement: list[float] = field(default_factory=list)

    def add(self, expected: dict[str, Any], given: dict[str, Any], criteria: list[str]) -> None:
        """One turn: ``given`` the annotator's latest revision (decision, critique, refinement, scores)."""
        get = given.get
        self.turns += 1
        # Both accept (as drafted or edited) or both reject, as adjudication compares decisions.
        self.decisions_agree += (expected.get("decision") in ACCEPTING) == (get("decision") in ACCEPTING)
        wanted, scores = expected.get("scores") or {}, get("scores") or {}
        for criterion in criteria:
            a, b = score_of(wanted.get(criterion)), score_of(scores.get(criterion))
            if a is not None and b is not None:
                self.pairs.append((a, b))
                self.by_criterion[criterion].append((a, b))
        self.critique.append(stats.word_edit_distance(expected.get("critique") or "", get("critique") or ""))
        self.refinement.append(stats.word_edit_distance(expected.get("refinement") or "", get("refinement") or ""))

    def figures(self, project: Project, *, kappa: bool = True) -> dict[str, Any]:
        labels = list(project.score_range)
        out: dict[str, Any] = {
            "turns": self.turns,
            "decision_agreement": stats.proportion(self.decisions_agree, self.turns),
            "exact": _rate(self.pairs, 0),
            "within_1": _rate(self.pairs, 1),
            "critique_distance": stats.mean(self.critique),
            "refinement_distance": stats.mean(self.refinement),
        }
        if kappa:
            agreement = stats.agreement(_confusion(self.pairs, labels), labels, resamples=RESAMPLES)
            out["kappa"] = agreement["kappa"]
            out["by_criterion"] = {
                criterion: {"exact": _rate(pairs, 0), "within_1": _rate(pairs, 1)}
                for criterion in project.criteria
                if (pairs := self.by_criterion.get(criterion))
            }
        return out


def _rate(pairs: list[tuple[int, int]], within: int) -> stats.Fig:
    return stats.proportion(sum(abs(a - b) <= within for a, b in pairs), len(pairs))


def _confusion(pairs: list[tuple[int, int]], labels: list[int]) -> list[list[int]]:
    index = {label: i for i, label in enumerate(labels)}
    table = [[0] * len(labels) for _ in labels]
    for a, b in pairs:
        if a in index and b in index:
            table[index[a]][index[b]] += 1
    return table


def _checks(project: Project, reviewer_id: int | None = None):
    checks = Assignment.objects.filter(project=project, gold=True, state=Assignment.State.SUBMITTED)
    return checks if reviewer_id is None else checks.filter(reviewer_id=reviewer_id)


def _scored_turns(project: Project, reviewer_id: int | None = None):
    """(reviewer id, week, expected, latest revision values) of each scored gold-check turn, and the
    flagged checks per reviewer. Three queries."""
    checks = list(
        _checks(project, reviewer_id)
        .order_by("-finished_at", "-id")
        .values("id", "reviewer_id", "sample_id", "finished_at", "flag")[:MAX_CHECKS]
    )
    flagged: dict[int, int] = defaultdict(int)
    scored = {}
    for c in checks:
        if c["flag"]:
            flagged[c["reviewer_id"]] += 1
        else:
            scored[c["id"]] = c
    expected = dict(
        GoldSample.objects.filter(sample_id__in={c["sample_id"] for c in scored.values()}).values_list(
            "sample_id", "expected"
        )
    )
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    for r in (
        Revision.objects.filter(assignment_id__in=list(scored))
        .order_by("assignment_id", "turn_id", "version")
        .values("assignment_id", "turn_id", "decision", "critique", "refinement", "scores")
    ):
        latest[(r["assignment_id"], r["turn_id"])] = dict(r)
    rows = []
    for (assignment_id, turn_id), revision in latest.items():
        check = scored[assignment_id]
        answer = (expected.get(check["sample_id"]) or {}).get(str(turn_id))
        if answer is not None:
            rows.append((check["reviewer_id"], week_of(check["finished_at"]), answer, revision))
    return rows, flagged


def _median_times(project: Project, reviewer_id: int | None = None) -> dict[int, dict[str, Any]]:
    """Per reviewer: the median time of a submitted review (its revisions' time_spent_ms summed), over
    their most recent ``MAX_REVIEWS`` of the project. One query."""
    reviews = Assignment.objects.filter(project=project, state=Assignment.State.SUBMITTED)
    if reviewer_id is not None:
        reviews = reviews.filter(reviewer_id=reviewer_id)
    spent: dict[int, list[int]] = defaultdict(list)
    for row in (
        reviews.order_by("-finished_at", "-id")
        .annotate(spent=Sum("revisions__time_spent_ms"))
        .values("reviewer_id", "spent")[:MAX_REVIEWS]
    ):
        spent[row["reviewer_id"]].append(int(row["spent"] or 0))
    return {who: {"value": statistics.median(values), "n": len(values)} for who, values in spent.items()}


def annotator_list(project: Project) -> list[dict[str, Any]]:
    """Everyone who submitted a review (or a gold check) in the project, with their totals."""
    totals = list(
        Assignment.objects.filter(project=project, state=Assignment.State.SUBMITTED)
        .order_by()
        .values("reviewer_id", "reviewer__username")
        .annotate(reviews=Count("id", filter=Q(gold=False)), checks=Count("id", filter=Q(gold=True)))
        .annotate(last=Max("finished_at"))
        .order_by("reviewer__username")[:MAX_ANNOTATORS]
    )
    rows, flagged = _scored_turns(project)
    tallies: dict[int, Scored] = defaultdict(Scored)
    for reviewer_id, _week, answer, revision in rows:
        tallies[reviewer_id].add(answer, revision, project.criteria)
    times = _median_times(project)
    out = []
    for t in totals:
        who = t["reviewer_id"]
        figures = tallies[who].figures(project, kappa=False) if who in tallies else None
        out.append(
            {
                "annotator": t["reviewer__username"],
                "reviews": t["reviews"],
                "gold_checks": t["checks"],
                "flagged_checks": flagged.get(who, 0),
                "last_review_at": t["last"],
                "median_time_ms": times.get(who, {"value": None, "n": 0}),
                "gold": figures,
            }
        )
    return out


def annotator_detail(project: Project, username: str) -> dict[str, Any] | None:
    """One annotator's figures; None when they submitted nothing in the project."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return None
    weekly = list(
        Assignment.objects.filter(project=project, reviewer=user, state=Assignment.State.SUBMITTED)
        .exclude(finished_at__isnull=True)
        .order_by()
        .values_list("finished_at", "gold")
        .order_by("-finished_at")[:MAX_REVIEWS]
    )
    if not weekly:
        return None
    throughput: dict[date, dict[str, int]] = defaultdict(lambda: {"reviews": 0, "gold_checks": 0})
    for finished_at, gold in weekly:
        throughput[week_of(finished_at)]["gold_checks" if gold else "reviews"] += 1
    rows, flagged = _scored_turns(project, user.pk)
    overall = Scored()
    by_week: dict[date, Scored] = defaultdict(Scored)
    for _who, week, answer, revision in rows:
        overall.add(answer, revision, project.criteria)
        by_week[week].add(answer, revision, project.criteria)
    return {
        "annotator": user.get_username(),
        "reviews": sum(v["reviews"] for v in throughput.values()),
        "gold_checks": sum(v["gold_checks"] for v in throughput.values()),
        "flagged_checks": flagged.get(user.pk, 0),
        "median_time_ms": _median_times(project, user.pk).get(user.pk, {"value": None, "n": 0}),
        "throughput": [{"week": week, **counts} for week, counts in sorted(throughput.items())],
        "gold": overall.figures(project),
        "over_time": [
            {"week": week, **scored.figures(project, kappa=False)} for week, scored in sorted(by_week.items())
        ],
    }
