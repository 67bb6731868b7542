"""The quality statistics against independent values: scikit-learn's kappa, scipy's Spearman and t
interval, the published worked example of Krippendorff's alpha, a plain word edit distance and hand
counts; the undefined cases; the bounds."""

from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import cohen_kappa_score

from quality import stats

# Figures are rounded to four decimals.
ROUNDED = 5.01e-5


def expand(confusion: np.ndarray, labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The (row score, column score) pairs a confusion table counts."""
    rows, cols = np.nonzero(confusion)
    reps = confusion[rows, cols]
    lab = np.asarray(labels)
    return np.repeat(lab[rows], reps), np.repeat(lab[cols], reps)


def random_table(seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(2, 9))
    labels = list(range(1, size + 1)) if seed % 3 else sorted(rng.choice(20, size=size, replace=False).tolist())
    # Mostly near the diagonal, with empty cells, like drafts against finals.
    base = rng.integers(0, 30, size=(size, size))
    gap = np.abs(np.subtract.outer(np.arange(size), np.arange(size)))
    table = (base * (gap <= int(rng.integers(0, size)))).astype(np.int64)
    table[rng.random((size, size)) < 0.2] = 0
    if table.sum() < 2:
        table[0, 0] += 1
        table[-1, -1] += 1
    return table, labels


def assert_json_figures(result: object) -> None:
    text = json.dumps(result, allow_nan=False)
    assert "NaN" not in text


def assert_fig_types(fig: stats.Fig) -> None:
    assert set(fig) == {"value", "n", "ci", "undefined"}
    assert type(fig["n"]) is int
    if fig["value"] is None:
        assert fig["ci"] is None
        assert isinstance(fig["undefined"], str)
        assert fig["undefined"]
    else:
        assert type(fig["value"]) is float
        assert math.isfinite(fig["value"])
        assert fig["undefined"] is None
    if fig["ci"] is not None:
        assert all(type(x) is float for x in fig["ci"])
        assert fig["ci"][0] <= fig["ci"][1]


# --------------------------------------------------------------------------------------------------
# Draft vs final agreement


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@pytest.mark.parametrize("seed", range(40))
def test_agreement_matches_sklearn_and_scipy_on_the_expanded_pairs(seed: int) -> None:
    table, labels = random_table(seed)
    draft, final = expand(table, labels)
    result = stats.agreement(table, labels, resamples=0)
    assert_json_figures(result)
    for fig in result.values():
        assert_fig_types(fig)
        assert fig["n"] == len(draft)

    assert result["exact"]["value"] == pytest.approx(np.mean(draft == final), abs=ROUNDED)
    assert result["within_1"]["value"] == pytest.approx(np.mean(np.abs(draft - final) <= 1), abs=ROUNDED)

    with np.errstate(divide="ignore", invalid="ignore"):
        expected_kappa = cohen_kappa_score(draft, final, labels=labels, weights="quadratic")
    if math.isnan(expected_kappa):
        assert result["kappa"]["value"] is None
    else:
        assert result["kappa"]["value"] == pytest.approx(expected_kappa, abs=ROUNDED)

    if len(set(draft)) > 1 and len(set(final)) > 1:
        assert result["spearman"]["value"] == pytest.approx(scipy_stats.spearmanr(draft, final).statistic, abs=ROUNDED)
    else:
        assert result["spearman"]["value"] is None

    differences = draft - final
    assert result["mean_diff"]["value"] == pytest.approx(differences.mean(), abs=ROUNDED)
    if differences.std() > 0:
        interval = scipy_stats.ttest_1samp(differences, 0).confidence_interval(0.95)
        assert result["mean_diff"]["ci"] == pytest.approx([interval.low, interval.high], abs=ROUNDED)


def test_kappa_and_rho_unrounded_match_to_many_digits() -> None:
    """The table formulas themselves, before rounding, on larger tables with ties everywhere."""
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        table = rng.integers(0, 400, size=(7, 7))
        draft, final = expand(table, list(range(1, 8)))
        kappa, rho = stats._kappa_rho(table[None].astype(np.float64))
        assert kappa[0] == pytest.approx(cohen_kappa_score(draft, final, weights="quadratic"), abs=1e-10)
        assert rho[0] == pytest.approx(scipy_stats.spearmanr(draft, final).statistic, abs=1e-10)


def test_draft_scoring_high_gives_a_positive_mean_difference() -> None:
    # draft 5 where the final is 4, eight times; draft 4 = final 4 twice
    table = np.zeros((7, 7), dtype=int)
    table[4, 3] = 8
    table[3, 3] = 2
    result = stats.agreement(table, list(range(1, 8)))
    assert result["mean_diff"]["value"] == pytest.approx(0.8)
    assert result["exact"]["value"] == pytest.approx(0.2)
    assert result["within_1"]["value"] == 1.0


def test_bootstrap_interval_contains_the_value_and_is_reproducible() -> None:
    rng = np.random.default_rng(7)
    table = rng.integers(0, 10, size=(7, 7)) + np.diag(rng.integers(10, 30, size=7))
    labels = list(range(1, 8))
    first = stats.agreement(table, labels, seed=0, resamples=500)
    again = stats.agreement(table, labels, seed=0, resamples=500)
    other = stats.agreement(table, labels, seed=1, resamples=500)
    assert first == again
    assert first["kappa"]["ci"] != other["kappa"]["ci"]
    for key in ("exact", "within_1", "kappa", "spearman", "mean_diff"):
        fig = first[key]
        assert fig["value"] is not None
        assert fig["ci"] is not None
        assert fig["ci"][0] <= fig["value"] <= fig["ci"][1], key
        assert fig["ci"][0] < fig["ci"][1], key


def test_bootstrap_interval_of_kappa_is_close_to_the_resampled_pairs() -> None:
    """The multinomial draw over cells is the same distribution as resampling the pairs: the interval
    from scipy's bootstrap over the expanded pairs lands near ours."""
    rng = np.random.default_rng(3)
    table = rng.integers(0, 12, size=(5, 5)) + np.diag([20, 20, 20, 20, 20])
    labels = [1, 2, 3, 4, 5]
    draft, final = expand(table, labels)
    ours = stats.agreement(table, labels, seed=0, resamples=2000)["kappa"]["ci"]
    theirs = scipy_stats.bootstrap(
        (draft, final),
        lambda a, b: cohen_kappa_score(a, b, labels=labels, weights="quadratic"),
        paired=True,
        vectorized=False,
        n_resamples=400,
        method="percentile",
        random_state=0,
    ).confidence_interval
    assert ours is not None
    assert ours[0] == pytest.approx(theirs.low, abs=0.03)
    assert ours[1] == pytest.approx(theirs.high, abs=0.03)


def test_agreement_of_an_empty_table_says_no_data() -> None:
    result = stats.agreement(np.zeros((7, 7), dtype=int), list(range(1, 8)))
    assert_json_figures(result)
    for fig in result.values():
        assert fig == {"value": None, "n": 0, "ci": None, "undefined": "no data"}


def test_all_scores_equal_leave_kappa_and_rho_undefined_never_zero() -> None:
    table = np.zeros((7, 7), dtype=int)
    table[4, 4] = 12
    result = stats.agreement(table, list(range(1, 8)))
    assert_json_figures(result)
    assert result["kappa"]["value"] is None
    assert "kappa is undefined" in str(result["kappa"]["undefined"])
    assert result["spearman"]["value"] is None
    assert result["spearman"]["undefined"] == "all scores equal: Spearman's rho is undefined"
    assert result["exact"]["value"] == 1.0
    assert result["mean_diff"]["value"] == 0.0
    assert result["mean_diff"]["ci"] == [0.0, 0.0]


def test_constant_drafts_leave_rho_undefined_and_kappa_at_chance_like_sklearn() -> None:
    table = np.zeros((7, 7), dtype=int)
    table[4, 2:6] = [1, 3, 4, 2]  # every draft said 5
    draft, final = expand(table, list(range(1, 8)))
    result = stats.agreement(table, list(range(1, 8)))
    assert result["spearman"]["undefined"] == "all draft scores equal: Spearman's rho is undefined"
    assert result["kappa"]["value"] == pytest.approx(cohen_kappa_score(draft, final, weights="quadratic"))
    assert result["kappa"]["value"] == 0.0
    table_t = table.T.copy()
    assert stats.agreement(table_t, list(range(1, 8)))["spearman"]["undefined"] == (
        "all final scores equal: Spearman's rho is undefined"
    )


def test_one_pair_has_values_but_no_bootstrap_interval() -> None:
    table = np.zeros((3, 3), dtype=int)
    table[0, 1] = 1
    result = stats.agreement(table, [1, 2, 3])
    assert_json_figures(result)
    assert result["exact"]["value"] == 0.0
    assert result["within_1"]["value"] == 1.0
    assert result["kappa"] == {"value": 0.0, "n": 1, "ci": None, "undefined": None}  # sklearn says 0 as well
    assert result["spearman"]["value"] is None
    assert result["mean_diff"] == {"value": -1.0, "n": 1, "ci": None, "undefined": None}


def test_agreement_bounds_name_the_argument() -> None:
    table = np.ones((7, 7), dtype=int)
    labels = list(range(1, 8))
    with pytest.raises(ValueError, match="resamples"):
        stats.agreement(table, labels, resamples=stats.MAX_RESAMPLES + 1)
    with pytest.raises(ValueError, match="resamples"):
        stats.agreement(table, labels, resamples=-1)
    with pytest.raises(ValueError, match="seed"):
        stats.agreement(table, labels, seed=-1)
    big = np.ones((stats.MAX_LABELS + 1, stats.MAX_LABELS + 1), dtype=int)
    with pytest.raises(ValueError, match="confusion"):
        stats.agreement(big, list(range(stats.MAX_LABELS + 1)))
    with pytest.raises(ValueError, match="confusion"):
        stats.agreement(np.ones((2, 3), dtype=int), [1, 2])
    with pytest.raises(ValueError, match="confusion"):
        stats.agreement(-table, labels)
    with pytest.raises(ValueError, match="confusion"):
        stats.agreement(table * 0.5, labels)
    with pytest.raises(ValueError, match="labels"):
        stats.agreement(table, labels[:-1])
    with pytest.raises(ValueError, match="labels"):
        stats.agreement(table, list(reversed(labels)))
    # the largest table and resamples allowed are accepted
    largest = np.zeros((stats.MAX_LABELS, stats.MAX_LABELS), dtype=int)
    np.fill_diagonal(largest, 1)
    largest[0, 1] = 1
    assert stats.agreement(largest, list(range(stats.MAX_LABELS)), resamples=stats.MAX_RESAMPLES)["kappa"]["ci"]


# --------------------------------------------------------------------------------------------------
# Rates, means, histograms


def wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 10), (10, 10), (3, 7), (81, 263), (1, 1), (500, 630_000)])
def test_proportion_is_the_rate_with_a_wilson_interval(k: int, n: int) -> None:
    fig = stats.proportion(k, n)
    assert_fig_types(fig)
    assert fig["value"] == pytest.approx(k / n, abs=ROUNDED)
    lo, hi = wilson(k, n)
    assert fig["ci"] == pytest.approx([max(lo, 0.0), min(hi, 1.0)], abs=ROUNDED)
    assert fig["n"] == n


def test_proportion_interval_is_scipys_wilson_interval() -> None:
    """The closed form gives scipy's Wilson bounds (binomtest's proportion_ci), edges included."""
    rng = np.random.default_rng(5)
    cases = [(0, 1), (1, 1), (0, 10), (10, 10), (81, 263), (500, 630_000)]
    for _ in range(300):
        n = int(rng.integers(1, 10**6))
        cases.append((int(rng.integers(0, n + 1)), n))
    for k, n in cases:
        reference = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        ci = stats.proportion(k, n)["ci"]
        assert ci is not None
        assert ci == pytest.approx([round(reference.low, 4), round(reference.high, 4)], abs=1e-4), (k, n)


def test_proportion_edges_and_bounds() -> None:
    assert stats.proportion(0, 0) == {"value": None, "n": 0, "ci": None, "undefined": "no data"}
    with pytest.raises(ValueError, match="k"):
        stats.proportion(3, 2)
    with pytest.raises(ValueError, match="n"):
        stats.proportion(0, -1)
    with pytest.raises(ValueError, match="k"):
        stats.proportion(True, 2)


def test_mean_of_values_and_of_a_histogram_agree_with_the_t_interval() -> None:
    values = [1, 2, 2, 3, 5, 7, 7, 7]
    fig = stats.mean(values)
    interval = scipy_stats.ttest_1samp(values, 0).confidence_interval(0.95)
    assert fig["value"] == pytest.approx(np.mean(values), abs=ROUNDED)
    assert fig["ci"] == pytest.approx([interval.low, interval.high], abs=ROUNDED)
    assert fig["n"] == 8
    assert stats.mean({1: 1, 2: 2, 3: 1, 5: 1, 7: 3, 6: 0}) == fig
    assert stats.mean(np.asarray(values, dtype=float)) == fig
    total = float(sum(values))
    squares = float(sum(v * v for v in values))
    assert stats.mean_from_sums(8, total, squares) == fig


def test_mean_edges() -> None:
    assert stats.mean([]) == {"value": None, "n": 0, "ci": None, "undefined": "no data"}
    assert stats.mean({}) == stats.mean([])
    assert stats.mean({4: 0}) == stats.mean([])
    assert stats.mean([0.25]) == {"value": 0.25, "n": 1, "ci": None, "undefined": None}
    assert stats.mean([3, 3, 3]) == {"value": 3.0, "n": 3, "ci": [3.0, 3.0], "undefined": None}
    assert stats.mean_from_sums(0, 0.0, 0.0)["undefined"] == "no data"
    with pytest.raises(ValueError, match="values_or_hist"):
        stats.mean([1.0, float("nan")])
    with pytest.raises(ValueError, match="values_or_hist"):
        stats.mean({1: -2})
    with pytest.raises(ValueError, match="values_or_hist"):
        stats.mean({1: 0.5})  # type: ignore[arg-type]  # a count that is not whole, sent on purpose


def test_histogram_counts_by_hand() -> None:
    edges = [round(0.1 * i, 1) for i in range(11)]
    values = [0.0, 0.0, 0.05, 0.1, 0.35, 0.999, 1.0]
    result = stats.histogram(values, edges)
    assert result == {"edges": edges, "counts": [3, 1, 0, 1, 0, 0, 0, 0, 0, 2]}
    assert_json_figures(result)
    assert stats.histogram([], [0, 1]) == {"edges": [0.0, 1.0], "counts": [0]}
    with pytest.raises(ValueError, match="edges"):
        stats.histogram(values, [0.0])
    with pytest.raises(ValueError, match="edges"):
        stats.histogram(values, [0.0, 0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="edges"):
        stats.histogram(values, list(range(stats.MAX_EDGES + 1)))
    with pytest.raises(ValueError, match="values"):
        stats.histogram([float("inf")], edges)


# --------------------------------------------------------------------------------------------------
# Reviewer vs reviewer, round to round


def test_pairwise_by_hand() -> None:
    table = np.zeros((7, 7), dtype=int)
    table[2, 2] = 3  # both 3
    table[2, 3] = 2  # 3 and 4
    table[6, 1] = 1  # 7 and 2
    result = stats.pairwise(table)
    assert result["exact"]["value"] == 0.5
    assert result["within_1"]["value"] == pytest.approx(5 / 6, abs=ROUNDED)
    assert result["exact"]["n"] == 6
    # labels with a gap: 1 and 3 are two apart
    assert stats.pairwise([[0, 2], [0, 0]], labels=[1, 3])["within_1"]["value"] == 0.0
    assert stats.pairwise([[0, 2], [0, 0]])["within_1"]["value"] == 1.0
    assert stats.pairwise(np.zeros((7, 7), dtype=int))["exact"]["undefined"] == "no data"
    with pytest.raises(ValueError, match="pairs_confusion"):
        stats.pairwise([[1, 2, 3]])


def test_change_by_hand() -> None:
    # before -> after: 1->1 once, 1->2 twice, 2->2 three times, 3->1 once
    table = [[1, 2, 0], [0, 3, 0], [1, 0, 0]]
    result = stats.change(table, labels=[1, 2, 3])
    assert_json_figures(result)
    assert result["improved"]["value"] == pytest.approx(2 / 7, abs=ROUNDED)
    assert result["same"]["value"] == pytest.approx(4 / 7, abs=ROUNDED)
    assert result["worse"]["value"] == pytest.approx(1 / 7, abs=ROUNDED)
    differences = [0, 1, 1, 0, 0, 0, -2]
    interval = scipy_stats.ttest_1samp(differences, 0).confidence_interval(0.95)
    assert result["mean_change"]["value"] == pytest.approx(0.0, abs=ROUNDED)
    assert result["mean_change"]["ci"] == pytest.approx([interval.low, interval.high], abs=ROUNDED)
    assert all(fig["n"] == 7 for fig in result.values())
    empty = stats.change(np.zeros((7, 7), dtype=int))
    assert all(fig["undefined"] == "no data" for fig in empty.values())
    with pytest.raises(ValueError, match="before_after_confusion"):
        stats.change(np.ones((stats.MAX_LABELS + 1,) * 2, dtype=int))


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the worked example: four
# observers, twelve units, values 1-5, missing entries. The paper gives nominal 0.743, ordinal 0.815,
# interval 0.849.
PUBLISHED = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def as_float(units: list[list[int | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in units], dtype=float)


def test_alpha_of_the_published_worked_example() -> None:
    data = as_float(PUBLISHED)
    # the data are typed in right: the package gives the paper's other two figures
    assert krippendorff.alpha(reliability_data=data, level_of_measurement="nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff.alpha(reliability_data=data, level_of_measurement="interval") == pytest.approx(0.849, abs=5e-4)
    fig = stats.krippendorff_alpha(PUBLISHED)
    assert_fig_types(fig)
    assert fig["value"] == pytest.approx(0.815, abs=5e-4)
    assert fig["n"] == 11  # the last unit has one value: not pairable
    ci, value = fig["ci"], fig["value"]
    assert ci is not None and value is not None
    assert ci[0] <= value <= ci[1]
    assert stats.krippendorff_alpha(data) == fig


def test_alpha_bootstrap_statistic_is_the_packages_alpha() -> None:
    """The vectorised ordinal alpha behind the interval gives the package's value on the data themselves."""
    for seed in range(8):
        rng = np.random.default_rng(seed)
        reviewers, units = int(rng.integers(2, 5)), int(rng.integers(5, 60))
        truth = rng.integers(1, 8, size=units)
        data = np.clip(truth + rng.integers(-2, 3, size=(reviewers, units)), 1, 7).astype(float)
        data[rng.random(data.shape) < 0.2] = np.nan
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
        fig = stats.krippendorff_alpha(data, resamples=0)
        assert fig["value"] == pytest.approx(expected, abs=ROUNDED)
        assert fig["ci"] is None

        pairable = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
        domain = np.unique(pairable[~np.isnan(pairable)])
        counts = np.stack([(pairable == v).sum(axis=0) for v in domain], axis=1)
        patterns, frequency = np.unique(counts, axis=0, return_counts=True)
        ours = stats._ordinal_alpha(patterns.astype(float), frequency[None].astype(float))[0]
        assert ours == pytest.approx(expected, abs=1e-10)


def profiles_of(data: np.ndarray, domain: list[int]) -> list[tuple[list[int], int]]:
    """Distinct units as (counts per score, how many units), as a GROUP BY would give them."""
    counts = np.stack([(data == v).sum(axis=0) for v in domain], axis=1)
    patterns, frequency = np.unique(counts, axis=0, return_counts=True)
    return [(p.tolist(), int(f)) for p, f in zip(patterns, frequency, strict=True)]


def test_alpha_from_counts_is_the_alpha_of_the_data() -> None:
    published = stats.krippendorff_alpha_counts(profiles_of(as_float(PUBLISHED), [1, 2, 3, 4, 5]))
    assert published == stats.krippendorff_alpha(PUBLISHED)
    assert published["value"] == pytest.approx(0.815, abs=5e-4)
    for seed in range(6):
        rng = np.random.default_rng(40 + seed)
        truth = rng.integers(1, 8, size=80)
        data = np.clip(truth + rng.integers(-1, 2, size=(3, 80)), 1, 7).astype(float)
        data[rng.random(data.shape) < 0.3] = np.nan
        # every score of the scale listed, used or not, as the database gives them
        from_counts = stats.krippendorff_alpha_counts(profiles_of(data, list(range(1, 8))), seed=seed)
        assert from_counts == stats.krippendorff_alpha(data, seed=seed)
        # in any order, and with a profile split in two
        shuffled = profiles_of(data, list(range(1, 8)))[::-1]
        counts, times = shuffled[0]
        shuffled[0:1] = [(counts, 1), (counts, times - 1)] if times > 1 else [(counts, times)]
        assert stats.krippendorff_alpha_counts(shuffled, seed=seed) == from_counts


def test_alpha_from_counts_edges_and_bounds() -> None:
    assert stats.krippendorff_alpha_counts([])["undefined"] == "no data"
    assert stats.krippendorff_alpha_counts([([0, 0, 0], 4)])["undefined"] == "no data"
    assert stats.krippendorff_alpha_counts([([1, 0, 0], 4), ([0, 1, 0], 9)]) == {
        "value": None,
        "n": 0,
        "ci": None,
        "undefined": stats.ALPHA_FEW_UNITS,
    }
    assert stats.krippendorff_alpha_counts([([0, 2, 0], 1), ([1, 1, 0], 0)])["n"] == 1
    assert stats.krippendorff_alpha_counts([([0, 2, 0], 5), ([0, 1, 0], 3)])["undefined"] == stats.ALPHA_ALL_EQUAL
    with pytest.raises(ValueError, match="profiles"):
        stats.krippendorff_alpha_counts([([1, 1], 2), ([1], 2)])
    with pytest.raises(ValueError, match="profiles"):
        stats.krippendorff_alpha_counts([([1, -1], 2)])
    with pytest.raises(ValueError, match="profiles"):
        stats.krippendorff_alpha_counts([([1, 1], -2)])
    with pytest.raises(ValueError, match="profiles"):
        stats.krippendorff_alpha_counts([([stats.MAX_REVIEWERS, 1], 1)])
    with pytest.raises(ValueError, match="profiles"):
        stats.krippendorff_alpha_counts([([1] * (stats.MAX_LABELS + 1), 1)])
    with pytest.raises(ValueError, match="resamples"):
        stats.krippendorff_alpha_counts([([1, 1], 2)], resamples=stats.MAX_RESAMPLES + 1)


def test_alpha_interval_is_reproducible_and_contains_the_value() -> None:
    rng = np.random.default_rng(11)
    truth = rng.integers(1, 8, size=200)
    data = np.clip(truth + rng.integers(-1, 2, size=(2, 200)), 1, 7).astype(float)
    first = stats.krippendorff_alpha(data, seed=0)
    assert first == stats.krippendorff_alpha(data, seed=0)
    assert first["ci"] != stats.krippendorff_alpha(data, seed=5)["ci"]
    assert first["value"] is not None
    assert first["ci"] is not None
    assert first["ci"][0] < first["value"] < first["ci"][1]
    assert first["n"] == 200


def test_alpha_undefined_cases_say_why() -> None:
    one_reviewer = stats.krippendorff_alpha([[1, 2, 3, 4]])
    assert one_reviewer["value"] is None
    assert "one reviewer" in str(one_reviewer["undefined"])
    one_unit = stats.krippendorff_alpha([[1, None, 3], [2, 5, None]])
    assert one_unit["value"] is None
    assert one_unit["n"] == 1
    assert "fewer than two units" in str(one_unit["undefined"])
    all_equal = stats.krippendorff_alpha([[4, 4, 4], [4, 4, None]])
    assert all_equal == {"value": None, "n": 2, "ci": None, "undefined": "all ratings equal: alpha is undefined"}
    nothing = stats.krippendorff_alpha([])
    assert nothing == {"value": None, "n": 0, "ci": None, "undefined": "no data"}
    assert stats.krippendorff_alpha(np.empty((1, 0))) == nothing
    assert stats.krippendorff_alpha([[None, None], [None, None]]) == nothing
    for fig in (one_reviewer, one_unit, all_equal, nothing):
        assert_fig_types(fig)
        assert_json_figures(fig)


def test_alpha_ignores_units_with_one_rating() -> None:
    base: list[list[int | None]] = [[1, 2, 3, 4, 5], [1, 3, 3, 4, 4]]
    with_singles = [row + extra for row, extra in zip(base, [[7, None], [None, 1]], strict=True)]
    assert stats.krippendorff_alpha(with_singles)["value"] == stats.krippendorff_alpha(base)["value"]
    assert stats.krippendorff_alpha(with_singles)["n"] == 5


def test_alpha_bounds_name_the_argument() -> None:
    with pytest.raises(ValueError, match="units"):
        stats.krippendorff_alpha([[1, 2]] * (stats.MAX_REVIEWERS + 1))
    with pytest.raises(ValueError, match="units"):
        stats.krippendorff_alpha(np.ones((2, stats.MAX_UNITS + 1)))
    with pytest.raises(ValueError, match="units"):
        stats.krippendorff_alpha([[1, 2], [1]])
    with pytest.raises(ValueError, match="units"):
        stats.krippendorff_alpha([[1.5, 2], [1, 2]])
    with pytest.raises(ValueError, match="units"):
        stats.krippendorff_alpha(np.arange(2 * 300).reshape(2, 300) // 2)  # 300 distinct ratings
    with pytest.raises(ValueError, match="resamples"):
        stats.krippendorff_alpha(PUBLISHED, resamples=stats.MAX_RESAMPLES + 1)
    with pytest.raises(ValueError, match="seed"):
        stats.krippendorff_alpha(PUBLISHED, seed=-3)


# --------------------------------------------------------------------------------------------------
# Word edit distance


def plain_levenshtein(a: list[str], b: list[str]) -> int:
    """The textbook full-table dynamic programme, for comparison."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        table[i][0] = i
    for j in range(len(b) + 1):
        table[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = min(
                table[i - 1][j] + 1,
                table[i][j - 1] + 1,
                table[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return table[len(a)][len(b)]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("the cat sat on the mat", "the cat sat on the mat", 0.0),
        ("the cat sat", "the dog sat", 1 / 3),
        ("a b c", "", 1.0),
        ("", "a b c", 1.0),
        ("", "", 0.0),
        ("   ", "\n", 0.0),
        ("k i t t e n", "s i t t i n g", 3 / 7),
        ("a b c", "a x b c", 1 / 4),
        ("a b", "b a", 1.0),
        ("a  b\nc", "a b c", 0.0),
        ("The answer", "the answer", 1 / 2),
        ("good, clear.", "good clear.", 1 / 2),
        ("one two three four", "zero one two three four five", 2 / 6),
    ],
)
def test_word_edit_distance_by_hand(a: str, b: str, expected: float) -> None:
    assert stats.word_edit_distance(a, b) == pytest.approx(expected)
    assert stats.word_edit_distance(b, a) == pytest.approx(expected)


def test_word_edit_distance_matches_the_plain_programme() -> None:
    rng = np.random.default_rng(5)
    vocabulary = [f"w{i}" for i in range(6)]
    for _ in range(200):
        a = [vocabulary[i] for i in rng.integers(0, 6, size=int(rng.integers(0, 25)))]
        b = [vocabulary[i] for i in rng.integers(0, 6, size=int(rng.integers(0, 25)))]
        longest = max(len(a), len(b))
        expected = plain_levenshtein(a, b) / longest if longest else 0.0
        assert stats.word_edit_distance(" ".join(a), " ".join(b)) == pytest.approx(expected)


def test_word_edit_distance_bound_names_the_argument() -> None:
    at_bound = " ".join(["w"] * stats.MAX_WORDS)
    past = at_bound + " w"
    assert stats.word_edit_distance(at_bound, at_bound) == 0.0
    with pytest.raises(ValueError, match=r"^a: at most 20,000 words"):
        stats.word_edit_distance(past, "w")
    with pytest.raises(ValueError, match=r"^b: at most 20,000 words"):
        stats.word_edit_distance("w", past)
