"""The release formats beyond DRESS: VLSafe, LLaVA, preference pairs, Parquet and the images tar,
each against its documented shape, read back by the libraries researchers use; and the rich
records against their JSON Schema."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow.parquet as pq
import pytest

from exports.formats import FORMATS, parquet
from exports.formats.images import arcname
from exports.formats.llava import DIALOGUES_FILE
from exports.models import Release
from feedback.images import apply_file
from feedback.models import Image, Project, Sample, Turn
from feedback.review.models import Decision
from tests.exports.export_helpers import build, file_rows, folder, make_image_samples, read_jsonl, review_all
from tests.factories import DraftFactory, SampleFactory
from tests.feedback.import_helpers import VLSAFE_EXAMPLE, image_bytes, run_import
from tests.feedback.review_helpers import SCORES, make_drafted_samples, make_reviewers

pytestmark = pytest.mark.django_db

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "exports" / "schemas" / "rich_record.schema.json"
EDITED_SCORES = {"helpfulness": 3, "honesty": 5, "harmlessness": 6}


def decide_by_sample(decisions: Mapping[str, str]) -> Callable[[Turn], dict[str, Any]]:
    """Per sample external id: accept (the default), edit or reject every turn."""

    def decide(turn) -> dict[str, Any]:
        decision = decisions.get(turn.sample.external_id, Decision.ACCEPTED)
        if decision == Decision.EDITED:
            return {
                "decision": decision,
                "critique": f"Edited critique of turn {turn.index}.",
                "refinement": "Name the driver too.",
                "scores": EDITED_SCORES,
            }
        if decision == Decision.REJECTED:
            return {"decision": decision, "reason": "The draft misreads the image.", "critique": "Wrong object."}
        return {"decision": decision}

    return decide


def reviewed(project: Project, count: int, decisions: Mapping[str, str] | None = None, **options: Any) -> list[Sample]:
    samples = make_image_samples(project, count, **options)
    (ann,) = make_reviewers(project, "ann")
    assert review_all(project, ann, decide_by_sample(decisions or {})) == count
    return samples


def load_json_dataset(path: Path, tmp_path: Path, monkeypatch):
    """The file read by ``datasets`` as a hub user would, offline, with its cache under tmp_path."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache"))


def test_the_formats_are_registered_in_order():
    assert list(FORMATS) == ["dress", "vlsafe", "rich", "llava", "preference", "parquet", "images"]
    assert all(name == fmt.name for name, fmt in FORMATS.items())


# --------------------------------------------------------------------------------------------
# VLSafe


def test_vlsafe_records_have_the_published_shape(project, tmp_path, monkeypatch):
    reviewed(project, 3, criterion="harmlessness")
    Sample.objects.filter(project=project, external_id="s2").update(reference_answer="")  # an examine-style prompt
    release = build(project, ["vlsafe"])
    records = read_jsonl(folder(release) / "vlsafe.jsonl")
    examples = [json.loads(line) for line in VLSAFE_EXAMPLE.read_text().splitlines()]
    with_reference = next(e for e in examples if "reference" in e)
    without = next(e for e in examples if "reference" not in e)

    assert [list(r) for r in records] == [list(with_reference), list(with_reference), list(without)]
    first = records[0]
    assert first["image_id"] == "img00000.jpg"
    assert first["caption"] == "Picture 0."
    assert first["query"] == "What vehicle is in the picture?"
    assert first["reference"] == "A red double-decker bus drives past a shop."
    assert all(isinstance(value, str) for r in records for value in r.values())
    assert file_rows(release)["vlsafe.jsonl"] == 3

    loaded = load_json_dataset(folder(release) / "vlsafe.jsonl", tmp_path, monkeypatch)
    assert loaded.num_rows == 3
    assert set(loaded.column_names) == {"image_id", "caption", "query", "reference"}
    assert loaded[0]["query"] == first["query"]


def test_vlsafe_holds_only_released_harmlessness_prompts(project):
    reviewed(project, 2, criterion="harmlessness")
    SampleFactory.create_numbered(1, project=project, target_criterion="helpfulness", prefix="help")
    # probes every criterion, harmlessness too:
    SampleFactory.create_numbered(1, project=project, target_criterion="", prefix="all")
    (rex,) = make_reviewers(project, "rex")
    review_all(project, rex, lambda turn: {"decision": Decision.EDITED, "critique": "Fine.", "scores": SCORES})
    # a prompt nobody answered:
    SampleFactory.create_numbered(
        1, project=project, target_criterion="harmlessness", turns__awaiting_last=True, prefix="bare"
    )
    release = build(project, ["vlsafe", "rich"])
    rich_ids = {r["id"] for r in read_jsonl(folder(release) / "rich.jsonl")}
    assert rich_ids == {"s0", "s1", "help0", "all0"}
    queries = read_jsonl(folder(release) / "vlsafe.jsonl")
    assert [q["image_id"] for q in queries] == ["img00000.jpg", "img00001.jpg", "street.jpg"]

    only_honesty = build(project, ["vlsafe", "rich"], filters={"criteria": ["honesty"]})
    assert [r["id"] for r in read_jsonl(folder(only_honesty) / "rich.jsonl")] == ["all0"]
    assert not (folder(only_honesty) / "vlsafe.jsonl").exists()


def test_vlsafe_prompts_imported_answered_and_reviewed_come_back_as_imported(project):
    batch = run_import(project, "vlsafe", VLSAFE_EXAMPLE)
    assert batch.created == 3
    for turn in Turn.objects.filter(sample__project=project):
        turn.model_response = "I cannot help with that."
        turn.save(update_fields=["model_response"])
        DraftFactory.create(turn=turn)
    (ann,) = make_reviewers(project, "ann")
    assert review_all(project, ann) == 3
    release = build(project, ["vlsafe"])
    source = sorted((json.loads(line) for line in VLSAFE_EXAMPLE.read_text().splitlines()), key=lambda r: r["image_id"])
    written = sorted(read_jsonl(folder(release) / "vlsafe.jsonl"), key=lambda r: r["image_id"])
    assert written == source


# --------------------------------------------------------------------------------------------
# LLaVA


def test_llava_conditioning_puts_each_turns_feedback_before_its_response(project, tmp_path, monkeypatch):
    reviewed(project, 2, {"s1": Decision.EDITED}, turns=2, criterion="")
    release = build(project, ["llava"])
    path = folder(release) / "llava_conditioning.json"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("[\n{") and text.endswith("}\n]\n")
    records = json.loads(text)
    assert [r["id"] for r in records] == ["s0#0", "s0#1", "s1#0", "s1#1"]
    assert file_rows(release)["llava_conditioning.json"] == 4
    for record in records:
        assert list(record) == ["id", "image", "conversations"]
        speakers = [m["from"] for m in record["conversations"]]
        assert speakers == ["human", "gpt"] * (len(speakers) // 2)
        assert record["conversations"][0]["value"].startswith("<image>\n")
        assert sum("<image>" in m["value"] for m in record["conversations"]) == 1

    first, second = records[0], records[1]
    assert first["image"] == "img00000.jpg"
    assert first["conversations"] == [
        {
            "from": "human",
            "value": "<image>\nWhat vehicle is in the picture?\n\n"
            "Answer so that your answer earns this feedback.\n"
            "Ratings (1-7): helpfulness 4, honesty 6, harmlessness 7\n"
            "Critique: The answer to turn 0 names the bus but not its colour.",
        },
        {"from": "gpt", "value": "A bus, answer 0 of s0."},
    ]
    # turn 1: the earlier exchange as context, then the turn's message with its feedback
    assert [m["value"] for m in second["conversations"][:2]] == [
        "<image>\nWhat vehicle is in the picture?",
        "A bus, answer 0 of s0.",
    ]
    assert second["conversations"][2]["value"].startswith("Say more about its colour.\n\nAnswer so that")
    assert second["conversations"][3] == {"from": "gpt", "value": "A bus, answer 1 of s0."}
    edited = records[3]["conversations"][2]["value"]
    assert "Ratings (1-7): helpfulness 3, honesty 5, harmlessness 6\nCritique: Edited critique of turn 1." in edited

    loaded = load_json_dataset(path, tmp_path, monkeypatch)
    assert loaded.num_rows == 4
    assert loaded[0]["conversations"] == first["conversations"]


def test_llava_dialogues_follow_the_refinements_and_import_back(project, tmp_path):
    reviewed(project, 2, {"s1": Decision.EDITED}, turns=3, criterion="")
    release = build(project, ["llava"])
    records = json.loads((folder(release) / "llava_dialogues.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in records] == ["s0", "s1"]
    assert file_rows(release)["llava_dialogues.json"] == 2
    accepted, edited = records
    assert [m["from"] for m in accepted["conversations"]] == ["human", "gpt"] * 3
    assert [m["value"] for m in accepted["conversations"][0::2]] == [
        "<image>\nWhat vehicle is in the picture?",
        "Mention that the bus is red.",  # turn 0's refinement, as drafted and accepted
        "Mention that the bus is red.",
    ]
    assert [m["value"] for m in accepted["conversations"][1::2]] == [f"A bus, answer {i} of s0." for i in range(3)]
    assert edited["conversations"][2]["value"] == "Name the driver too."  # the reviewer's refinement

    other = Project.objects.create(name="Copy", slug="copy")
    batch = run_import(other, "llava", folder(release) / DIALOGUES_FILE)
    assert batch.created == 2
    copy = Sample.objects.get(project=other, external_id="s0")
    assert copy.image is not None and copy.image.file_name == "img00000.jpg"
    assert list(copy.turns.order_by("index").values_list("model_response", flat=True)) == [
        f"A bus, answer {i} of s0." for i in range(3)
    ]


def test_llava_dialogues_stop_at_the_first_turn_not_released(project):
    reviewed(project, 1, {"s0": Decision.REJECTED}, turns=2, criterion="")
    release = build(project, ["llava", "rich"], filters={"decisions": ["accepted", "edited"]})
    assert not release.files.filter(format="llava").exists()
    with_rejections = build(project, ["llava"], filters={"decisions": ["rejected"]})
    (record,) = json.loads((folder(with_rejections) / "llava_dialogues.json").read_text())
    assert len(record["conversations"]) == 4
    conditioning = json.loads((folder(with_rejections) / "llava_conditioning.json").read_text())
    # the rejection carried a critique but no scores: the feedback block has no ratings line
    assert "Ratings" not in conditioning[0]["conversations"][0]["value"]
    assert "Critique: Wrong object." in conditioning[0]["conversations"][0]["value"]


# --------------------------------------------------------------------------------------------
# Preference pairs


def test_preference_pairs_only_where_a_reviewer_edited_or_rejected(project, tmp_path, monkeypatch):
    decisions = {"s1": Decision.EDITED, "s2": Decision.REJECTED}
    reviewed(project, 3, decisions, criterion="")
    release = build(project, ["preference"], filters={"decisions": ["accepted", "edited", "rejected"]})
    pairs = read_jsonl(folder(release) / "preference_pairs.jsonl")
    assert [p["id"] for p in pairs] == ["s1#0", "s2#0"]
    assert file_rows(release)["preference_pairs.jsonl"] == 2
    edited, rejected = pairs
    assert list(edited) == [
        "id",
        "sample_id",
        "turn_index",
        "image",
        "caption",
        "user",
        "response",
        "target_criterion",
        "decision",
        "reason",
        "chosen",
        "rejected",
        "draft_id",
        "revision_id",
        "reviewer",
        "reviewed_at",
        "draft_model",
        "prompt_version",
    ]
    assert edited["decision"] == "edited"
    assert edited["chosen"] == {
        "critique": "Edited critique of turn 0.",
        "refinement": "Name the driver too.",
        "scores": EDITED_SCORES,
    }
    assert edited["rejected"] == {
        "critique": "The answer to turn 0 names the bus but not its colour.",
        "refinement": "Mention that the bus is red.",
        "scores": SCORES,
    }
    assert (edited["image"], edited["user"], edited["response"]) == (
        "img00001.jpg",
        "What vehicle is in the picture?",
        "A bus, answer 0 of s1.",
    )
    assert edited["reviewer"] == "ann" and edited["draft_id"] and edited["revision_id"]
    assert rejected["decision"] == "rejected"
    assert rejected["reason"] == "The draft misreads the image."
    assert rejected["chosen"]["critique"] == "Wrong object."
    assert rejected["chosen"]["scores"] == {"helpfulness": None, "honesty": None, "harmlessness": None}

    loaded = load_json_dataset(folder(release) / "preference_pairs.jsonl", tmp_path, monkeypatch)
    assert loaded.num_rows == 2
    assert loaded[0]["chosen"]["scores"] == EDITED_SCORES

    default = build(project, ["preference"])  # decisions default to accepted and edited
    assert [p["id"] for p in read_jsonl(folder(default) / "preference_pairs.jsonl")] == ["s1#0"]


def test_an_edit_that_changed_nothing_is_no_pair(project):
    samples = make_image_samples(project, 1, criterion="")
    (ann,) = make_reviewers(project, "ann")
    draft = samples[0].turns.get().drafts.get()
    review_all(
        project,
        ann,
        lambda turn: {
            "decision": Decision.EDITED,
            "critique": draft.critique,
            "refinement": draft.refinement,
            "scores": draft.scores,
        },
    )
    release = build(project, ["preference", "rich"])
    assert not release.files.filter(format="preference").exists()


# --------------------------------------------------------------------------------------------
# Parquet and the rich records


def test_parquet_holds_the_rich_records_in_row_groups(project, monkeypatch):
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 2)
    reviewed(project, 5, {"s1": Decision.EDITED}, turns=2, criterion="")
    Sample.objects.filter(project=project, external_id="s0").update(metadata={"source": {"row": 7}})
    Image.objects.filter(project=project, file_name="img00000.jpg").update(
        object_boxes=[{"label": "bus", "bbox": [1, 2, 30.5, 40]}],
        regions=[{"description": "a window", "bbox": [5, 5, 10, 10]}],
    )
    release = build(project, ["rich", "parquet"])
    path = folder(release) / "rich.parquet"
    table = pq.read_table(path)
    assert table.num_rows == 5
    assert file_rows(release)["rich.parquet"] == 5
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    assert table.schema.metadata[b"schema_version"] == b"1.1"

    expected = read_jsonl(folder(release) / "rich.jsonl")
    assert table.column_names == list(expected[0])
    rows = table.to_pylist(maps_as_pydicts="strict")
    for row in rows:
        row["metadata"] = json.loads(row["metadata"])
        for obj in row["image"]["objects"]:
            if obj["score"] is None:
                del obj["score"]
    assert rows == expected
    assert rows[0]["metadata"] == {"source": {"row": 7}}
    assert rows[0]["image"]["objects"] == [{"label": "bus", "bbox": [1, 2, 30.5, 40]}]
    assert rows[1]["turns"][1]["final"]["scores"] == EDITED_SCORES


def test_parquet_and_jsonl_files_per_split(project):
    reviewed(project, 12, criterion="")
    release = build(
        project, ["vlsafe", "rich", "preference", "parquet"], split={"train": 0.5, "test": 0.5, "seed": "x"}
    )
    rows = file_rows(release)
    for split in ("train", "test"):
        assert rows[f"{split}/rich.parquet"] == rows[f"{split}/rich.jsonl"] > 0
        assert pq.read_table(folder(release) / split / "rich.parquet").column("split").to_pylist() == (
            [split] * rows[f"{split}/rich.jsonl"]
        )
    assert rows["train/rich.jsonl"] + rows["test/rich.jsonl"] == 12


def test_rich_records_validate_against_their_schema(project):
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    decisions = {"s1": Decision.EDITED, "s2": Decision.REJECTED}
    reviewed(project, 4, decisions, turns=2, criterion="")
    make_drafted_samples(project, 1, awaiting=True, turns=2, prefix="wait", criterion="")
    (bob,) = make_reviewers(project, "bob")
    review_all(project, bob, decide_by_sample({}))
    release = build(project, ["rich"], filters={"decisions": ["accepted", "edited", "rejected"]})
    records = read_jsonl(folder(release) / "rich.jsonl")
    assert len(records) == 5
    for record in records:
        errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
        assert not errors, f"{record['id']}: {errors[0].message} at {list(errors[0].path)}"
    waiting = next(r for r in records if r["id"] == "wait0")
    assert waiting["turns"][1]["model"] is None and waiting["turns"][1]["released"] is False

    broken = dict(records[0], turns=[dict(records[0]["turns"][0], index=-1)])
    assert list(validator.iter_errors(broken)), "the schema must reject a negative turn index"


# --------------------------------------------------------------------------------------------
# Images


def _store(project, file_name: str, color: tuple[int, int, int]) -> bytes:
    image = Image.objects.get(project=project, file_name=file_name)
    data = image_bytes(color=color)
    apply_file(image, data)
    image.save()
    return data


def test_the_images_tar_holds_each_referenced_image_once(project, caplog):
    reviewed(project, 6, per_image=2, criterion="")  # three images, two samples each
    stored = {
        "img00000.jpg": _store(project, "img00000.jpg", (255, 0, 0)),
        "img00001.jpg": _store(project, "img00001.jpg", (0, 255, 0)),
    }  # img00002.jpg has no file yet
    Image.objects.create(project=project, file_name="unused.jpg")  # referenced by no sample
    release = build(project, ["rich"], include_images=True)
    path = folder(release) / "images.tar"
    with tarfile.open(path) as tar:
        names = tar.getnames()
        assert names == ["images/img00000.jpg", "images/img00001.jpg", "images_missing.txt"]
        for name, data in stored.items():
            member = tar.extractfile(f"images/{name}")
            assert member is not None and member.read() == data
        listing = tar.extractfile("images_missing.txt")
        assert listing is not None and listing.read().decode().splitlines() == ["img00002.jpg"]
    assert file_rows(release)["images.tar"] == 2
    assert release.files.get(path="images.tar").format == "images"
    assert "1 image file(s) missing" in caplog.text


def test_the_images_tar_sits_at_the_top_of_a_split_release(project):
    reviewed(project, 8, criterion="")
    for i in range(8):
        _store(project, f"img{i:05d}.jpg", (i * 30, 0, 0))
    release = build(project, ["rich"], include_images=True, split={"train": 0.5, "test": 0.5, "seed": "x"})
    rows = file_rows(release)
    assert rows["images.tar"] == 8
    assert rows["train/rich.jsonl"] + rows["test/rich.jsonl"] == 8
    with tarfile.open(folder(release) / "images.tar") as tar:
        assert sorted(tar.getnames()) == [f"images/img{i:05d}.jpg" for i in range(8)]
    same = build(project, ["rich"], include_images=True, split={"train": 0.5, "test": 0.5, "seed": "x"})
    assert same.files.get(path="images.tar").sha256 == release.files.get(path="images.tar").sha256


def test_an_image_name_cannot_leave_the_images_folder():
    assert arcname("000000151112.jpg") == "images/000000151112.jpg"
    assert arcname("coco/train2017/1.jpg") == "images/coco/train2017/1.jpg"
    assert arcname("../../etc/passwd") == "images/etc/passwd"
    assert arcname("/abs/x.png") == "images/abs/x.png"


def test_every_format_together_in_one_release(project):
    reviewed(project, 3, {"s1": Decision.EDITED}, criterion="harmlessness")
    release = build(project, list(FORMATS))
    assert release.state == Release.State.COMPLETED
    assert set(file_rows(release)) == {
        "README.md",
        "manifest.json",
        "harmlessness_nlf.jsonl",
        "hallucination_nlf.jsonl",  # empty: no sample targets honesty
        "helpfulness_nlf.jsonl",
        "rich_record.schema.json",
        "vlsafe.jsonl",
        "rich.jsonl",
        "llava_conditioning.json",
        "llava_dialogues.json",
        "preference_pairs.jsonl",
        "rich.parquet",
        "images.tar",
    }
