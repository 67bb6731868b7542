"""A figures dict of the shape ``quality.figures.compute`` returns, written by hand, for the tests of
the page's rendering that must not depend on the statistics: undefined figures, empty lists, odd
text."""

from __future__ import annotations

from typing import Any

CRITERIA = ["helpfulness", "honesty"]
LABELS = [1, 2, 3, 4, 5, 6, 7]


def fig(value: float | None, n: int, ci: list[float] | None = None, undefined: str | None = None) -> dict[str, Any]:
    return {"value": value, "n": n, "ci": ci, "undefined": undefined}


def undefined(why: str, n: int = 0) -> dict[str, Any]:
    return fig(None, n, None, why)


def criterion_figures(shift: int) -> dict[str, Any]:
    counts = [[0] * 7 for _ in LABELS]
    counts[3][3], counts[4][3 + shift], counts[5][4] = 5, 3, 2
    return {
        "n": 10,
        "exact": fig(0.5, 10, [0.2, 0.8]),
        "within_1": fig(0.9, 10, [0.7, 1.0]),
        "kappa": fig(0.41, 10, [0.05, 0.77]),
        "spearman": undefined("all final scores equal: Spearman's rho is undefined", 10),
        "mean_diff": fig(0.3, 10, [0.0, 0.6]),
        "confusion": {"labels": LABELS, "counts": counts},
        "draft_distribution": [sum(row) for row in counts],
        "final_distribution": [sum(row[j] for row in counts) for j in range(7)],
    }


def row(key: str, label: str, n: int) -> dict[str, Any]:
    return {
        "key": key,
        "label": label,
        "n": n,
        "accepted": fig(0.5, n, [0.2, 0.8]),
        "within_1": {c: fig(0.9, n, [0.7, 1.0]) for c in CRITERIA},
        "kappa": {"helpfulness": fig(0.41, n, [0.05, 0.77]), "honesty": undefined("all scores equal", n)},
        "critique_distance": fig(0.12, n, [0.05, 0.2]),
    }


def figures(slug: str = "test") -> dict[str, Any]:
    edges = [round(i / 10, 1) for i in range(11)]
    return {
        "project": slug,
        "filters": {
            "criterion": None,
            "prompt_version": None,
            "model": None,
            "import": None,
            "since": None,
            "until": None,
        },
        "options": {
            "criteria": CRITERIA,
            "prompt_versions": ["v1", "v2"],
            "models": ["llava-1.5", "<b>odd</b> model"],
            "imports": [{"id": 1, "label": "#1 dress.jsonl"}],
        },
        "scale": {"min": 1, "max": 7},
        "drafter": {
            "n": 10,
            "decisions": {
                "accepted": fig(0.5, 10, [0.2, 0.8]),
                "edited": fig(0.4, 10, [0.1, 0.7]),
                "rejected": fig(0.1, 10, [0.0, 0.3]),
            },
            "criteria": {"helpfulness": criterion_figures(1), "honesty": criterion_figures(0)},
            "text": {
                "critique": {
                    "mean": fig(0.12, 10, [0.05, 0.2]),
                    "histogram": {"edges": edges, "counts": [5, 2, 1, 1, 0, 0, 0, 0, 0, 1]},
                },
                "refinement": {
                    "mean": undefined("no edited refinement"),
                    "histogram": {"edges": edges, "counts": [0] * 10},
                },
            },
            "by": {
                "prompt_version": [row("v1", "v1", 6), row("v2", "v2", 4)],
                "model": [row("sim", "annotator-simulator", 10)],
                "import": [row("1", "#1 dress.jsonl", 10)],
            },
            "over_time": [
                {"prompt_version": "v1", "week": "2026-11-02", "n": 3, "within_1": 0.66, "kappa": 0.2},
                {"prompt_version": "v1", "week": "2026-11-09", "n": 3, "within_1": 1.0, "kappa": None},
                {"prompt_version": "v2", "week": "2026-11-09", "n": 4, "within_1": 0.75, "kappa": 0.5},
            ],
        },
        "reviewers": {
            "n": 2,
            "alpha": {
                "helpfulness": fig(0.62, 2, [0.1, 0.9]),
                "honesty": undefined("fewer than 2 units with 2 values", 2),
            },
            "pairwise": {c: {"exact": fig(0.5, 2, [0.0, 1.0]), "within_1": fig(1.0, 2, [1.0, 1.0])} for c in CRITERIA},
            "decisions": fig(0.5, 2, [0.0, 1.0]),
            "annotators": [
                {
                    "username": "ann",
                    "reviews": 7,
                    "median_seconds": 42.5,
                    "accepted": fig(0.57, 7, [0.2, 0.9]),
                    "agreement": fig(0.5, 2, [0.0, 1.0]),
                },
                {
                    "username": "<i>bob</i>",
                    "reviews": 3,
                    "median_seconds": None,
                    "accepted": fig(0.33, 3, [0.0, 1.0]),
                    "agreement": undefined("no shared samples"),
                },
            ],
        },
        "models": [
            {
                "model": "llava-1.5",
                "source": "imported",
                "n": 6,
                "scores": {c: {"mean": fig(4.5, 6, [3.9, 5.1]), "human": 4, "draft": 2} for c in CRITERIA},
                "interaction": {
                    c: {
                        "n": 3,
                        "mean_change": fig(0.67, 3, [0.0, 1.33]),
                        "improved": fig(0.67, 3, [0.0, 1.0]),
                        "same": fig(0.33, 3, [0.0, 1.0]),
                        "worse": fig(0.0, 3, [0.0, 0.0]),
                    }
                    for c in CRITERIA
                },
            },
            {
                "model": "<b>odd</b> model",
                "source": "generated",
                "n": 4,
                "scores": {c: {"mean": fig(3.5, 4, [3.0, 4.0]), "human": 0, "draft": 4} for c in CRITERIA},
                "interaction": {
                    c: {
                        "n": 0,
                        "mean_change": undefined("no second round"),
                        "improved": undefined("no second round"),
                        "same": undefined("no second round"),
                        "worse": undefined("no second round"),
                    }
                    for c in CRITERIA
                },
            },
        ],
    }
