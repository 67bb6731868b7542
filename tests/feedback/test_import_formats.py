"""Each input format imports into the model: the example files, LLaVA and COCO documents, native JSONL."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from feedback.models import Image, ImportBatch, ImportedFeedback, Role, Sample, Turn

from ..conftest import make_user
from .import_helpers import (
    DRESS_EXAMPLE,
    FORMATS_DIR,
    VLSAFE_EXAMPLE,
    counts,
    native_record,
    run_import,
    write_json,
    write_jsonl,
)

pytestmark = pytest.mark.django_db

SHARED_FORMATS = Path(__file__).resolve().parents[3] / "shared" / "formats"


def dress_example() -> dict:
    return json.loads(DRESS_EXAMPLE.read_text(encoding="utf-8").splitlines()[0])


def test_dress_example_imports_with_the_criterion_option(project):
    batch = run_import(project, "dress", DRESS_EXAMPLE, criterion="helpfulness")

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert counts(batch) == {"read": 1, "created": 1, "updated": 0, "skipped": 0, "rejected": 0}
    source = dress_example()
    sample = Sample.objects.get(project=project)
    assert sample.target_criterion == "helpfulness"
    assert sample.source_dataset == "DRESS"
    assert sample.import_batch == batch
    assert sample.import_line == 1
    assert sample.metadata == {}
    turns = list(sample.turns.order_by("index"))
    assert [(t.user_message, t.model_response) for t in turns] == [
        (item["user"], item["model"]) for item in source["interaction"]
    ]
    feedback = ImportedFeedback.objects.get(turn=turns[0])
    assert feedback.criterion == "helpfulness"
    assert (feedback.score, feedback.rating_raw) == (4, "4")
    assert feedback.critique == "Safe response."
    assert feedback.refinement == turns[1].user_message
    assert feedback.source == "dress:dress_nlf_example.jsonl"
    assert ImportedFeedback.objects.get(turn=turns[1]).refinement == ""


def test_dress_caption_lands_on_the_image_registered_without_a_file(project):
    run_import(project, "dress", DRESS_EXAMPLE, criterion="harmlessness")

    image = Image.objects.get(project=project)
    assert image.file_name == "000000151112.jpg"
    assert image.captions == ["A double decker bus driving down the street"]
    assert image.is_missing
    assert image.sha256 == ""
    assert Sample.objects.get(project=project).image == image


@pytest.mark.parametrize(
    ("file_name", "criterion"),
    [
        ("harmlessness_nlf.jsonl", "harmlessness"),
        ("hallucination_nlf.jsonl", "honesty"),
        ("helpfulness_nlf.jsonl", "helpfulness"),
    ],
)
def test_dress_criterion_comes_from_the_published_file_name(project, tmp_path, file_name, criterion):
    path = tmp_path / file_name
    shutil.copyfile(DRESS_EXAMPLE, path)

    batch = run_import(project, "dress", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert batch.options["criterion"] == ""
    assert Sample.objects.get(project=project).target_criterion == criterion
    assert set(ImportedFeedback.objects.values_list("criterion", flat=True)) == {criterion}


def test_dress_criterion_option_wins_over_the_file_name(project, tmp_path):
    path = tmp_path / "harmlessness_nlf.jsonl"
    shutil.copyfile(DRESS_EXAMPLE, path)

    run_import(project, "dress", path, criterion="honesty")

    assert set(ImportedFeedback.objects.values_list("criterion", flat=True)) == {"honesty"}


def test_vlsafe_example_imports_prompts_awaiting_a_response(project):
    batch = run_import(project, "vlsafe", VLSAFE_EXAMPLE)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert counts(batch) == {"read": 3, "created": 3, "updated": 0, "skipped": 0, "rejected": 0}
    source = [json.loads(line) for line in VLSAFE_EXAMPLE.read_text(encoding="utf-8").splitlines()]
    samples = list(Sample.objects.filter(project=project).order_by("import_line"))
    assert len(samples) == 3
    for sample, record in zip(samples, source, strict=True):
        assert sample.target_criterion == "harmlessness"
        assert sample.source_dataset == "VLSafe"
        assert sample.reference_answer == record.get("reference", "")
        assert sample.image is not None
        assert sample.image.file_name == record["image_id"]
        assert sample.image.captions == [record["caption"]]
        turns = list(sample.turns.all())
        assert len(turns) == 1
        assert turns[0].user_message == record["query"]
        assert turns[0].model_response is None
    assert samples[2].reference_answer.startswith("I appreciate your interest")
    assert not ImportedFeedback.objects.exists()


def test_llava_conversation_pairs_messages_into_turns(project, tmp_path):
    path = write_json(
        tmp_path / "llava.json",
        [
            {
                "id": "a1",
                "image": "coco/train2017/000000033471.jpg",
                "conversations": [
                    {"from": "human", "value": "<image>\nWhat is this?"},
                    {"from": "gpt", "value": "A bus."},
                    {"from": "human", "value": "Color?"},
                    {"from": "gpt", "value": "Red"},
                ],
            }
        ],
    )

    batch = run_import(project, "llava", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert counts(batch) == {"read": 1, "created": 1, "updated": 0, "skipped": 0, "rejected": 0}
    sample = Sample.objects.get(project=project, external_id="a1")
    assert sample.source_dataset == "LLaVA"
    assert sample.image is not None
    assert sample.image.file_name == "coco/train2017/000000033471.jpg"
    assert [(t.index, t.user_message, t.model_response) for t in sample.turns.all()] == [
        (0, "What is this?", "A bus."),
        (1, "Color?", "Red"),
    ]


def test_llava_trailing_human_message_awaits_a_response(project, tmp_path):
    path = write_json(
        tmp_path / "llava.json",
        [{"id": 7, "conversations": [{"from": "human", "value": "Describe <image> please"}]}],
    )

    run_import(project, "llava", path)

    sample = Sample.objects.get(project=project, external_id="7")
    assert sample.image is None
    assert [(t.user_message, t.model_response) for t in sample.turns.all()] == [("Describe please", None)]


def coco_images() -> list[dict]:
    return [
        {"id": 151112, "file_name": "000000151112.jpg", "width": 640, "height": 427},
        {"id": 42, "file_name": "000000000042.jpg", "width": 500, "height": 375},
    ]


def test_coco_captions_attach_to_images_by_file_name(project, tmp_path):
    run_import(project, "dress", DRESS_EXAMPLE, criterion="harmlessness")
    before = Image.objects.get(project=project)
    path = write_json(
        tmp_path / "captions_val2017.json",
        {
            "images": coco_images(),
            "annotations": [
                {"id": 1, "image_id": 151112, "caption": "A red bus on a street. "},
                {"id": 2, "image_id": 151112, "caption": "A double decker bus driving down the street"},
                {"id": 3, "image_id": 42, "caption": "A dog on a sofa."},
            ],
        },
    )

    batch = run_import(project, "coco", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.updated, batch.rejected) == (2, 1, 1, 0)
    known = Image.objects.get(project=project, file_name="000000151112.jpg")
    assert known.captions == ["A double decker bus driving down the street", "A red bus on a street."]
    assert (known.width, known.height) == (640, 427)
    assert known.updated_at > before.updated_at
    registered = Image.objects.get(project=project, file_name="000000000042.jpg")
    assert registered.captions == ["A dog on a sofa."]
    assert (registered.width, registered.height) == (500, 375)
    assert registered.is_missing
    assert not registered.samples.exists()


def test_coco_instances_attach_labelled_boxes(project, tmp_path):
    path = write_json(
        tmp_path / "instances_val2017.json",
        {
            "images": coco_images(),
            "categories": [{"id": 6, "name": "bus"}, {"id": 1, "name": "person"}],
            "annotations": [
                {"id": 10, "image_id": 151112, "category_id": 6, "bbox": [10.0, 20.5, 300, 200.0], "area": 1.0},
                {"id": 11, "image_id": 151112, "category_id": 1, "bbox": [1, 2, 3, 4]},
                {"id": 12, "image_id": 42, "category_id": 1, "bbox": [5, 6, 7, 8]},
            ],
        },
    )

    batch = run_import(project, "coco", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.rejected) == (2, 2, 0)
    bus = Image.objects.get(project=project, file_name="000000151112.jpg")
    assert bus.object_boxes == [
        {"label": "bus", "bbox": [10, 20.5, 300, 200]},
        {"label": "person", "bbox": [1, 2, 3, 4]},
    ]
    assert Image.objects.get(project=project, file_name="000000000042.jpg").object_boxes == [
        {"label": "person", "bbox": [5, 6, 7, 8]}
    ]


def test_coco_annotations_reach_samples_imported_later(project, tmp_path):
    path = write_json(
        tmp_path / "captions_val2017.json",
        {"images": coco_images(), "annotations": [{"id": 1, "image_id": 151112, "caption": "A red bus."}]},
    )
    run_import(project, "coco", path)

    run_import(project, "dress", DRESS_EXAMPLE, criterion="harmlessness")

    image = Sample.objects.get(project=project).image
    assert image is not None
    assert image.file_name == "000000151112.jpg"
    assert image.captions == ["A red bus.", "A double decker bus driving down the street"]
    assert Image.objects.filter(project=project).count() == 2


def test_coco_reimport_changes_nothing(project, tmp_path):
    path = write_json(
        tmp_path / "captions_val2017.json",
        {"images": coco_images(), "annotations": [{"id": 1, "image_id": 42, "caption": "A dog."}]},
    )
    run_import(project, "coco", path)
    before = {i.file_name: (i.captions, i.updated_at) for i in Image.objects.all()}

    batch = run_import(project, "coco", path)

    assert (batch.records_read, batch.created, batch.updated, batch.skipped) == (2, 0, 0, 2)
    assert {i.file_name: (i.captions, i.updated_at) for i in Image.objects.all()} == before


def full_native_record() -> dict:
    return {
        "id": "native-1",
        "image": {
            "file_name": "pets/cat.jpg",
            "width": 64,
            "height": 48,
            "captions": ["A cat on a mat.", "  "],
            "objects": [{"label": "cat", "bbox": [1, 2, 30.5, 40]}],
            "regions": [{"description": "the cat's left ear", "bbox": [3, 4, 5, 6]}, {"description": "a mat"}],
            "notes": "photographed indoors",
        },
        "criterion": "helpful",
        "reference": "A grey cat sits on a mat.",
        "source": {"dataset": "pets-v1", "model": "lvlm-7b"},
        "metadata": {"split": "train", "tags": ["indoor", "animal"], "difficulty": 2},
        "turns": [
            {
                "user": "What is in the picture?",
                "model": "A dog.",
                "feedback": [
                    {
                        "criterion": "hallucination",
                        "score": 2,
                        "critique": "The animal is a cat.",
                        "refinement": "Look again at the animal.",
                    },
                    {"criterion": "helpfulness", "score": "5", "critique": "Short but on topic."},
                ],
            },
            {"user": "Look again at the animal.", "model": None},
        ],
    }


def test_native_record_with_every_field_round_trips(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [full_native_record()])

    batch = run_import(project, "native", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert counts(batch) == {"read": 1, "created": 1, "updated": 0, "skipped": 0, "rejected": 0}
    sample = Sample.objects.get(project=project, external_id="native-1")
    assert sample.target_criterion == "helpfulness"
    assert sample.reference_answer == "A grey cat sits on a mat."
    assert (sample.source_dataset, sample.source_model) == ("pets-v1", "lvlm-7b")
    assert sample.metadata == {"split": "train", "tags": ["indoor", "animal"], "difficulty": 2}
    assert len(sample.content_hash) == 64
    image = sample.image
    assert image is not None
    assert image.file_name == "pets/cat.jpg"
    assert (image.width, image.height) == (64, 48)
    assert image.captions == ["A cat on a mat."]
    assert image.object_boxes == [{"label": "cat", "bbox": [1, 2, 30.5, 40]}]
    assert image.regions == [{"description": "the cat's left ear", "bbox": [3, 4, 5, 6]}, {"description": "a mat"}]
    assert image.notes == "photographed indoors"
    turns = list(sample.turns.all())
    assert [(t.index, t.user_message, t.model_response) for t in turns] == [
        (0, "What is in the picture?", "A dog."),
        (1, "Look again at the animal.", None),
    ]
    feedback = {f.criterion: f for f in ImportedFeedback.objects.filter(turn=turns[0])}
    assert set(feedback) == {"honesty", "helpfulness"}
    assert (feedback["honesty"].score, feedback["honesty"].rating_raw) == (2, "2")
    assert feedback["honesty"].critique == "The animal is a cat."
    assert feedback["honesty"].refinement == "Look again at the animal."
    assert (feedback["helpfulness"].score, feedback["helpfulness"].rating_raw) == (5, "5")
    assert feedback["helpfulness"].refinement == ""
    assert feedback["helpfulness"].source == "native:samples.jsonl"
    assert not ImportedFeedback.objects.filter(turn=turns[1]).exists()


def test_native_minimal_record_takes_the_source_from_the_options(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [{"id": 12, "image": "a.jpg", "turns": [{"user": "Hi?"}]}])

    run_import(project, "native", path, source_dataset="in-house", source_model="lvlm-x")

    sample = Sample.objects.get(project=project)
    assert sample.external_id == "12"
    assert (sample.source_dataset, sample.source_model, sample.target_criterion) == ("in-house", "lvlm-x", "")
    assert sample.image is not None
    assert sample.image.file_name == "a.jpg"
    assert Turn.objects.get(sample=sample).model_response is None


def test_batch_records_who_imported_what(project, tmp_path):
    user = make_user("rex", project=project, role=Role.RESEARCHER)
    path = write_jsonl(tmp_path / "samples.jsonl", [{"id": "x", "turns": [{"user": "Hi?"}]}])

    batch = run_import(project, "native", path, user=user)

    assert batch.created_by == user
    assert (batch.format, batch.file_name, batch.project) == ("native", "samples.jsonl", project)
    assert batch.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert batch.bytes_done == batch.bytes_total == path.stat().st_size
    assert batch.started_at is not None and batch.finished_at is not None
    assert batch.started_at <= batch.finished_at


def test_example_files_equal_the_shared_copies():
    if not SHARED_FORMATS.is_dir():
        pytest.skip(f"{SHARED_FORMATS} does not exist here")
    shared = sorted(p.name for p in SHARED_FORMATS.iterdir() if p.is_file())
    assert shared, f"{SHARED_FORMATS} holds no files"
    for name in shared:
        copy = FORMATS_DIR / name
        assert copy.is_file(), f"demo/fixtures/formats lacks {name}"
        assert copy.read_bytes() == (SHARED_FORMATS / name).read_bytes(), f"{name} differs from the shared copy"


def test_native_object_confidence_is_kept_and_checked(project, tmp_path):
    boxes = [{"label": "cat", "bbox": [1, 2, 3, 4], "score": 0.87}]
    bad = [{"label": "cat", "bbox": [1, 2, 3, 4], "score": "high"}]
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            native_record("a", {"file_name": "a.png", "objects": boxes}),
            native_record("b", {"file_name": "b.png", "objects": bad}),
        ],
    )
    batch = run_import(project, "native", path)
    assert batch.created == 1
    assert batch.errors[0]["field"] == "image.objects[0].score"
    assert Image.objects.get(file_name="a.png").object_boxes == boxes
