"""Statistics behind the quality figures: pure functions over counts, no Django.

Every figure is a ``Fig``: a value, the *n* behind it, a 95 % interval and, when the figure cannot
be computed, ``value=None`` with the reason in ``undefined`` (never NaN, never a 0 in its place).
All numbers are Python floats rounded to four decimals, so a ``Fig`` goes into JSON as it is.

Intervals, by kind of figure:

- rates (exact, within one, accepted, improved...): Wilson score interval (``scipy.stats.binomtest``),
  which stays inside [0, 1] and is honest at 0 of n and n of n;
- means and mean differences: Student's t interval (``scipy.stats.t``), the paired-difference interval
  when the values are differences;
- Cohen's kappa, Spearman's rho and Krippendorff's alpha: seeded percentile bootstrap. The n pairs (or
  units) are resampled with replacement, which for counted data is a multinomial draw over the cells of
  the table (or over the distinct units), so figures computed from aggregate counts get intervals without
  per-row data. ``numpy.random.default_rng(seed)`` makes them reproducible; resamples in which the
  figure is undefined (all scores equal) are left out of the interval.

Quadratic weighted kappa and Spearman's rho are computed from the confusion matrix (the second as the
Pearson correlation of the mid-ranks, which is what ``scipy.stats.spearmanr`` does on the expanded
pairs); tests compare both with ``sklearn.metrics.cohen_kappa_score(weights="quadratic")`` and
``scipy.stats.spearmanr``. Krippendorff's alpha of reliability data is the ``krippendorff`` package's
(ordinal); from counts grouped by the database it is the same coincidence-matrix formula the bootstrap
uses, which the tests check against the package.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import krippendorff
import numpy as np
import numpy.typing as npt
from scipy import stats

CONFIDENCE = 0.95
DIGITS = 4

# Bounds: the inputs come from the database, but a figure must never be a way to make a request slow.
MAX_RESAMPLES = 2000
MAX_LABELS = 101  # rows / columns of a confusion matrix, distinct ratings for alpha
MAX_LABEL_ABS = 1_000_000
# Words per side of a word edit distance. Critique and refinement are capped upstream at 20,000
# characters (feedback.limits.TEXT_MAX_CHARS), at most 10,000 words; twice that leaves room. The
# distance is an O(n*m) dynamic programme, vectorised per row, after the common prefix and suffix are
# dropped: about 0.5 s for two unrelated texts of 10,000 words, 1.8 s at this bound (one core of two
# shared); texts that share most of their words cost far less.
MAX_WORDS = 20_000
MAX_REVIEWERS = 100  # rows of the reliability data (review lanes)
MAX_UNITS = 1_000_000  # columns of the reliability data
MAX_VALUES = 10_000_000  # values given to mean() / histogram()
MAX_EDGES = 102  # 101 bins

NO_DATA = "no data"


class Fig(TypedDict):
    value: float | None
    n: int
    ci: list[float] | None
    undefined: str | None


# --------------------------------------------------------------------------------------------------
# Fig helpers


def _num(x: float) -> float:
    return round(float(x), DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _fig(value: float, n: int, ci: tuple[float, float] | None = None) -> Fig:
    return {
        "value": _num(value),
        "n": int(n),
        "ci": None if ci is None else [_num(ci[0]), _num(ci[1])],
        "undefined": None,
    }


def undefined(n: int, why: str) -> Fig:
    """A figure that cannot be computed, with the reason a reader sees instead of a number."""
    return {"value": None, "n": int(n), "ci": None, "undefined": why}


def _percentile_ci(samples: npt.NDArray[np.float64]) -> tuple[float, float] | None:
    defined = samples[~np.isnan(samples)]
    if defined.size == 0:
        return None
    alpha = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(defined, [alpha, 100 - alpha])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------------
# Input checks: each refusal names the argument.


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}: an integer is required (got {type(value).__name__})")
    value = int(value)
    if value < lo:
        raise ValueError(f"{name}: at least {lo:,} (got {value:,})")
    if hi is not None and value > hi:
        raise ValueError(f"{name}: at most {hi:,} (got {value:,})")
    return value


def _check_labels(name: str, labels: Sequence[int] | None, size: int) -> npt.NDArray[np.int64]:
    if labels is None:
        return np.arange(size, dtype=np.int64)
    if len(labels) != size:
        raise ValueError(f"{name}: {size} labels are needed for a {size}x{size} table (got {len(labels)})")
    values = [_check_int(name, x, -MAX_LABEL_ABS, MAX_LABEL_ABS) for x in labels]
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name}: labels must be strictly increasing")
    return np.asarray(values, dtype=np.int64)


def _check_table(name: str, table: Any) -> npt.NDArray[np.int64]:
    array = np.asarray(table)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"{name}: a square table of counts is required (got shape {array.shape})")
    if not 1 <= array.shape[0] <= MAX_LABELS:
        raise ValueError(f"{name}: between 1 and {MAX_LABELS} labels (got {array.shape[0]})")
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name}: counts must be numbers")
    if array.dtype.kind == "f" and not (np.all(np.isfinite(array)) and np.all(array == np.round(array))):
        raise ValueError(f"{name}: counts must be whole numbers")
    counts = array.astype(np.int64)
    if np.any(counts < 0):
        raise ValueError(f"{name}: counts cannot be negative")
    return counts


def _check_resamples(resamples: int) -> int:
    return _check_int("resamples", resamples, 0, MAX_RESAMPLES)


def _check_seed(seed: int) -> int:
    return _check_int("seed", seed, 0)


# --------------------------------------------------------------------------------------------------
# Rates and means


def proportion(k: int, n: int) -> Fig:
    """k of n as a rate with its 95 % Wilson interval; n = 0 is undefined ("no data")."""
    n = _check_int("n", n, 0)
    k = _check_int("k", k, 0, n)
    if n == 0:
        return undefined(0, NO_DATA)
    return _fig(k / n, n, _wilson(k, n))


# The normal quantile of the 95 % two-sided interval.
_Z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval, in closed form: scipy's binomtest(k, n).proportion_ci(method="wilson")
    gives the same bounds but computes an exact p-value first, a quarter of a millisecond a rate (the
    tests compare the two)."""
    p = k / n
    z2 = _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _t_interval(n: int, mean_value: float, sd: float) -> tuple[float, float] | None:
    if n < 2:
        return None
    if sd == 0:
        return mean_value, mean_value
    lo, hi = stats.t.interval(CONFIDENCE, n - 1, loc=mean_value, scale=sd / math.sqrt(n))
    return float(lo), float(hi)


def mean(values_or_hist: Sequence[float] | Mapping[int, int] | Mapping[float, int] | npt.NDArray[Any]) -> Fig:
    """The mean with its 95 % t interval, from a list of values or a histogram ``{value: count}``.

    One value has no interval (``ci`` None); none is undefined ("no data")."""
    if isinstance(values_or_hist, Mapping):
        if len(values_or_hist) > MAX_VALUES:
            raise ValueError(f"values_or_hist: at most {MAX_VALUES:,} distinct values")
        values = np.asarray(list(values_or_hist.keys()), dtype=np.float64)
        counts = np.asarray(list(values_or_hist.values()))
        if counts.size and (counts.dtype.kind not in "iu" or np.any(counts < 0)):
            raise ValueError("values_or_hist: counts must be non-negative integers")
        weights = counts.astype(np.float64)
    else:
        values = np.asarray(values_or_hist, dtype=np.float64).ravel()
        if values.size > MAX_VALUES:
            raise ValueError(f"values_or_hist: at most {MAX_VALUES:,} values (got {values.size:,})")
        weights = np.ones_like(values)
    if values.size and not np.all(np.isfinite(values)):
        raise ValueError("values_or_hist: values must be finite numbers")
    n = int(weights.sum())
    if n == 0:
        return undefined(0, NO_DATA)
    m = float(np.dot(values, weights) / n)
    sd = math.sqrt(float(np.dot(weights, (values - m) ** 2)) / (n - 1)) if n > 1 else 0.0
    return _fig(m, n, _t_interval(n, m, sd))


def mean_from_sums(n: int, total: float, total_sq: float) -> Fig:
    """``mean`` from aggregates a database gives cheaply: the count, the sum and the sum of squares."""
    n = _check_int("n", n, 0)
    if not (math.isfinite(total) and math.isfinite(total_sq)):
        raise ValueError("total: finite sums are required")
    if n == 0:
        return undefined(0, NO_DATA)
    m = total / n
    sd = math.sqrt(max(0.0, (total_sq - n * m * m) / (n - 1))) if n > 1 else 0.0
    return _fig(m, n, _t_interval(n, m, sd))


def histogram(values: Sequence[float] | npt.NDArray[Any], edges: Sequence[float]) -> dict[str, list[Any]]:
    """Counts of values per bin; the last bin includes its right edge, values outside the edges are
    not counted."""
    edge_array = np.asarray(edges, dtype=np.float64).ravel()
    if not 2 <= edge_array.size <= MAX_EDGES:
        raise ValueError(f"edges: between 2 and {MAX_EDGES} edges (got {edge_array.size})")
    if not np.all(np.isfinite(edge_array)) or np.any(np.diff(edge_array) <= 0):
        raise ValueError("edges: finite and strictly increasing")
    value_array = np.asarray(values, dtype=np.float64).ravel()
    if value_array.size > MAX_VALUES:
        raise ValueError(f"values: at most {MAX_VALUES:,} values (got {value_array.size:,})")
    if not np.all(np.isfinite(value_array)):
        raise ValueError("values: values must be finite numbers")
    counts, _ = np.histogram(value_array, bins=edge_array)
    return {"edges": [_num(e) for e in edge_array], "counts": [int(c) for c in counts]}


# --------------------------------------------------------------------------------------------------
# Tables of paired scores


def _kappa_rho(tables: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Quadratic weighted kappa and Spearman's rho of each table in ``tables`` (B, L, L), all holding
    the same number of pairs; NaN where undefined."""
    size = tables.shape[1]
    n = float(tables[0].sum())
    row_m = tables.sum(axis=2)  # (B, L): how many pairs have each row score
    col_m = tables.sum(axis=1)

    index = np.arange(size, dtype=np.float64)
    weights = (index[:, None] - index[None, :]) ** 2
    observed = (tables.reshape(len(tables), -1) @ weights.ravel()) / n
    expected = ((row_m @ weights) * col_m).sum(axis=1) / (n * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(expected > 0, 1 - observed / np.where(expected > 0, expected, 1), np.nan)

    # Mid-ranks of each label among the n row (column) scores, then Pearson's r of the ranks.
    row_rank = np.cumsum(row_m, axis=1) - row_m + (row_m + 1) / 2
    col_rank = np.cumsum(col_m, axis=1) - col_m + (col_m + 1) / 2
    row_dev = row_rank - ((row_m * row_rank).sum(axis=1) / n)[:, None]
    col_dev = col_rank - ((col_m * col_rank).sum(axis=1) / n)[:, None]
    cov = (np.matmul(tables, col_dev[:, :, None])[:, :, 0] * row_dev).sum(axis=1)
    var_rows = (row_m * row_dev**2).sum(axis=1)
    var_cols = (col_m * col_dev**2).sum(axis=1)
    varied = ((row_m > 0).sum(axis=1) > 1) & ((col_m > 0).sum(axis=1) > 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(varied, np.clip(cov / np.sqrt(var_rows * var_cols), -1, 1), np.nan)
    return kappa, rho


def _bootstrap_kappa_rho(
    counts: npt.NDArray[np.int64], *, seed: int, resamples: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Kappa and rho of ``resamples`` tables of n pairs drawn with replacement from the n pairs of
    ``counts``: a multinomial draw over the non-empty cells."""
    rng = np.random.default_rng(seed)
    flat = counts.ravel()
    cells = np.flatnonzero(flat)
    n = int(flat.sum())
    chunk = max(1, min(resamples, 1_000_000 // flat.size))
    kappas, rhos = [], []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        tables = np.zeros((size, flat.size))
        tables[:, cells] = rng.multinomial(n, flat[cells] / n, size=size)
        kappa, rho = _kappa_rho(tables.reshape(size, *counts.shape))
        kappas.append(kappa)
        rhos.append(rho)
    return np.concatenate(kappas), np.concatenate(rhos)


def _differences(counts: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]) -> dict[int, int]:
    """Counts of (column label - row label) over the table."""
    diff = labels[None, :] - labels[:, None]
    out: dict[int, int] = {}
    for d, c in zip(diff.ravel().tolist(), counts.ravel().tolist(), strict=True):
        if c:
            out[d] = out.get(d, 0) + c
    return out


def _exact_within_1(counts: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]) -> dict[str, Fig]:
    n = int(counts.sum())
    gap = np.abs(labels[:, None] - labels[None, :])
    return {
        "exact": proportion(int(np.trace(counts)), n),
        "within_1": proportion(int(counts[gap <= 1].sum()), n),
    }


def agreement(
    confusion: npt.NDArray[Any] | Sequence[Sequence[int]],
    labels: Sequence[int],
    *,
    seed: int = 0,
    resamples: int = 1000,
) -> dict[str, Fig]:
    """Agreement of paired scores from their confusion table: rows = draft score, columns = final score.

    Keys: ``exact`` and ``within_1`` (rates, Wilson intervals), ``kappa`` (quadratic weighted Cohen's
    kappa, weights by the labels' positions as ``cohen_kappa_score`` does), ``spearman`` (rho), both with
    seeded bootstrap intervals, and ``mean_diff`` (mean of draft - final: positive when the drafts score
    high; paired t interval). ``resamples=0`` gives no bootstrap intervals."""
    counts = _check_table("confusion", confusion)
    label_values = _check_labels("labels", labels, counts.shape[0])
    seed = _check_seed(seed)
    resamples = _check_resamples(resamples)
    n = int(counts.sum())
    out = _exact_within_1(counts, label_values)
    if n == 0:
        return {
            **out,
            "kappa": undefined(0, NO_DATA),
            "spearman": undefined(0, NO_DATA),
            "mean_diff": undefined(0, NO_DATA),
        }

    kappa, rho = (float(x[0]) for x in _kappa_rho(counts[None].astype(np.float64)))
    boot_kappa = boot_rho = np.zeros(0)
    if resamples and n >= 2:
        boot_kappa, boot_rho = _bootstrap_kappa_rho(counts, seed=seed, resamples=resamples)

    if math.isnan(kappa):
        out["kappa"] = undefined(n, "all draft and final scores are the same one score: kappa is undefined")
    else:
        out["kappa"] = _fig(kappa, n, _percentile_ci(boot_kappa))

    if math.isnan(rho):
        draft_same = np.count_nonzero(counts.sum(axis=1)) <= 1
        final_same = np.count_nonzero(counts.sum(axis=0)) <= 1
        which = "all scores" if draft_same and final_same else "all draft scores" if draft_same else "all final scores"
        out["spearman"] = undefined(n, f"{which} equal: Spearman's rho is undefined")
    else:
        out["spearman"] = _fig(rho, n, _percentile_ci(boot_rho))

    # draft - final = -(column label - row label)
    out["mean_diff"] = mean({-d: c for d, c in _differences(counts, label_values).items()})
    return {key: out[key] for key in ("exact", "within_1", "kappa", "spearman", "mean_diff")}


def pairwise(
    pairs_confusion: npt.NDArray[Any] | Sequence[Sequence[int]], *, labels: Sequence[int] | None = None
) -> dict[str, Fig]:
    """Exact and within-one agreement of two reviewers' scores from their confusion table (order of
    the two does not matter). ``labels`` default to consecutive scores."""
    counts = _check_table("pairs_confusion", pairs_confusion)
    return _exact_within_1(counts, _check_labels("labels", labels, counts.shape[0]))


def change(
    before_after_confusion: npt.NDArray[Any] | Sequence[Sequence[int]], *, labels: Sequence[int] | None = None
) -> dict[str, Fig]:
    """Score change from one round to the next: rows = before, columns = after.

    ``mean_change`` is the mean of after - before (paired t interval); ``improved`` / ``same`` /
    ``worse`` are the shares that went up, stayed and went down. ``labels`` default to consecutive
    scores."""
    counts = _check_table("before_after_confusion", before_after_confusion)
    label_values = _check_labels("labels", labels, counts.shape[0])
    n = int(counts.sum())
    diffs = _differences(counts, label_values)
    up = sum(c for d, c in diffs.items() if d > 0)
    down = sum(c for d, c in diffs.items() if d < 0)
    return {
        "mean_change": mean(diffs),
        "improved": proportion(up, n),
        "same": proportion(n - up - down, n),
        "worse": proportion(down, n),
    }


# --------------------------------------------------------------------------------------------------
# Reviewer vs reviewer


def _reliability(units: Any) -> npt.NDArray[np.float64]:
    if isinstance(units, np.ndarray):
        data = units.astype(np.float64)
    else:
        rows = list(units)
        if len(rows) > MAX_REVIEWERS:
            raise ValueError(f"units: at most {MAX_REVIEWERS} reviewers (got {len(rows)})")
        width = len(rows[0]) if rows else 0
        if any(len(row) != width for row in rows):
            raise ValueError("units: every reviewer's row needs one entry per unit")
        if width > MAX_UNITS:
            raise ValueError(f"units: at most {MAX_UNITS:,} units (got {width:,})")
        data = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
        data = data.reshape(len(rows), width)
    if data.ndim != 2:
        raise ValueError("units: a table of reviewers x units is required")
    if data.shape[0] > MAX_REVIEWERS:
        raise ValueError(f"units: at most {MAX_REVIEWERS} reviewers (got {data.shape[0]})")
    if data.shape[1] > MAX_UNITS:
        raise ValueError(f"units: at most {MAX_UNITS:,} units (got {data.shape[1]:,})")
    present = data[~np.isnan(data)]
    if np.any(np.isinf(present)) or np.any(present != np.round(present)):
        raise ValueError("units: ratings must be whole numbers or None")
    return data


def _ordinal_alpha(patterns: npt.NDArray[np.float64], draws: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ordinal alpha for each row of ``draws`` (how many times each distinct unit, a row of
    ``patterns`` = value counts, is taken); NaN where only one value occurs."""
    size = patterns.shape[1]
    pairable = patterns.sum(axis=1)
    per_unit = (patterns[:, :, None] * patterns[:, None, :] - patterns[:, :, None] * np.eye(size)) / (pairable - 1)[
        :, None, None
    ]
    o = (draws @ per_unit.reshape(len(patterns), -1)).reshape(-1, size, size)
    n_v = o.sum(axis=2)
    n_total = n_v.sum(axis=1)
    # delta^2(c, k) = (sum of n_g for g from c to k - (n_c + n_k) / 2)^2
    cum = np.concatenate([np.zeros((len(draws), 1)), np.cumsum(n_v, axis=1)], axis=1)
    index = np.arange(size)
    lo = np.minimum(index[:, None], index[None, :])
    hi = np.maximum(index[:, None], index[None, :])
    between = cum[:, hi + 1] - cum[:, lo]
    delta = (between - (n_v[:, :, None] + n_v[:, None, :]) / 2) ** 2
    e = (n_v[:, :, None] * n_v[:, None, :] - n_v[:, :, None] * np.eye(size)) / (n_total - 1)[:, None, None]
    disagreement_expected = (e * delta).sum(axis=(1, 2))
    disagreement_observed = (o * delta).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            disagreement_expected > 0,
            1 - disagreement_observed / np.where(disagreement_expected > 0, disagreement_expected, 1),
            np.nan,
        )


ALPHA_ONE_REVIEWER = "one reviewer: alpha needs two or more reviews of a unit"
ALPHA_FEW_UNITS = "fewer than two units reviewed twice: alpha is undefined"
ALPHA_ALL_EQUAL = "all ratings equal: alpha is undefined"


def _alpha_interval(
    patterns: npt.NDArray[np.int64], frequency: npt.NDArray[np.int64], *, seed: int, resamples: int
) -> tuple[float, float] | None:
    """Percentile interval of ordinal alpha over resamples of the units, drawn as a multinomial over the
    distinct units (``patterns``: value counts per unit, ``frequency``: how many units have them)."""
    if not resamples:
        return None
    n = int(frequency.sum())
    patterns_f = patterns.astype(np.float64)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, 1_000_000 // max(len(patterns), patterns.shape[1] ** 2)))
    samples = []
    for start in range(0, resamples, chunk):
        draws = rng.multinomial(n, frequency / n, size=min(chunk, resamples - start)).astype(np.float64)
        samples.append(_ordinal_alpha(patterns_f, draws))
    return _percentile_ci(np.concatenate(samples))


def krippendorff_alpha(units: Any, *, seed: int = 0, resamples: int = 1000) -> Fig:
    """Krippendorff's alpha, ordinal, of reliability data: rows = reviewers (review lanes), columns =
    units, None (or NaN) where a reviewer gave no rating. *n* is the number of units rated at least twice.

    The value is the ``krippendorff`` package's; the interval a seeded percentile bootstrap over those
    units. From counts already grouped by a database, ``krippendorff_alpha_counts`` is cheaper."""
    seed = _check_seed(seed)
    resamples = _check_resamples(resamples)
    data = _reliability(units)
    reviewers = data.shape[0]
    rated = ~np.isnan(data)
    per_unit = rated.sum(axis=0)
    pairable_units = data[:, per_unit >= 2]
    n = int(pairable_units.shape[1])
    if not rated.any():
        return undefined(0, NO_DATA)
    if reviewers < 2:
        return undefined(n, ALPHA_ONE_REVIEWER)
    if n < 2:
        return undefined(n, ALPHA_FEW_UNITS)
    domain = np.unique(pairable_units[~np.isnan(pairable_units)])
    if domain.size > MAX_LABELS:
        raise ValueError(f"units: at most {MAX_LABELS} distinct ratings (got {domain.size})")
    if domain.size < 2:
        return undefined(n, ALPHA_ALL_EQUAL)

    value_counts = np.zeros((n, domain.size), dtype=np.int64)
    columns = np.broadcast_to(np.arange(n), pairable_units.shape)
    present = ~np.isnan(pairable_units)
    np.add.at(value_counts, (columns[present], np.searchsorted(domain, pairable_units[present])), 1)
    value = float(krippendorff.alpha(value_counts=value_counts, value_domain=domain, level_of_measurement="ordinal"))
    ci = None
    if resamples:
        patterns, frequency = np.unique(value_counts, axis=0, return_counts=True)
        ci = _alpha_interval(patterns, frequency, seed=seed, resamples=resamples)
    return _fig(value, n, ci)


def krippendorff_alpha_counts(
    profiles: Sequence[tuple[Sequence[int], int]], *, seed: int = 0, resamples: int = 1000
) -> Fig:
    """``krippendorff_alpha`` from distinct units, as a database groups them: each profile is (how many
    ratings of each score the unit got, in score order; how many units have exactly those counts).

    The value comes from the coincidence matrix of the profiles (the formula the bootstrap uses), which
    the tests check against the ``krippendorff`` package; units with fewer than two ratings are left out."""
    seed = _check_seed(seed)
    resamples = _check_resamples(resamples)
    if len(profiles) > MAX_UNITS:
        raise ValueError(f"profiles: at most {MAX_UNITS:,} distinct units (got {len(profiles):,})")
    if not profiles:
        return undefined(0, NO_DATA)
    width = len(profiles[0][0])
    if not 1 <= width <= MAX_LABELS:
        raise ValueError(f"profiles: between 1 and {MAX_LABELS} scores per profile (got {width})")
    if any(len(counts) != width for counts, _ in profiles):
        raise ValueError("profiles: every profile needs one count per score")
    patterns = np.asarray([counts for counts, _ in profiles])
    frequency = np.asarray([times for _, times in profiles])
    for name, array in (("profiles", patterns), ("profiles", frequency)):
        if array.dtype.kind not in "iu" or np.any(array < 0):
            raise ValueError(f"{name}: counts must be non-negative integers")
    patterns = patterns.astype(np.int64)
    frequency = frequency.astype(np.int64)
    ratings = patterns.sum(axis=1)
    if np.any(ratings > MAX_REVIEWERS):
        raise ValueError(f"profiles: at most {MAX_REVIEWERS} ratings of one unit")
    if not np.any((ratings > 0) & (frequency > 0)):
        return undefined(0, NO_DATA)
    keep = (ratings >= 2) & (frequency > 0)
    patterns, frequency = patterns[keep], frequency[keep]
    n = int(frequency.sum())
    if n < 2:
        return undefined(n, ALPHA_FEW_UNITS)
    used = (patterns * frequency[:, None]).sum(axis=0) > 0
    if used.sum() < 2:
        return undefined(n, ALPHA_ALL_EQUAL)
    # One row per distinct unit, in a fixed order: the interval then does not depend on the order (or
    # the splitting) of the profiles given.
    patterns, inverse = np.unique(patterns[:, used], axis=0, return_inverse=True)
    frequency = np.bincount(inverse.ravel(), weights=frequency, minlength=len(patterns)).astype(np.int64)
    value = float(_ordinal_alpha(patterns.astype(np.float64), frequency[None].astype(np.float64))[0])
    return _fig(value, n, _alpha_interval(patterns, frequency, seed=seed, resamples=resamples))


# --------------------------------------------------------------------------------------------------
# Text change


def word_edit_distance(a: str, b: str) -> float:
    """Word-level Levenshtein distance between two texts divided by the longer one's word count:
    0 = unchanged, 1 = nothing kept. Words are split on whitespace and compared exactly (case and
    punctuation count). Both empty is 0. At most ``MAX_WORDS`` words each side. Not rounded: it feeds
    means and histograms."""
    words_a = a.split()
    words_b = b.split()
    for name, words in (("a", words_a), ("b", words_b)):
        if len(words) > MAX_WORDS:
            raise ValueError(f"{name}: at most {MAX_WORDS:,} words (got {len(words):,})")
    longest = max(len(words_a), len(words_b))
    if longest == 0:
        return 0.0
    return _levenshtein(words_a, words_b) / longest


def _levenshtein(a: list[str], b: list[str]) -> int:
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    ids: dict[str, int] = {}
    seq_a = np.fromiter((ids.setdefault(w, len(ids)) for w in a), dtype=np.int64, count=len(a))
    seq_b = np.fromiter((ids.setdefault(w, len(ids)) for w in b), dtype=np.int64, count=len(b))
    offsets = np.arange(len(b) + 1, dtype=np.int64)
    previous = offsets.copy()
    current = np.empty_like(previous)
    for i, word in enumerate(seq_a, start=1):
        # substitution (or match) and deletion, then insertion along the row as a running minimum
        np.minimum(previous[:-1] + (seq_b != word), previous[1:] + 1, out=current[1:])
        current[0] = i
        np.minimum.accumulate(current - offsets, out=current)
        current += offsets
        previous, current = current, previous
    return int(previous[-1])
