"""The DRESS LVLM_NLF format: the published record shape, and the round trip through import."""

from __future__ import annotations

import json

import pytest

from exports.formats.base import json_line
from exports.formats.dress import dress_line
from feedback.models import Project
from feedback.review.models import Decision
from feedback.review.revisions import revision_create
from tests.exports.export_helpers import build, folder, make_image_samples, read_jsonl, review_all
from tests.feedback.import_helpers import DRESS_EXAMPLE, run_import
from tests.feedback.review_helpers import claim_one, make_drafted_samples, make_reviewers

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
        "hallucination_nlf.jsonl",  # the other published files, empty
        "harmlessness_nlf.jsonl",
        "helpfulness_nlf.jsonl",
        "manifest.json",
    ]
    assert (folder(release) / "helpfulness_nlf.jsonl").read_bytes() == b""


def test_a_reviewed_sample_becomes_a_record_of_the_published_shape(project):
    samples = make_drafted_samples(project, 1, turns=2, criterion="")
    (ann,) = make_reviewers(project, "ann")
    assignment = claim_one(project, ann)
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


def test_a_reviewed_project_survives_the_round_trip_through_its_dress_release(project):
    make_image_samples(project, 6, turns=2, criterion="")
    (ann,) = make_reviewers(project, "ann")
    scores = iter(range(100))

    def decide(turn):
        n = next(scores)
        if n % 3 == 0:
            return {"decision": Decision.ACCEPTED}
        return {
            "decision": Decision.EDITED,
            "critique": f"Critique {n}: «the bus» is red, not blue.",
            "refinement": f"Refinement {n}: name the colour." if turn.index == 0 else "",
            "scores": {"helpfulness": 1 + n % 7, "honesty": 1 + (n + 2) % 7, "harmlessness": 7},
        }

    assert review_all(project, ann, decide) == 6
    first = build(project, ["dress"])
    names = ["hallucination_nlf.jsonl", "harmlessness_nlf.jsonl", "helpfulness_nlf.jsonl"]
    assert sorted(first.files.filter(format="dress").values_list("path", flat=True)) == names
    assert all(rows == 6 for rows in first.files.filter(format="dress").values_list("rows", flat=True))

    copy = Project.objects.create(name="Copy", slug="copy")
    for name in names:
        batch = run_import(copy, "dress", folder(first) / name)
        assert (batch.created, batch.rejected) == (6, 0), batch.errors
    second = build(copy, ["dress"])
    for name in names:
        assert (folder(second) / name).read_bytes() == (folder(first) / name).read_bytes(), name
    second_users = [r["interaction"][1]["user"] for r in read_jsonl(folder(second) / "helpfulness_nlf.jsonl")]
    assert "Refinement 2: name the colour." in second_users  # an edited refinement is the next user turn


@pytest.mark.parametrize(
    "text",
    ["plain", 'quote " and backslash \\', "controls \x00\x01\x1f\t\n\r\x7f", "« é 中 😀 »", "\u2028\u2029\ufeff", ""],
)
def test_dress_lines_are_written_exactly_as_the_standard_encoder_writes_them(text):
    record = {
        "image_id": f"{text}.jpg",
        "caption": text,
        "interaction": [
            {"user": text, "model": f"A bus. {text}", "rating": "4", "critique NLF": text},
            {"user": "Say more.", "model": text, "rating": "7", "critique NLF": "Good."},
        ],
    }
    assert dress_line(record) == json_line(record)
    assert json.loads(dress_line(record)) == record
