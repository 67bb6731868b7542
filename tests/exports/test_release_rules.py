"""What a release holds: the split rule, the filters, the final feedback chosen per turn, the
manifest and its hashes, and what happens when a build fails or its worker is lost."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from exports.models import Release
from exports.service import release_build, release_create
from exports.splits import SplitRule, split_rule_from
from feedback.drafting.models import Draft
from feedback.errors import InvalidInput
from feedback.review.models import Assignment, Decision, Flag, Revision
from feedback.review.revisions import revision_create, sample_flag
from tests.exports.export_helpers import build, folder, make_image_samples, read_jsonl, review_all
from tests.feedback.review_helpers import claim_one, configure, make_reviewers
from tests.recovery_helpers import ended_owner, forced_sweep

pytestmark = pytest.mark.django_db

SPLIT = {"train": 0.6, "validation": 0.2, "test": 0.2, "seed": "s1"}


def edited(scores=None, critique="Says the bus is red; misses the driver."):
    return lambda turn: {
        "decision": Decision.EDITED,
        "critique": critique,
        "refinement": "Mention the driver.",
        "scores": scores or {"helpfulness": 3, "honesty": 5, "harmlessness": 7},
    }


def rich_ids(release: Release) -> dict[str, list[str]]:
    """External ids of the rich records, per split."""
    out: dict[str, list[str]] = {}
    for f in release.files.filter(format="rich"):
        out[f.split] = [r["id"] for r in read_jsonl(folder(release) / f.path)]
    return out


# --------------------------------------------------------------------------------------------
# Split rule


def test_no_image_is_in_two_splits_and_the_split_is_stable_across_runs(project):
    make_image_samples(project, 60, per_image=3, criterion="")
    (ann,) = make_reviewers(project, "ann")
    assert review_all(project, ann) == 60
    first = build(project, ["rich", "dress"], split=SPLIT)
    second = build(project, ["rich", "dress"], split=SPLIT)

    images_per_split: dict[str, set[str]] = {}
    for f in first.files.filter(format="rich"):
        images_per_split[f.split] = {r["image"]["file_name"] for r in read_jsonl(folder(first) / f.path)}
        for record in read_jsonl(folder(first) / f.path):
            assert record["split"] == f.split
    assert set(images_per_split) == {"train", "validation", "test"}
    splits = list(images_per_split.values())
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not a & b, f"images in two splits: {a & b}"
    assert sum(len(s) for s in splits) == 20

    assert rich_ids(first) == rich_ids(second)
    first_hashes = dict(first.files.exclude(format__in=["manifest", "card"]).values_list("path", "sha256"))
    second_hashes = dict(second.files.exclude(format__in=["manifest", "card"]).values_list("path", "sha256"))
    assert first_hashes == second_hashes
    assert "train/helpfulness_nlf.jsonl" in first_hashes


def test_the_split_follows_its_fractions_and_seed():
    rule = SplitRule(train=0.8, validation=0.1, test=0.1, seed="a")
    names = [rule.split_of(f"img{i}.jpg") for i in range(10_000)]
    assert 7_700 < names.count("train") < 8_300
    assert 850 < names.count("test") < 1_150
    other = SplitRule(train=0.8, validation=0.1, test=0.1, seed="b")
    assert names != [other.split_of(f"img{i}.jpg") for i in range(10_000)]
    assert SplitRule().names == ["train"] and {SplitRule().split_of(str(i)) for i in range(100)} == {"train"}


@pytest.mark.parametrize(
    ("split", "field_text"),
    [
        ({"train": 0.5, "test": 0.2}, "add up to 0.7"),
        ({"train": 1.5, "test": -0.5}, "between 0 and 1"),
        ({"train": "most"}, "must be a number"),
        ({"dev": 0.1}, "Unknown split settings: dev"),
    ],
)
def test_a_bad_split_rule_is_refused_with_its_reason(split, field_text):
    with pytest.raises(InvalidInput) as raised:
        split_rule_from(split)
    assert field_text in str(raised.value.errors["split"])


# --------------------------------------------------------------------------------------------
# Final feedback and filters


def test_by_default_accepted_and_edited_turns_are_released_and_rejected_ones_are_not(project):
    samples = make_image_samples(project, 3, criterion="")
    (ann,) = make_reviewers(project, "ann")
    decisions = iter(
        [
            {"decision": Decision.ACCEPTED},
            edited()(None),
            {"decision": Decision.REJECTED, "reason": "Invents a second bus."},
        ]
    )
    review_all(project, ann, lambda turn: next(decisions))
    release = build(project, ["rich"])
    (records,) = rich_ids(release).values()
    assert sorted(records) == sorted(s.external_id for s in samples[:2])
    assert release.manifest["counts"]["turns_per_decision"] == {"accepted": 1, "edited": 1}

    with_rejected = build(project, ["rich"], filters={"decisions": ["rejected"]})
    (records,) = rich_ids(with_rejected).values()
    assert records == [samples[2].external_id]
    (record,) = read_jsonl(folder(with_rejected) / "rich.jsonl")
    assert record["turns"][0]["final"]["reason"] == "Invents a second bus."


def test_the_final_is_the_latest_revision_and_the_draft_is_kept_beside_it(project):
    (sample,) = make_image_samples(project, 1, criterion="")
    (ann,) = make_reviewers(project, "ann")
    assignment = claim_one(project, ann)
    turn = sample.turns.get()
    draft = Draft.objects.get(turn=turn)
    first = revision_create(assignment=assignment, turn=turn, author=ann, base_version=0, **edited()(turn))
    revision_create(
        assignment=assignment,
        turn=turn,
        author=ann,
        base_version=first.revision.version,
        **edited({"helpfulness": 2, "honesty": 2, "harmlessness": 2}, "Second thoughts: wrong colour.")(turn),
    )
    (record,) = read_jsonl(folder(build(project, ["rich"])) / "rich.jsonl")
    (exported,) = record["turns"]
    assert exported["final"]["critique"] == "Second thoughts: wrong colour."
    assert exported["final"]["version"] == 2
    assert exported["final"]["reviewer"] == "ann"
    assert exported["draft"]["id"] == draft.pk
    assert exported["draft"]["critique"] == draft.critique
    assert exported["draft"]["prompt_hash"] == draft.prompt_hash
    assert Draft.objects.get(pk=draft.pk).critique == draft.critique  # the draft is untouched


def test_with_two_reviews_per_sample_both_are_released_and_the_later_one_is_final(project):
    # A threshold no score difference reaches: the reviews agree, so no adjudication holds the turn back.
    configure(project, reviews_required=2, adjudication_threshold=100)
    make_image_samples(project, 1, criterion="")
    ann, bob = make_reviewers(project, "ann", "bob")
    review_all(project, ann)
    review_all(project, bob, edited({"helpfulness": 1, "honesty": 1, "harmlessness": 1}))
    (record,) = read_jsonl(folder(build(project, ["rich", "dress"])) / "rich.jsonl")
    (turn,) = record["turns"]
    assert [r["reviewer"] for r in turn["reviews"]] == ["ann", "bob"]
    assert turn["final"]["reviewer"] == "bob"
    assert turn["final"]["scores"]["helpfulness"] == 1


def test_flagged_samples_and_unfinished_reviews_are_left_out(project):
    samples = make_image_samples(project, 3, criterion="")
    ann, bob = make_reviewers(project, "ann", "bob")
    flagged = claim_one(project, ann)
    sample_flag(assignment=flagged, user=ann, flag=Flag.BAD_IMAGE)
    leased = claim_one(project, bob)
    revision_create(
        assignment=leased,
        turn=leased.sample.turns.get(),
        author=bob,
        base_version=0,
        decision=Decision.ACCEPTED,
    )
    Assignment.objects.filter(pk=leased.pk).update(state=Assignment.State.LEASED)  # as if still open
    review_all(project, ann)
    (records,) = rich_ids(build(project, ["rich"])).values()
    reviewed_by_ann = {samples[i].external_id for i in range(3)} - {
        flagged.sample.external_id,
        leased.sample.external_id,
    }
    assert set(records) == reviewed_by_ann


def test_filters_on_criterion_scores_reviewer_dates_prompt_and_simulation(project):
    samples = make_image_samples(project, 4, criterion="honesty")
    ann, bob = make_reviewers(project, "ann", "bob")
    scores = iter(
        [{"helpfulness": 2, "honesty": 6, "harmlessness": 7}, {"helpfulness": 5, "honesty": 2, "harmlessness": 7}]
    )
    review_all(project, ann, lambda turn: edited(next(scores))(turn), limit=2)
    Draft.objects.filter(turn__sample=samples[2]).update(prompt_version="v2", simulated=True)
    review_all(project, bob)
    by = {s.pk: s.external_id for s in samples}
    released = Revision.objects.values_list("turn__sample_id", "author__username")
    ann_ids = {by[s] for s, who in released if who == "ann"}
    bob_ids = {by[s] for s, who in released if who == "bob"}

    def ids(**filters) -> set[str]:
        return {i for v in rich_ids(build(project, ["rich"], filters=filters)).values() for i in v}

    assert ids() == set(by.values())
    assert ids(criteria=["helpfulness"]) == set()  # every sample targets honesty
    assert ids(criteria=["honesty"]) == set(by.values())
    low_honesty = {e for e in ann_ids if Revision.objects.get(turn__sample__external_id=e).scores["honesty"] == 2}
    assert len(low_honesty) == 1
    assert ids(score_ranges={"honesty": [5, 7]}) == set(by.values()) - low_honesty
    assert ids(score_ranges={"honesty": [1, 2], "helpfulness": [5, 5]}) == low_honesty
    assert ids(reviewers=["bob"]) == bob_ids
    assert ids(reviewers=["ann"]) == ann_ids
    assert ids(prompt_versions=["v2"]) == {samples[2].external_id}
    assert ids(include_simulated=False) == set(by.values()) - {samples[2].external_id}
    today = timezone.localdate()
    assert ids(date_from=today.isoformat(), date_to=today.isoformat()) == set(by.values())
    assert ids(date_from=(today + timedelta(days=1)).isoformat()) == set()
    assert ids(date_to=(today - timedelta(days=1)).isoformat()) == set()


@pytest.mark.parametrize(
    ("filters", "field", "text"),
    [
        ({"decisions": ["maybe"]}, "decisions", "Not decisions: maybe"),
        ({"criteria": ["beauty"]}, "criteria", "Not criteria of this project: beauty"),
        ({"score_ranges": {"honesty": [6, 2]}}, "score_ranges", "low ≤ high"),
        ({"date_from": "yesterday"}, "date_from", "A date such as"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "date_to", "before the start"),
        ({"include_simulated": "no"}, "include_simulated", "true or false"),
        ({"colour": "red"}, "filters", "Unknown filters: colour"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(project, filters, field, text):
    with pytest.raises(InvalidInput) as raised:
        release_create(project=project, user=None, formats=["dress"], filters=filters, enqueue=False)
    assert text in " ".join(raised.value.errors[f"filters.{field}" if field != "filters" else field])
    assert not Release.objects.exists()


def test_an_unknown_format_is_refused(project):
    with pytest.raises(InvalidInput) as raised:
        release_create(project=project, user=None, formats=["dress", "csv"], enqueue=False)
    assert "Unknown formats: csv" in " ".join(raised.value.errors["formats"])


# --------------------------------------------------------------------------------------------
# Manifest, card, failure


def test_the_manifest_lists_every_file_with_its_true_hash_and_rows(project):
    make_image_samples(project, 5, criterion="", turns=2)
    (ann,) = make_reviewers(project, "ann")
    review_all(project, ann)
    release = build(project, ["dress", "rich"], split={"train": 0.5, "test": 0.5})
    root = folder(release)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest == release.manifest
    listed = {f["path"]: f for f in manifest["files"]}
    for path, entry in listed.items():
        data = (root / path).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), path
        assert entry["bytes"] == len(data)
        if path.endswith(".jsonl"):
            assert entry["rows"] == data.count(b"\n")
    stored = {f.path: f.sha256 for f in release.files.all()}
    assert {p: e["sha256"] for p, e in listed.items()} == {p: h for p, h in stored.items() if p in listed}
    assert hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest() == stored["manifest.json"]
    counts = manifest["counts"]
    assert counts["samples"] == 5 and counts["turns"] == 10
    assert counts["turns_per_criterion_and_decision"]["honesty"] == {"accepted": 10}
    assert manifest["rubric"]["criteria"] == project.criteria
    assert manifest["filters"]["decisions"] == ["accepted", "edited"]
    assert manifest["split"]["train"] == 0.5
    card = (root / "README.md").read_text()
    assert card.startswith("---\n")
    header = card.split("---\n")[1]
    assert 'config_name: "dress_helpfulness_nlf"' in header
    for f in manifest["files"]:
        assert (f'path: "{f["path"]}"' in header) == (f["format"] != "schema"), f["path"]


def test_a_failing_build_is_marked_failed_with_its_reason_and_leaves_no_files(project, settings, tmp_path):
    make_image_samples(project, 2, criterion="")
    (ann,) = make_reviewers(project, "ann")
    review_all(project, ann)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the releases folder should be")
    settings.RELEASES_ROOT = blocker
    release = release_create(project=project, user=None, formats=["dress"], enqueue=False)
    built = release_build(release_id=release.pk)
    assert built is not None and built.state == Release.State.FAILED
    assert "Error" in built.error
    assert not built.files.exists()


def test_a_release_whose_worker_was_lost_is_built_again_and_a_finished_one_is_not(project):
    make_image_samples(project, 2, criterion="")
    (ann,) = make_reviewers(project, "ann")
    review_all(project, ann)
    release = release_create(project=project, user=None, formats=["rich"], enqueue=False)
    # Its attempt ran in a process of this machine that has ended, and left half a folder.
    Release.objects.filter(pk=release.pk).update(
        state=Release.State.RUNNING, samples_total=2, samples_done=1, attempt="lost", attempt_owner=ended_owner()
    )
    partial = folder(release).with_name(f".{release.pk}.lost.partial")
    partial.mkdir(parents=True)
    (partial / "rich.jsonl").write_text("half a line")
    assert release_build(release_id=release.pk) is None  # a live-looking attempt holds it
    assert forced_sweep()["releases_requeued"] == 1
    built = release_build(release_id=release.pk)
    assert built is not None and built.state == Release.State.COMPLETED
    assert len(read_jsonl(folder(built) / "rich.jsonl")) == 2
    assert not partial.exists()
    assert release_build(release_id=release.pk) is None
