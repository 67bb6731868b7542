"""The Quality page's tables, read from the figures dict (``quality.figures.compute``): lists in the
order the page shows them, since a template cannot look a criterion up in a dict by name. The plots
are drawn in the browser from the same dict (``quality/static/quality/quality.js``)."""

from __future__ import annotations

from typing import Any

BREAKDOWNS = (("prompt_version", "Prompt version"), ("model", "Drafting model"), ("import", "Import"))
CHANGES = ("mean_change", "improved", "same", "worse")


def criteria_of(figures: dict[str, Any]) -> list[str]:
    """The criteria the figures hold, in the project's order (the filter may have kept one)."""
    held = figures["drafter"]["criteria"]
    chosen = figures["filters"].get("criterion")
    ordered = [c for c in figures["options"]["criteria"] if c in held or c == chosen]
    return ordered + [c for c in held if c not in ordered]


def tables(figures: dict[str, Any]) -> dict[str, Any]:
    criteria = criteria_of(figures)
    drafter, reviewers = figures["drafter"], figures["reviewers"]
    return {
        "criteria": criteria,
        "over_time_n": sum(week["n"] for week in drafter["over_time"]),
        "models_n": sum(model["n"] for model in figures["models"]),
        "interaction_n": sum(
            max((change["n"] for change in model["interaction"].values()), default=0) for model in figures["models"]
        ),
        "agreement": [{"criterion": c, **drafter["criteria"][c]} for c in criteria if c in drafter["criteria"]],
        "breakdowns": [
            {
                "key": key,
                "title": title,
                "rows": [
                    {
                        **row,
                        "within_1": [row["within_1"].get(c) for c in criteria],
                        "kappa": [row["kappa"].get(c) for c in criteria],
                    }
                    for row in drafter["by"].get(key, [])
                ],
            }
            for key, title in BREAKDOWNS
        ],
        "reviewers": [
            {
                "criterion": c,
                "alpha": reviewers["alpha"].get(c),
                "exact": reviewers["pairwise"].get(c, {}).get("exact"),
                "within_1": reviewers["pairwise"].get(c, {}).get("within_1"),
            }
            for c in criteria
        ],
        "models": [
            {
                "model": model["model"],
                "source": model["source"],
                "n": model["n"],
                "criteria": [
                    {
                        "criterion": c,
                        "score": model["scores"].get(c),
                        "interaction": model["interaction"].get(c),
                    }
                    for c in criteria
                ],
            }
            for model in figures["models"]
        ],
    }
