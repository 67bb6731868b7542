"""A release carries the quality figures: in its manifest (``quality``, saying what they cover) and
as a short table in its dataset card."""

from __future__ import annotations

import json

import pytest

from exports.filters import filters_from
from exports.quality_figures import quality_filters
from feedback.review.models import Decision
from quality.figures import markdown_table
from tests.exports.export_helpers import build, folder
from tests.exports.test_formats import reviewed

pytestmark = pytest.mark.django_db


def test_the_manifest_carries_the_figures_of_the_reviews(project):
    # Drafts score helpfulness 4, honesty 6, harmlessness 7; one reviewer edits s3 to 3, 5, 6.
    reviewed(project, 4, {"s3": Decision.EDITED}, criterion="")
    release = build(project, ["dress"])
    quality = json.loads((folder(release) / "manifest.json").read_text())["quality"]
    assert quality == release.manifest["quality"]
    assert quality["filters"] == {
        "criterion": None,
        "prompt_version": None,
        "model": None,
        "import": None,
        "since": None,
        "until": None,
    }
    assert quality["not_applied"] == ["decisions"]  # the release leaves out rejections; the figures count them
    assert "not_applied" in quality["covers"]
    drafter = quality["figures"]["drafter"]
    assert drafter["n"] == 4
    assert drafter["decisions"]["accepted"]["value"] == pytest.approx(0.75)
    assert drafter["decisions"]["edited"]["value"] == pytest.approx(0.25)
    assert drafter["decisions"]["accepted"]["n"] == 4
    assert set(drafter["criteria"]) == {"helpfulness", "honesty", "harmlessness"}
    for criterion in ("helpfulness", "honesty", "harmlessness"):
        figures = drafter["criteria"][criterion]
        assert figures["n"] == 4
        assert figures["exact"]["value"] == pytest.approx(3 / 4)
        assert figures["within_1"]["value"] == pytest.approx(1.0)
        assert figures["mean_diff"]["value"] == pytest.approx(1 / 4)  # draft - final: the LLM scored high


def test_the_card_shows_the_short_table(project):
    reviewed(project, 4, {"s3": Decision.EDITED}, criterion="")
    release = build(project, ["dress", "rich"])
    card = (folder(release) / "README.md").read_text()
    figures = release.manifest["quality"]["figures"]
    assert "## Quality\n" in card
    assert markdown_table(figures) in card
    assert "| honesty | 4 |" in card
    assert "The release's filters decisions have no counterpart" in card
    assert card.index("## Quality") < card.index("## Files")


def test_the_release_filters_are_mapped_onto_the_quality_filters_and_the_rest_named(project):
    reviewed(project, 3, {"s2": Decision.EDITED}, criterion="")
    release = build(
        project,
        ["rich"],
        filters={
            "criteria": ["honesty"],
            "prompt_versions": ["v1"],
            "decisions": ["accepted", "edited", "rejected"],
            "date_from": "2000-01-01",
            "date_to": "2999-12-31",
            "reviewers": ["ann"],
        },
    )
    quality = release.manifest["quality"]
    assert quality["filters"] == {
        "criterion": "honesty",
        "prompt_version": "v1",
        "model": None,
        "import": None,
        "since": "2000-01-01",
        "until": "2999-12-31",
    }
    assert quality["not_applied"] == ["reviewers"]
    assert quality["figures"]["filters"] == quality["filters"]
    assert list(quality["figures"]["drafter"]["criteria"]) == ["honesty"]
    assert quality["figures"]["drafter"]["n"] == 3
    card = (folder(release) / "README.md").read_text()
    assert "under criterion honesty, prompt_version v1, since 2000-01-01, until 2999-12-31" in card

    other = build(project, ["rich"], filters={"prompt_versions": ["v0", "v1"], "date_to": "1999-12-31"})
    quality = other.manifest["quality"]
    assert quality["filters"]["prompt_version"] is None and quality["filters"]["until"] == "1999-12-31"
    assert quality["not_applied"] == ["prompt_versions", "decisions"]
    assert quality["figures"]["drafter"]["n"] == 0  # no review on or before that day


@pytest.mark.parametrize(
    ("filters", "not_applied"),
    [
        ({}, ["decisions"]),
        ({"decisions": ["accepted", "edited", "rejected"]}, []),
        (
            {"criteria": ["honesty", "helpfulness"], "score_ranges": {"honesty": [5, 7]}},
            ["criteria", "decisions", "score_ranges"],
        ),
        (
            {"include_imported": False, "include_simulated": False},
            ["decisions", "include_imported", "include_simulated"],
        ),
    ],
)
def test_the_release_filters_with_no_counterpart_are_named(project, filters, not_applied):
    mapped, named = quality_filters(filters_from(project, filters))
    assert named == not_applied
    assert mapped.criterion is None and mapped.prompt_version is None
