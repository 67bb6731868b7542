"""The quality figures of a project: every count from GROUP BY queries over the summary tables
(``quality.models``), a fixed number of them whatever the project's size; the statistics on those
counts from ``quality.stats``. The same JSON feeds the API, the page, the command and releases.

Only submitted reviews count. Drafter vs human: turns reviewed from a draft; agreement leaves out
rejected drafts (counted among the decisions) and criteria without both scores. Reviewer vs
reviewer: turns of samples with two or more submitted reviews. The model under study: the final
score of every answered turn, the human's where reviewed, else its latest successful draft's.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    IntegerField,
    JSONField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTransform, KeyTransformExact
from django.db.models.functions import Coalesce, NullIf, TruncWeek

from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.errors import InvalidInput
from feedback.models import ImportBatch, Project
from feedback.review.models import Decision

from . import stats
from .cube import BINS
from .filters import QualityFilters
from .models import (
    NO_BIN,
    NO_IMPORT,
    NO_SCORE,
    CachedFigures,
    FinalCell,
    PairCell,
    QualityState,
    ReviewedScore,
    ReviewedTurn,
    Source,
    TurnCell,
)

EDGES = [round(i / BINS, 2) for i in range(BINS + 1)]
BY_ROWS = 25  # at most this many rows per breakdown, the largest first
BY_RESAMPLES = 200  # bootstrap resamples of a breakdown row's figures (the headline ones use 1000)
OVER_TIME_RESAMPLES = 0  # over time: the values only
UNKNOWN_MODEL = "(unknown)"
MAX_SCALE = 101  # scores on a project's scale: the rows and columns of a confusion matrix
CACHED = 50  # cached figures JSONs kept a project (one per filters)
BY_KEYS = {"prompt_version": "prompt_version", "model": "draft_model", "import": "import_batch_id"}
# PostgreSQL's memory for each sort and hash of the figures' queries: their per-turn GROUP BYs fit in
# it at 63,000 samples, where the server's default (4 MB) spills them to disk.
WORK_MEM = "64MB"


def compute(project: Project, filters: QualityFilters | None = None) -> dict[str, Any]:
    """The figures JSON of ``project`` under ``filters`` (see the module's docstring)."""
    filters = filters or QualityFilters()
    criteria = [filters.criterion] if filters.criterion else list(project.criteria)
    labels = list(range(project.score_min, project.score_max + 1))
    if len(labels) > MAX_SCALE:
        raise InvalidInput(
            "scale", f"The project's scale has {len(labels):,} scores; the quality figures take at most {MAX_SCALE}."
        )
    turns = _filtered(ReviewedTurn.objects.filter(project=project), filters)
    scores = _filtered(ReviewedScore.objects.filter(project=project, criterion__in=criteria), filters)
    cells = _Cells(project, filters, criteria)
    with _work_memory(turns.db):
        options = _options(project)
        drafter = _drafter(cells, criteria, labels, options["imports"])
        return {
            "project": project.slug,
            "filters": filters.as_json(),
            "options": options,
            "scale": {"min": project.score_min, "max": project.score_max},
            "drafter": drafter,
            "reviewers": _reviewers(turns, scores, criteria, labels, cells),
            "models": _models(project, filters, cells, criteria, labels),
        }


@contextmanager
def _work_memory(using: str) -> Iterator[None]:
    """On PostgreSQL, a transaction (or savepoint) whose queries may use ``WORK_MEM`` each:
    ``set_config`` local to the transaction, set back on the way out, and undone with it by a
    rollback, so an enclosing transaction keeps its own. Elsewhere nothing."""
    db = connections[using]
    if db.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with db.cursor() as cursor:
            cursor.execute("SELECT current_setting('work_mem'), set_config('work_mem', %s, true)", [WORK_MEM])
            before = cursor.fetchone()[0]
        yield
        with db.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [before])


# --------------------------------------------------------------------------------------------
# Cached figures (the API and the page)


def stamp(project: Project) -> str:
    """What the figures of ``project`` are computed from, as one string, in one query: its figures
    version (bumped by every change of its summary rows and cube, ``quality.cube.lock``), the
    latest draft, generation and import anywhere (drafts and generations are only ever added, or
    deleted with a version bump; an import adds a batch), and the project's own last save
    (criteria, scale)."""
    tables = [
        connection.ops.quote_name(model._meta.db_table) for model in (QualityState, Draft, Generation, ImportBatch)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT version FROM {tables[0]} WHERE project_id = %s), (SELECT MAX(id) FROM {tables[1]}), "  # noqa: S608
            f"(SELECT MAX(id) FROM {tables[2]}), (SELECT MAX(id) FROM {tables[3]})",
            [project.pk],
        )
        parts = cursor.fetchone()
    return ":".join(str(part or 0) for part in parts) + f":{project.updated_at.timestamp():.6f}"


def cached(project: Project, filters: QualityFilters | None = None) -> dict[str, Any]:
    """``compute(project, filters)`` as JSON, from the cache while nothing it reads has changed
    (``stamp``). The stamp is read before computing: a change that lands meanwhile leaves the entry
    under the older stamp, recomputed at the next request."""
    filters = filters or QualityFilters()
    key = hashlib.sha256(json.dumps(filters.as_json(), sort_keys=True).encode()).hexdigest()
    current = stamp(project)
    hit = (
        CachedFigures.objects.filter(project=project, key=key, stamp=current).values_list("figures", flat=True).first()
    )
    if hit is not None:
        return hit
    figures = json.loads(json.dumps(compute(project, filters), cls=DjangoJSONEncoder))
    entries = CachedFigures.objects.filter(project=project)
    entries.exclude(stamp=current).delete()
    CachedFigures.objects.update_or_create(project=project, key=key, defaults={"stamp": current, "figures": figures})
    # At most CACHED entries a project (one per filters tried): the oldest go.
    old = entries.order_by("-created_at", "-pk").values_list("pk", flat=True)[CACHED:]
    entries.filter(pk__in=list(old)).delete()
    return figures


# --------------------------------------------------------------------------------------------
# Filters and options


def _filtered(queryset: QuerySet, filters: QualityFilters) -> QuerySet:
    queryset = queryset.filter(submitted=True)
    if filters.prompt_version:
        queryset = queryset.filter(prompt_version=filters.prompt_version)
    if filters.model:
        queryset = queryset.filter(Q(draft_model=filters.model) | Q(responder_model=filters.model))
    if filters.import_id is not None:
        queryset = queryset.filter(import_batch_id=filters.import_id)
    if filters.since:
        queryset = queryset.filter(created_at__gte=_day_start(filters.since))
    if filters.until:
        queryset = queryset.filter(created_at__lt=_day_start(filters.until) + timedelta(days=1))
    return queryset


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class _Cells:
    """The project's cube (``quality.cube``) under the filters: the same rows ``_filtered`` keeps,
    counted. Days are the reviews' UTC days, as the date filters' bounds are."""

    def __init__(self, project: Project, filters: QualityFilters, criteria: list[str]) -> None:
        self.project, self.filters, self.criteria = project, filters, criteria

    def of(self, model: type[TurnCell | PairCell | FinalCell]) -> QuerySet:
        cells = model._default_manager.filter(project=self.project)
        if model is not TurnCell:
            cells = cells.filter(**{"criterion__in": self.criteria})
        f = self.filters
        if f.prompt_version:
            cells = cells.filter(prompt_version=f.prompt_version)
        if f.model:
            cells = cells.filter(Q(draft_model=f.model) | Q(responder_model=f.model))
        if f.import_id is not None:
            cells = cells.filter(import_key=f.import_id)
        if f.since:
            cells = cells.filter(day__gte=f.since)
        if f.until:
            cells = cells.filter(day__lte=f.until)
        return cells


def _import_id(key: int) -> int | None:
    return None if key == NO_IMPORT else key


COUNTED = frozenset({"n", "cd_n"})
SUMMED = frozenset({"cd_sum", "cd_sq", "rd_sum", "rd_sq"})


def _decoded(cell: dict[str, Any]) -> dict[str, Any]:
    """A grouped cell as the figures read a grouped row: ``import_batch_id`` (None for none), bins
    and next scores None for none, sums as numbers (PostgreSQL sums whole numbers as decimals)."""
    out: dict[str, Any] = {}
    for key, value in cell.items():
        if key == "import_key":
            out["import_batch_id"] = _import_id(value)
        elif key in ("critique_bin", "refinement_bin"):
            out[key] = None if value == NO_BIN else value
        elif key == "next_score":
            out[key] = None if value == NO_SCORE else value
        elif key in COUNTED:
            out[key] = int(value or 0)
        elif key in SUMMED:
            out[key] = float(value or 0.0)
        else:
            out[key] = value
    return out


def _options(project: Project) -> dict[str, Any]:
    """What the filters can be set to: from the project's reviewed turns, whatever the filters."""
    seen = (
        TurnCell.objects.filter(project=project)
        .values("prompt_version", "draft_model", "responder_model", "import_key")
        .annotate(n=Sum("n"))
        .order_by()
    )
    versions: set[str] = set()
    models: set[str] = set()
    imports: set[int | None] = set()
    for row in seen:
        versions.add(row["prompt_version"])
        models.update((row["draft_model"], row["responder_model"]))
        imports.add(_import_id(row["import_key"]))
    batches = ImportBatch.objects.filter(project=project, pk__in=[i for i in imports if i is not None])
    labelled = [
        {"id": b["id"], "label": f"#{b['id']} {b['file_name']} ({b['format']})"}
        for b in batches.order_by("pk").values("id", "file_name", "format")
    ]
    return {
        "criteria": list(project.criteria),
        "prompt_versions": sorted(v for v in versions if v),
        "models": sorted(m for m in models if m),
        "imports": labelled,
    }


# --------------------------------------------------------------------------------------------
# Small helpers on counts


def _confusion(cells: Iterable[tuple[int, int, int]], labels: list[int]) -> np.ndarray:
    """A labels x labels matrix of counts from (row label, column label, count); others dropped."""
    where = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for a, b, n in cells:
        if a in where and b in where:
            matrix[where[a], where[b]] += n
    return matrix


def _mean_of_counts(labels: list[int], counts: Iterable[int]) -> stats.Fig:
    """The mean of scores given as counts per label, with its 95 % t interval."""
    return stats.mean({label: int(c) for label, c in zip(labels, counts, strict=True) if c})


def _run(queryset: QuerySet, outer: str) -> list[tuple]:
    """``outer`` (with ``{inner}`` for the queryset's SQL, and no parameters of its own) run with
    the inner query's parameters: an aggregate over an aggregate, which the ORM cannot say."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(outer.replace("{inner}", sql), params)
        return list(cursor.fetchall())


# --------------------------------------------------------------------------------------------
# Drafter vs human


def _drafter(cells: _Cells, criteria, labels, imports) -> dict[str, Any]:
    # The turns by breakdown key, decision and edit distance bins, with the distances' sums.
    binned = [
        _decoded(b)
        for b in cells.of(TurnCell)
        .filter(drafted=True)
        .values("prompt_version", "draft_model", "import_key", "decision", "critique_bin", "refinement_bin")
        .annotate(
            n=Sum("n"),
            cd_n=Sum("cd_n"),
            cd_sum=Sum("cd_sum"),
            cd_sq=Sum("cd_sq"),
            rd_sum=Sum("rd_sum"),
            rd_sq=Sum("rd_sq"),
        )
        .order_by()
    ]
    merged: dict[tuple, dict[str, Any]] = {}
    for b in binned:
        key = (b["prompt_version"], b["draft_model"], b["import_batch_id"], b["decision"])
        g = merged.setdefault(
            key,
            {"prompt_version": key[0], "draft_model": key[1], "import_batch_id": key[2], "decision": key[3]}
            | {"n": 0, "cd_n": 0, "cd_sum": 0.0, "cd_sq": 0.0},
        )
        g["n"] += b["n"]
        g["cd_n"] += b["cd_n"]
        g["cd_sum"] += b["cd_sum"] or 0.0
        g["cd_sq"] += b["cd_sq"] or 0.0
    groups = list(merged.values())
    histogram = binned
    n = sum(g["n"] for g in groups)
    decisions = {d: stats.proportion(sum(g["n"] for g in groups if g["decision"] == d), n) for d in Decision.values}
    text = {}
    for field, short in (("critique", "cd"), ("refinement", "rd")):
        counts = [0] * BINS
        total = squares = 0.0
        for h in histogram:
            if h[f"{field}_bin"] is None:
                continue
            counts[int(h[f"{field}_bin"])] += h["n"]
        for h in histogram:
            if h[f"{field}_bin"] is not None:
                total += h[f"{short}_sum"] or 0.0
                squares += h[f"{short}_sq"] or 0.0
        text[field] = {
            "mean": stats.mean_from_sums(sum(counts), total, squares),
            "histogram": {"edges": list(EDGES), "counts": counts},
        }
    # The pairs (both scores given, not rejected) by criterion, breakdown key and week (for
    # over_time), draft and final score.
    cells_ = [
        _decoded(x)
        for x in cells.of(PairCell)
        .annotate(week=TruncWeek("day"))
        .values("criterion", "prompt_version", "draft_model", "import_key", "week", "draft_score", "final_score")
        .annotate(n=Sum("n"))
        .order_by()
    ]
    per_criterion = {}
    for c in criteria:
        matrix = _confusion(
            ((x["draft_score"], x["final_score"], x["n"]) for x in cells_ if x["criterion"] == c), labels
        )
        figures = stats.agreement(matrix, labels)
        per_criterion[c] = {
            "n": int(matrix.sum()),
            **{key: figures[key] for key in ("exact", "within_1", "kappa", "spearman", "mean_diff")},
            "confusion": {"labels": labels, "counts": matrix.tolist()},
            "draft_distribution": matrix.sum(axis=1).tolist(),
            "final_distribution": matrix.sum(axis=0).tolist(),
        }
    import_labels = {i["id"]: i["label"] for i in imports}
    by: dict[str, list[dict[str, Any]]] = {}
    left_off: dict[str, int] = {}
    for name, column in BY_KEYS.items():
        rows, more = _by(column, groups, cells_, criteria, labels, import_labels)
        by[name] = rows
        left_off[name] = more
    return {
        "n": n,
        "decisions": decisions,
        "criteria": per_criterion,
        "text": text,
        "by": by,
        "by_left_off": left_off,
        "over_time": _over_time(cells_, labels),
    }


def _by(column, groups, cells, criteria, labels, import_labels) -> tuple[list[dict[str, Any]], int]:
    sizes: dict[Any, int] = defaultdict(int)
    for g in groups:
        sizes[g[column]] += g["n"]
    keys = sorted(sizes, key=lambda k: (-sizes[k], str(k)))
    pairs: dict[tuple[Any, str], list[tuple[int, int, int]]] = defaultdict(list)
    for x in cells:
        pairs[(x[column], x["criterion"])].append((x["draft_score"], x["final_score"], x["n"]))
    rows = []
    for key in keys[:BY_ROWS]:
        mine = [g for g in groups if g[column] == key]
        accepted = sum(g["n"] for g in mine if g["decision"] == Decision.ACCEPTED)
        within, kappa = {}, {}
        for c in criteria:
            matrix = _confusion(pairs.get((key, c), ()), labels)
            figures = stats.agreement(matrix, labels, resamples=BY_RESAMPLES)
            within[c], kappa[c] = figures["within_1"], figures["kappa"]
        if column == "import_batch_id":
            label = import_labels.get(key, f"#{key}") if key is not None else "not imported"
        else:
            label = (key or UNKNOWN_MODEL) if column == "draft_model" else (key or "(none)")
        rows.append(
            {
                "key": "" if key is None else str(key),
                "label": label,
                "n": sizes[key],
                "accepted": stats.proportion(accepted, sizes[key]),
                "within_1": within,
                "kappa": kappa,
                "critique_distance": stats.mean_from_sums(
                    sum(g["cd_n"] for g in mine),
                    sum(g["cd_sum"] or 0.0 for g in mine),
                    sum(g["cd_sq"] or 0.0 for g in mine),
                ),
            }
        )
    return rows, max(0, len(keys) - BY_ROWS)


def _over_time(cells, labels) -> list[dict[str, Any]]:
    """Per prompt version and week (Monday, UTC) of the review: within ±1 and kappa over the criteria
    in scope (all of them pooled, or the filter's one)."""
    keyed: dict[tuple[str, str], list[tuple[int, int, int]]] = defaultdict(list)
    for x in cells:
        week = x["week"].isoformat() if x["week"] else ""
        keyed[(x["prompt_version"], week)].append((x["draft_score"], x["final_score"], x["n"]))
    out = []
    for (version, week), found in sorted(keyed.items()):
        matrix = _confusion(found, labels)
        figures = stats.agreement(matrix, labels, resamples=OVER_TIME_RESAMPLES)
        out.append(
            {
                "prompt_version": version,
                "week": week,
                "n": int(matrix.sum()),
                "within_1": figures["within_1"]["value"],
                "kappa": figures["kappa"]["value"],
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# Reviewer vs reviewer


def _reviewers(turns, scores, criteria, labels, cells: _Cells) -> dict[str, Any]:
    shared_turns = turns.filter(shared=True)
    shared_scores = scores.filter(shared=True, final_score__isnull=False)
    samples = (
        shared_turns.values("sample_id").annotate(k=Count("assignment_id", distinct=True)).filter(k__gte=2).count()
    )
    # Each unit (a turn's criterion) as its counts per score, then the units grouped by those counts.
    # The labels are the project's whole numbers, written into the SQL as such.
    per_label = ", ".join(
        f"SUM(CASE WHEN final_score = {int(label)} THEN 1 ELSE 0 END) AS c{i}" for i, label in enumerate(labels)
    )
    columns = ", ".join(f"c{i}" for i in range(len(labels)))
    profiles = _run(
        shared_scores.values("turn_id", "criterion", "final_score"),
        f"SELECT criterion, {columns}, COUNT(*) FROM (SELECT criterion, {per_label} FROM ({{inner}}) AS s "  # noqa: S608
        f"GROUP BY turn_id, criterion HAVING COUNT(*) >= 2) AS u GROUP BY criterion, {columns}",
    )
    alpha, pairwise = {}, {}
    for c in criteria:
        units: list[tuple[list[int], int]] = []
        pairs = np.zeros((len(labels), len(labels)), dtype=np.int64)
        for row in profiles:
            if row[0] != c:
                continue
            counts, times = [int(v) for v in row[1:-1]], int(row[-1])
            units.append((counts, times))
            for i, a in enumerate(counts):
                pairs[i, i] += times * a * (a - 1) // 2
                for j in range(i + 1, len(counts)):
                    pairs[i, j] += times * a * counts[j]
        alpha[c] = stats.krippendorff_alpha_counts(units)
        pairwise[c] = stats.pairwise(pairs, labels=labels)
    decided = _run(
        shared_turns.values("turn_id", "decision"),
        "SELECT agree, COUNT(*) FROM (SELECT CASE WHEN MIN(decision) = MAX(decision) THEN 1 ELSE 0 END AS agree "
        "FROM ({inner}) AS s GROUP BY turn_id HAVING COUNT(*) >= 2) AS u GROUP BY agree",
    )
    agreeing = sum(n for agree, n in decided if agree)
    return {
        "n": samples,
        "alpha": alpha,
        "pairwise": pairwise,
        "decisions": stats.proportion(agreeing, sum(n for _, n in decided)),
        "annotators": _annotators(turns, shared_scores, cells),
    }


def _annotators(turns, shared_scores, cells: _Cells) -> list[dict[str, Any]]:
    per = {
        r["reviewer_id"]: {"drafted": int(r["drafted_n"] or 0), "accepted": int(r["accepted_n"] or 0)}
        for r in cells.of(TurnCell)
        .values("reviewer_id")
        .annotate(
            drafted_n=Sum("n", filter=Q(drafted=True)),
            accepted_n=Sum("n", filter=Q(drafted=True, decision=Decision.ACCEPTED)),
        )
        .order_by()
    }
    durations: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for reviewer, seconds, n in _run(
        turns.values("reviewer_id", "assignment_id", "time_spent_ms"),
        "SELECT reviewer_id, seconds, COUNT(*) FROM (SELECT reviewer_id, "
        "CAST(SUM(time_spent_ms) AS BIGINT) / 1000 AS seconds FROM ({inner}) AS s "
        "GROUP BY reviewer_id, assignment_id) AS r GROUP BY reviewer_id, seconds",
    ):
        durations[reviewer].append((int(seconds or 0), int(n)))
    # Each score against the others of its unit (a turn's criterion, one row per review): the same
    # score as this one in (count of its score in the unit) - 1 of the (count in the unit) - 1.
    agreement = {
        reviewer: (int(k), int(n))
        for reviewer, k, n in _run(
            shared_scores.values("turn_id", "criterion", "reviewer_id", "final_score"),
            "SELECT reviewer_id, SUM(same - 1), SUM(unit - 1) FROM (SELECT reviewer_id, "
            "COUNT(*) OVER (PARTITION BY turn_id, criterion, final_score) AS same, "
            "COUNT(*) OVER (PARTITION BY turn_id, criterion) AS unit FROM ({inner}) AS s) AS w "
            "WHERE unit >= 2 GROUP BY reviewer_id",
        )
    }
    names = dict(get_user_model().objects.filter(pk__in=list(per)).values_list("pk", "username"))
    out = []
    for reviewer, r in per.items():
        k, n = agreement.get(reviewer, (0, 0))
        out.append(
            {
                "username": names.get(reviewer, f"#{reviewer}"),
                "reviews": sum(n for _, n in durations.get(reviewer, [])),
                "median_seconds": _median(durations.get(reviewer, [])),
                "accepted": stats.proportion(r["accepted"], r["drafted"]),
                "agreement": stats.proportion(k, n),
            }
        )
    return sorted(out, key=lambda a: (-a["reviews"], a["username"]))


def _median(histogram: list[tuple[int, int]]) -> float | None:
    """The median of values given as (value, count)."""
    total = sum(n for _, n in histogram)
    if not total:
        return None
    ordered = sorted(histogram)
    values = []
    for rank in ((total - 1) // 2, total // 2):
        seen = 0
        for value, n in ordered:
            seen += n
            if seen > rank:
                values.append(value)
                break
    return float(sum(values) / 2)


# --------------------------------------------------------------------------------------------
# The model under study


def _latest_drafts(project: Project, filters: QualityFilters) -> QuerySet:
    """The latest successful draft of each answered turn without a submitted review."""
    newer = Draft.objects.filter(turn_id=OuterRef("turn_id"), pk__gt=OuterRef("pk")).exclude(status=CallStatus.FAILED)
    reviewed = ReviewedTurn.objects.filter(turn_id=OuterRef("turn_id"), submitted=True)
    generated = (
        Generation.objects.filter(turn_id=OuterRef("turn_id"))
        .exclude(status=CallStatus.FAILED)
        .order_by("-created_at", "-id")
        .values("model")[:1]
    )
    drafts = (
        Draft.objects.filter(turn__sample__project=project, turn__model_response__isnull=False)
        .exclude(status=CallStatus.FAILED)
        .filter(~Exists(newer), ~Exists(reviewed))
        .annotate(
            generated_model=Subquery(generated),
        )
        .annotate(
            responder=Coalesce(F("generated_model"), NullIf(F("turn__sample__source_model"), Value("")), Value("")),
            source=Case(
                When(generated_model__isnull=False, then=Value(Source.GENERATED)),
                default=Value(Source.IMPORTED),
                output_field=CharField(),
            ),
        )
    )
    if filters.prompt_version:
        drafts = drafts.filter(prompt_version=filters.prompt_version)
    if filters.model:
        drafts = drafts.filter(Q(model=filters.model) | Q(responder=filters.model))
    if filters.import_id is not None:
        drafts = drafts.filter(turn__sample__import_batch_id=filters.import_id)
    if filters.since:
        drafts = drafts.filter(created_at__gte=_day_start(filters.since))
    if filters.until:
        drafts = drafts.filter(created_at__lt=_day_start(filters.until) + timedelta(days=1))
    return drafts


def _models(project, filters, cells: _Cells, criteria, labels) -> list[dict[str, Any]]:
    reviewed = [
        _decoded(x)
        for x in cells.of(TurnCell).values("responder_model", "responder_source").annotate(n=Sum("n")).order_by()
    ]
    # The final scores by model, criterion and the same reviewer's score of the next turn.
    human = [
        _decoded(x)
        for x in cells.of(FinalCell)
        .values("responder_model", "criterion", "final_score", "next_score")
        .annotate(n=Sum("n"))
        .order_by()
    ]
    score_of = {
        f"s{i}": Case(
            *[
                When(KeyTransformExact(KeyTransform(c, "scores"), Value(label, output_field=JSONField())), then=label)
                for label in labels
            ],
            default=Value(None),
            output_field=IntegerField(),
        )
        for i, c in enumerate(criteria)
    }
    drafted = list(
        _latest_drafts(project, filters)
        .annotate(**score_of)
        .values("responder", "source", *score_of)
        .annotate(n=Count("id"))
    )
    steps = [x for x in human if x["next_score"] is not None]
    models: dict[str, dict[str, Any]] = {}

    def entry(model: str) -> dict[str, Any]:
        return models.setdefault(
            model,
            {
                "sources": set(),
                "n": 0,
                "human": {c: [0] * len(labels) for c in criteria},
                "draft": {c: [0] * len(labels) for c in criteria},
            },
        )

    where = {label: i for i, label in enumerate(labels)}
    for row in reviewed:
        e = entry(row["responder_model"] or UNKNOWN_MODEL)
        e["sources"].add(row["responder_source"])
        e["n"] += row["n"]
    for row in human:
        e = entry(row["responder_model"] or UNKNOWN_MODEL)
        if row["final_score"] in where:
            e["human"][row["criterion"]][where[row["final_score"]]] += row["n"]
    for row in drafted:
        e = entry(row["responder"] or UNKNOWN_MODEL)
        e["sources"].add(row["source"])
        e["n"] += row["n"]
        for i, c in enumerate(criteria):
            value = row[f"s{i}"]
            if value in where:
                e["draft"][c][where[value]] += row["n"]
    out = []
    for model in sorted(models):
        e = models[model]
        result: dict[str, Any] = {
            "model": model,
            "source": "both" if len(e["sources"] - {""}) > 1 else (next(iter(e["sources"] - {""}), Source.IMPORTED)),
            "n": e["n"],
            "scores": {},
            "interaction": {},
        }
        for c in criteria:
            counts = [h + d for h, d in zip(e["human"][c], e["draft"][c], strict=True)]
            result["scores"][c] = {
                "mean": _mean_of_counts(labels, counts),
                "human": sum(e["human"][c]),
                "draft": sum(e["draft"][c]),
            }
            matrix = _confusion(
                (
                    (x["final_score"], x["next_score"], x["n"])
                    for x in steps
                    if x["criterion"] == c and (x["responder_model"] or UNKNOWN_MODEL) == model
                ),
                labels,
            )
            result["interaction"][c] = {"n": int(matrix.sum()), **stats.change(matrix, labels=labels)}
        out.append(result)
    return out


# --------------------------------------------------------------------------------------------
# Markdown


def _fmt(fig: dict[str, Any] | None, digits: int = 2) -> str:
    if not fig or fig.get("value") is None:
        return "—" if not fig or not fig.get("undefined") else f"undefined ({fig['undefined']})"
    value = f"{fig['value']:.{digits}f}"
    if fig.get("ci"):
        lo, hi = fig["ci"]
        value += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return value


def markdown_table(figures: dict[str, Any]) -> str:
    """A short Markdown summary of the figures (for a dataset card and the command's markdown).

    Rows follow the rubric's order and the decisions theirs, never a mapping's own order: figures
    read back from a PostgreSQL JSON column (a release's manifest) come with their keys sorted."""
    drafter = figures["drafter"]
    rubric = [c for c in figures["options"]["criteria"] if c in drafter["criteria"]]
    lines = [
        f"Reviewed turns with a draft: {drafter['n']:,}. "
        + ", ".join(f"{d} {_fmt(drafter['decisions'][d])}" for d in _DECISIONS if d in drafter["decisions"])
        + " (rates, 95 % CI).",
        "",
        "| Criterion | n | Exact | Within ±1 | Kappa (quadratic) | Spearman | Draft - final |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in rubric:
        c = drafter["criteria"][name]
        lines.append(
            f"| {name} | {c['n']:,} | {_fmt(c['exact'])} | {_fmt(c['within_1'])} | {_fmt(c['kappa'])} "
            f"| {_fmt(c['spearman'])} | {_fmt(c['mean_diff'])} |"
        )
    text = drafter["text"]
    lines += [
        "",
        f"Word edit distance to the draft: critique {_fmt(text['critique']['mean'])}, "
        f"refinement {_fmt(text['refinement']['mean'])}.",
    ]
    reviewers = figures["reviewers"]
    if reviewers["n"]:
        lines += [
            "",
            f"Samples with two or more reviews: {reviewers['n']:,}; decisions agree {_fmt(reviewers['decisions'])}.",
            "",
            "| Criterion | Krippendorff's alpha (ordinal) | Pairs exact | Pairs within ±1 |",
            "|---|---:|---:|---:|",
        ]
        for name in [c for c in figures["options"]["criteria"] if c in reviewers["alpha"]]:
            a, pair = reviewers["alpha"][name], reviewers["pairwise"][name]
            lines.append(f"| {name} | {_fmt(a)} | {_fmt(pair['exact'])} | {_fmt(pair['within_1'])} |")
    if figures["models"]:
        criteria = [c for c in figures["options"]["criteria"] if c in figures["models"][0]["scores"]]
        lines += [
            "",
            "| Model | Source | n | " + " | ".join(f"{c} mean" for c in criteria) + " |",
            "|---|---|---:|" + "---:|" * len(criteria),
        ]
        for m in figures["models"]:
            cells = " | ".join(
                f"{_fmt(m['scores'][c]['mean'])} ({m['scores'][c]['human']:,} human, {m['scores'][c]['draft']:,} draft)"
                for c in criteria
            )
            lines.append(f"| {m['model']} | {m['source']} | {m['n']:,} | {cells} |")
    return "\n".join(lines) + "\n"


_DECISIONS = ("accepted", "edited", "rejected")
