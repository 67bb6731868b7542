"""The cube (``TurnCell``, ``PairCell``, ``FinalCell``): the project's submitted summary rows counted
per value of everything the figures filter and group by, so that a request reads thousands of cells
instead of every row.

How it stays equal to the rows:
- every writer of a project's summary rows first calls ``lock`` (it bumps the project's
  ``QualityState`` version and holds its row lock until the transaction ends: the writers of one
  project take their turns, and a figures JSON cached under an older version is stale);
- a change of some rows subtracts their cells before it and adds them back after it
  (``Delta.rows``, then ``Delta.apply``), both read from the rows by the same GROUP BY queries;
- rows removed by a cascade (a deleted turn, sample, reviewer, revision) or rewritten by one (a
  deleted draft or import sets its column to null) make the whole project's cube be recomputed
  from its rows when the deleting transaction commits (``on_commit``): deletions are rare
  and come from many places, and a recomputation cannot miss one;
- ``recompute`` (``quality_rebuild``, the migration) writes it from the rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC
from functools import reduce
from operator import or_
from typing import Any

from django.db import connections, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Floor, Least, TruncDate

from feedback.models import Project
from feedback.review.models import Decision, QueueState

from .models import (
    FINAL_CELL_KEYS,
    NO_BIN,
    NO_IMPORT,
    NO_SCORE,
    PAIR_CELL_KEYS,
    TURN_CELL_KEYS,
    FinalCell,
    PairCell,
    QualityState,
    ReviewedScore,
    ReviewedTurn,
    TurnCell,
)

BINS = 10  # edit distance bins: [0, 0.1), ..., [0.9, 1]
CHUNK = 200  # cells looked up per query when applying a delta
BATCH = 2000

TURN_KEYS = TURN_CELL_KEYS
TURN_SUMS = ("n", "cd_n", "cd_sum", "cd_sq", "rd_sum", "rd_sq")
PAIR_KEYS = PAIR_CELL_KEYS
# ``next_key`` in the queries (the rows have a ``next_score`` column): ``next_score`` in the cells.
FINAL_KEYS = (*FINAL_CELL_KEYS[:-1], "next_key")
COUNTS = ("n",)


def _day() -> TruncDate:
    return TruncDate("created_at", tzinfo=UTC)


def _import_key() -> Coalesce:
    return Coalesce(F("import_batch_id"), Value(NO_IMPORT), output_field=IntegerField())


def edit_bin(field: str) -> Cast:
    """The histogram bin of an edit distance column (null without one), as the database computes it."""
    return Cast(Least(Floor(F(field) * BINS), Value(BINS - 1)), output_field=IntegerField())


def _turn_cells(rows: QuerySet[ReviewedTurn]) -> Iterable[dict[str, Any]]:
    return (
        rows.filter(submitted=True)
        .annotate(
            day=_day(),
            drafted=Case(When(draft__isnull=True, then=Value(False)), default=Value(True), output_field=BooleanField()),
            import_key=_import_key(),
            critique_bin=Coalesce(edit_bin("critique_distance"), Value(NO_BIN), output_field=IntegerField()),
            refinement_bin=Coalesce(edit_bin("refinement_distance"), Value(NO_BIN), output_field=IntegerField()),
        )
        .values(*TURN_KEYS)
        .annotate(
            n=Count("id"),
            cd_n=Count("critique_distance"),
            cd_sum=Coalesce(Sum("critique_distance"), Value(0.0), output_field=FloatField()),
            cd_sq=Coalesce(Sum(F("critique_distance") * F("critique_distance")), Value(0.0), output_field=FloatField()),
            rd_sum=Coalesce(Sum("refinement_distance"), Value(0.0), output_field=FloatField()),
            rd_sq=Coalesce(
                Sum(F("refinement_distance") * F("refinement_distance")), Value(0.0), output_field=FloatField()
            ),
        )
        .order_by()
    )


def _pair_cells(scores: QuerySet[ReviewedScore]) -> Iterable[dict[str, Any]]:
    return (
        scores.filter(submitted=True, draft_score__isnull=False, final_score__isnull=False)
        .exclude(decision=Decision.REJECTED)
        .annotate(day=_day(), import_key=_import_key())
        .values(*PAIR_KEYS)
        .annotate(n=Count("id"))
        .order_by()
    )


def _final_cells(scores: QuerySet[ReviewedScore]) -> Iterable[dict[str, Any]]:
    return (
        scores.filter(submitted=True, final_score__isnull=False)
        .annotate(
            day=_day(),
            import_key=_import_key(),
            next_key=Coalesce(F("next_score"), Value(NO_SCORE), output_field=IntegerField()),
        )
        .values(*FINAL_KEYS)
        .annotate(n=Count("id"))
        .order_by()
    )


class Delta:
    """A change of a project's cells: the counts (and sums) to add to each cell, by its key."""

    def __init__(self, project_id: int) -> None:
        self.project_id = project_id
        self.turns: dict[tuple, list[float]] = defaultdict(lambda: [0] * len(TURN_SUMS))
        self.pairs: dict[tuple, list[float]] = defaultdict(lambda: [0])
        self.finals: dict[tuple, list[float]] = defaultdict(lambda: [0])

    def rows(self, row_ids: Iterable[int] | None, sign: int) -> Delta:
        """Adds (sign 1) or subtracts (sign -1) the cells of the given summary rows (their ids; None:
        all the project's rows) as they are now."""
        turns = ReviewedTurn.objects.filter(project_id=self.project_id)
        scores = ReviewedScore.objects.filter(project_id=self.project_id)
        if row_ids is not None:
            ids = sorted(set(row_ids))
            if not ids:
                return self
            turns, scores = turns.filter(pk__in=ids), scores.filter(row_id__in=ids)
        for target, cells, keys, sums in (
            (self.turns, _turn_cells(turns), TURN_KEYS, TURN_SUMS),
            (self.pairs, _pair_cells(scores), PAIR_KEYS, COUNTS),
            (self.finals, _final_cells(scores), FINAL_KEYS, COUNTS),
        ):
            for cell in cells:
                total = target[tuple(cell[k] for k in keys)]
                for i, name in enumerate(sums):
                    total[i] += sign * cell[name]
        return self

    def apply(self) -> None:
        """Writes the change (call ``lock`` first, in the same transaction)."""
        _apply(TurnCell, TURN_KEYS, TURN_SUMS, self.project_id, self.turns)
        _apply(PairCell, PAIR_KEYS, COUNTS, self.project_id, self.pairs)
        _apply(FinalCell, FINAL_KEYS, COUNTS, self.project_id, self.finals)


def _fields(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("next_score" if k == "next_key" else k for k in keys)


Cell = TurnCell | PairCell | FinalCell


def _apply(model: type[Cell], keys: tuple[str, ...], sums: tuple[str, ...], project_id: int, delta: dict) -> None:
    fields = _fields(keys)
    changed = {key: values for key, values in delta.items() if any(values)}
    ordered = sorted(changed, key=repr)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        wanted = reduce(or_, (Q(**dict(zip(fields, key, strict=True))) for key in chunk))
        existing = {
            tuple(getattr(cell, f) for f in fields): cell
            for cell in model._default_manager.filter(project_id=project_id).filter(wanted)
        }
        new: list[Any] = []
        updated: list[Any] = []
        gone: list[Any] = []
        for key in chunk:
            values = changed[key]
            cell = existing.get(key)
            if cell is None:
                if values[0] > 0:  # a cell subtracted before it was added cannot be: nothing to keep
                    new.append(
                        model(
                            project_id=project_id,
                            **dict(zip(fields, key, strict=True)),
                            **dict(zip(sums, values, strict=True)),
                        )
                    )
                continue
            for name, value in zip(sums, values, strict=True):
                setattr(cell, name, getattr(cell, name) + value)
            (gone if cell.n <= 0 else updated).append(cell)
        if new:
            model._default_manager.bulk_create(new)
        if updated:
            model._default_manager.bulk_update(updated, list(sums))
        if gone:
            model._default_manager.filter(pk__in=[cell.pk for cell in gone]).delete()


def lock(project_id: int) -> None:
    """Bumps the project's figures version and holds its row lock to the end of the transaction:
    call it, inside a transaction, before writing the project's summary rows or cells.

    The project's queue state (``QueueState``) is locked first: a review submitted takes that lock
    before its assignment's save reaches the receivers here, and a review whose last decision
    submits it takes this one first (its revision's save) and that one after. Taken in one order
    by every writer, two reviews finishing at once wait for each other instead of deadlocking."""
    list(QueueState.objects.select_for_update().filter(project_id=project_id).values_list("pk"))
    states = QualityState.objects.filter(project_id=project_id)
    if not states.update(version=F("version") + 1):
        QualityState.objects.get_or_create(project_id=project_id)
        states.update(version=F("version") + 1)


def version(project_id: int) -> int:
    """The project's figures version (0 before its first change)."""
    return QualityState.objects.filter(project_id=project_id).values_list("version", flat=True).first() or 0


def clear(project_id: int) -> None:
    for model in (TurnCell, PairCell, FinalCell):
        model._default_manager.filter(project_id=project_id).delete()


def recompute(project_id: int) -> None:
    """Writes the project's cube from its summary rows (nothing when the project is gone)."""
    with transaction.atomic():
        if not Project.objects.filter(pk=project_id).exists():
            return
        lock(project_id)
        clear(project_id)
        delta = Delta(project_id).rows(None, 1)
        for model, keys, sums, cells in (
            (TurnCell, TURN_KEYS, TURN_SUMS, delta.turns),
            (PairCell, PAIR_KEYS, COUNTS, delta.pairs),
            (FinalCell, FINAL_KEYS, COUNTS, delta.finals),
        ):
            _create(model, keys, sums, project_id, cells)


def _create(model: type[Cell], keys: tuple[str, ...], sums: tuple[str, ...], project_id: int, cells: dict) -> None:
    fields = _fields(keys)
    made: list[Any] = [
        model(project_id=project_id, **dict(zip(fields, key, strict=True)), **dict(zip(sums, values, strict=True)))
        for key, values in cells.items()
        if values[0] > 0
    ]
    model._default_manager.bulk_create(made, batch_size=BATCH)


def bump(project_id: int) -> None:
    """A new figures version, in a transaction of its own (after a commit: see ``on_commit``)."""
    with transaction.atomic():
        lock(project_id)


def on_commit(project_id: int, using: str = "default", *, recompute_cube: bool = True) -> None:
    """Recomputes the project's cube (or, with ``recompute_cube=False``, only bumps its figures
    version) when the current transaction commits: once however many times it is asked in that
    transaction (rows deleted by a cascade ask once per row). Nothing happens if it rolls back."""
    connection = connections[using]
    pending = getattr(connection, "_quality_on_commit", None)
    # Django makes a new list of commit hooks at every commit and rollback: a set kept beside the
    # list it was made for is this transaction's.
    if pending is None or pending[0] is not connection.run_on_commit:
        pending = (connection.run_on_commit, set[tuple[int, bool]]())
        connection._quality_on_commit = pending  # type: ignore[attr-defined]
    if (project_id, recompute_cube) in pending[1]:
        return
    pending[1].add((project_id, recompute_cube))
    transaction.on_commit(lambda: (recompute if recompute_cube else bump)(project_id), using=using)
