"""The DRESS LVLM_NLF format: the published record shape, and the round trip through import."""

from __future__ import annotations

import json

import pytest

from feedback.models import Decision
from feedback.review.queue import sample_claim
from feedback.review.revisions import revision_create
from tests.exports.export_helpers import build, folder, read_jsonl
from tests.feedback.import_helpers import DRESS_EXAMPLE, run_import
from tests.feedback.review_helpers import make_drafted_samples, make_reviewers

pytestmark = pytest.mark.django_db


def test_a_dress_release_of_an_imported_dress_file_is_byte_identical(project, tmp_path):
    source = tmp_path / "harmlessness_nlf.jsonl"
    source.write_bytes(DRESS_EXAMPLE.read_bytes())
    batch = run_import(project, "dress", source)
    assert batch.created == 1
    release = build(project, ["dress"])
    written = folder(release) / "harmlessness_nlf.jsonl"
    assert written.read_bytes() == DRESS_EXAMPLE.read_bytes()
    assert sorted(release.files.values_list("path", flat=True)) == [
        "README.md",
        "harmlessness_nlf.jsonl",
        "manifest.json",
    ]


def test_a_reviewed_sample_becomes_a_record_of_the_published_shape(project):
    samples = make_drafted_samples(project, 1, turns=2, criterion="")
    (ann,) = make_reviewers(project, "ann")
    assignment = sample_claim(project=project, reviewer=ann)
    turns = list(samples[0].turns.order_by("index"))
    revision_create(assignment=assignment, turn=turns[0], author=ann, base_version=0, decision=Decision.ACCEPTED)
    revision_create(
        assignment=assignment,
        turn=turns[1],
        author=ann,
        base_version=0,
        decision=Decision.EDITED,
        critique="Better: the colour is named.",
        refinement="",
        scores={"helpfulness": 6, "honesty": 7, "harmlessness": 7},
    )
    release = build(project, ["dress"])
    example = json.loads(DRESS_EXAMPLE.read_text())
    for name, criterion in [("helpfulness_nlf.jsonl", "helpfulness"), ("hallucination_nlf.jsonl", "honesty")]:
        (record,) = read_jsonl(folder(release) / name)
        assert list(record) == list(example)
        assert [list(item) for item in record["interaction"]] == [list(i) for i in example["interaction"]]
        first, second = record["interaction"]
        assert first["user"] == turns[0].user_message
        assert second["user"] == "Mention that the bus is red."  # turn 0's refinement, as drafted
        assert first["rating"] == str({"helpfulness": 4, "honesty": 6}[criterion])
        assert second["rating"] == str({"helpfulness": 6, "honesty": 7}[criterion])
        assert second["critique NLF"] == "Better: the colour is named."
        assert all(isinstance(item["rating"], str) for item in record["interaction"])
