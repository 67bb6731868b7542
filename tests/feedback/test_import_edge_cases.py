"""Bad and awkward input: every record is taken whole or reported by line and field, and nothing is lost."""

import logging
import zipfile

import pytest

from feedback.errors import InvalidInput
from feedback.images import ImageRefused, inspect_image, open_source
from feedback.importers import service as importer_service
from feedback.models import Image, ImportBatch, ImportedFeedback, Sample, Turn

from .import_helpers import (
    counts,
    dress_record,
    image_bytes,
    native_record,
    png_claiming,
    row_counts,
    run_import,
    write_json,
    write_jsonl,
)

pytestmark = pytest.mark.django_db


def errors(batch: ImportBatch) -> list[tuple]:
    return [(e["line"], e["field"], e["message"]) for e in batch.errors]


# Missing image files, attached later


def test_missing_image_is_registered_and_attached_by_a_later_import(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("s1", "pets/cat.png")])

    first = run_import(project, "native", path)

    assert first.status == ImportBatch.Status.COMPLETED, first.failure
    assert (first.created, first.images_attached, first.warnings) == (1, 0, [])
    image = Image.objects.get(project=project)
    assert image.is_missing
    assert (image.sha256, image.width, image.format, image.byte_size) == ("", None, "", None)
    assert Sample.objects.get().image == image

    folder = tmp_path / "images"
    folder.mkdir()
    data = image_bytes("PNG", (40, 30))
    (folder / "cat.png").write_bytes(data)

    second = run_import(project, "native", path, images=folder)

    assert second.status == ImportBatch.Status.COMPLETED, second.failure
    assert (second.created, second.updated, second.skipped, second.images_attached) == (0, 0, 1, 1)
    image.refresh_from_db()
    assert not image.is_missing
    assert (image.width, image.height, image.format, image.byte_size) == (40, 30, "PNG", len(data))
    assert image.file.read() == data
    assert Image.objects.count() == 1


def test_images_from_a_zip_are_matched_by_path_or_by_base_name(project, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("coco/train2017/000000000001.jpg", image_bytes("JPEG", (32, 24), (10, 200, 10)))
        zf.writestr("flat/000000000002.png", image_bytes("PNG", (16, 16), (10, 10, 200)))
    path = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            native_record("s1", "coco/train2017/000000000001.jpg"),
            native_record("s2", "000000000002.png"),
            native_record("s3", "000000000003.png"),
        ],
    )

    batch = run_import(project, "native", path, images=archive)

    assert (batch.created, batch.images_attached, batch.warnings) == (3, 2, [])
    images = {i.file_name: i for i in Image.objects.all()}
    assert (images["coco/train2017/000000000001.jpg"].format, images["coco/train2017/000000000001.jpg"].width) == (
        "JPEG",
        32,
    )
    assert images["000000000002.png"].format == "PNG"
    assert images["000000000003.png"].is_missing


def test_image_sources_read_folders_and_zips_without_leaving_them(tmp_path):
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.png").write_bytes(b"A")
    (folder / "b.png").write_bytes(b"B")
    (tmp_path / "secret.png").write_bytes(b"S")
    source = open_source(folder)
    assert source is not None
    assert source.read("sub/a.png") == b"A"
    assert source.read("coco/train2017/b.png") == b"B"
    assert source.read("elsewhere/a.png") is None
    assert source.read("../secret.png") is None
    assert source.read("missing.png") is None
    assert source.names() == ["b.png", "sub/a.png"]

    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dir/", b"")
        zf.writestr("dir/b.jpg", b"B")
    source = open_source(archive)
    assert source is not None
    try:
        assert source.read("dir/b.jpg") == b"B"
        assert source.read("other/b.jpg") == b"B"
        assert source.read("c.jpg") is None
        assert source.names() == ["dir/b.jpg"]
    finally:
        source.close()

    assert open_source("") is None
    with pytest.raises(InvalidInput, match="does not exist"):
        open_source(tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match="is not a zip file"):
        open_source(tmp_path / "secret.png")


def test_an_images_path_that_is_not_a_zip_fails_the_import(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("s1", "a.png")])
    not_a_zip = tmp_path / "images.zip"
    not_a_zip.write_text("plain text", encoding="utf-8")

    batch = run_import(project, "native", path, images=not_a_zip)

    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == "images.zip is not a zip file"
    assert not Sample.objects.exists()


# Refused image files


def import_with_image(project, tmp_path, file_name: str, data: bytes) -> ImportBatch:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    (folder / file_name).write_bytes(data)
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("ok", "fine.png"), native_record("s1", file_name)])
    (folder / "fine.png").write_bytes(image_bytes("PNG"))
    return run_import(project, "native", path, images=folder)


def assert_refused_but_sample_kept(batch: ImportBatch, file_name: str) -> str:
    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.created, batch.rejected, batch.images_attached) == (2, 0, 1)
    assert len(batch.warnings) == 1
    warning = batch.warnings[0]
    assert (warning["line"], warning["field"]) == (2, "image")
    assert warning["message"].startswith(f"image {file_name} refused: ")
    assert warning["message"].endswith("; the sample is kept, its image still missing")
    sample = Sample.objects.get(external_id="s1")
    assert sample.image is not None and sample.image.is_missing
    assert sample.turns.count() == 1
    assert not Image.objects.get(file_name="fine.png").is_missing
    return warning["message"]


def test_text_file_named_jpg_is_refused_and_the_sample_kept(project, tmp_path):
    batch = import_with_image(project, tmp_path, "photo.jpg", b"this is not a picture\n")

    message = assert_refused_but_sample_kept(batch, "photo.jpg")
    assert message == (
        "image photo.jpg refused: not an image in an accepted format (JPEG, PNG, WEBP, GIF, BMP, TIFF); "
        "the sample is kept, its image still missing"
    )


@pytest.mark.parametrize(("fmt", "file_name"), [("JPEG", "broken.jpg"), ("PNG", "broken.png")])
def test_truncated_image_is_refused(project, tmp_path, fmt, file_name):
    data = image_bytes(fmt, (200, 150))

    batch = import_with_image(project, tmp_path, file_name, data[: len(data) // 2])

    message = assert_refused_but_sample_kept(batch, file_name)
    assert message.startswith(f"image {file_name} refused: damaged or truncated image: ")
    assert "runcated" in message.removeprefix(f"image {file_name} refused: damaged or truncated image: ")


def test_png_whose_header_claims_a_huge_size_is_refused_naming_the_pixel_limit(project, tmp_path, settings):
    settings.IMAGE_MAX_PIXELS = 50_000_000

    batch = import_with_image(project, tmp_path, "bomb.png", png_claiming(100_000, 100_000))

    message = assert_refused_but_sample_kept(batch, "bomb.png")
    assert message == (
        "image bomb.png refused: the header claims too many pixels, over the limit of 50,000,000 "
        "(ANNOTATOR_IMAGE_MAX_PIXELS); the sample is kept, its image still missing"
    )


def test_image_over_the_configured_pixel_limit_is_refused_with_its_size(settings):
    settings.IMAGE_MAX_PIXELS = 1_000
    with pytest.raises(ImageRefused) as refused:
        inspect_image(image_bytes("PNG", (40, 30)))
    assert str(refused.value) == (
        "the header claims 40x30 = 1,200 pixels, over the limit of 1,000 (ANNOTATOR_IMAGE_MAX_PIXELS)"
    )
    assert inspect_image(image_bytes("PNG", (40, 25))).width == 40


def test_configured_limit_above_the_image_library_default_is_honoured(settings):
    settings.IMAGE_MAX_PIXELS = 200_000_000
    with pytest.raises(ImageRefused) as refused:
        inspect_image(png_claiming(10_000, 10_000))
    # Past the size check: the header is accepted, and only the missing rows refuse the file.
    assert str(refused.value).startswith("damaged or truncated image: ")


def test_identical_bytes_under_two_names_are_stored_once(project, tmp_path, media_root):
    folder = tmp_path / "images"
    folder.mkdir()
    data = image_bytes("JPEG", (48, 32), (1, 2, 3))
    (folder / "first.jpg").write_bytes(data)
    (folder / "second.jpeg").write_bytes(data)
    path = write_jsonl(
        tmp_path / "samples.jsonl", [native_record("s1", "first.jpg"), native_record("s2", "copies/second.jpeg")]
    )

    batch = run_import(project, "native", path, images=folder)

    assert batch.images_attached == 2
    first, second = Image.objects.order_by("file_name")
    assert first.file_name == "copies/second.jpeg"
    assert first.file.name == second.file.name
    assert first.sha256 == second.sha256
    stored = [p for p in media_root.rglob("*") if p.is_file()]
    assert len(stored) == 1
    assert stored[0].read_bytes() == data


# Duplicates and re-imports


def test_identical_duplicate_in_a_file_is_skipped(project, tmp_path):
    record = native_record("dup", "a.png")
    path = write_jsonl(tmp_path / "samples.jsonl", [record, native_record("other"), record])

    batch = run_import(project, "native", path)

    assert counts(batch) == {"read": 3, "created": 2, "updated": 0, "skipped": 1, "rejected": 0}
    assert Sample.objects.get(external_id="dup").import_line == 1


def test_duplicate_id_with_different_content_is_rejected_naming_the_earlier_line(project, tmp_path):
    path = write_jsonl(
        tmp_path / "samples.jsonl",
        [native_record("other"), native_record("dup", model="First."), native_record("dup", model="Second.")],
    )

    batch = run_import(project, "native", path)

    assert counts(batch) == {"read": 3, "created": 2, "updated": 0, "skipped": 0, "rejected": 1}
    assert errors(batch) == [(3, "id", "'dup' was already used at line 2 of this file, with different content")]
    assert Turn.objects.get(sample__external_id="dup").model_response == "First."


def test_duplicate_ids_across_chunks_stay_rejected_on_reimport(project, tmp_path, settings):
    settings.IMPORT_CHUNK_SIZE = 2
    lines = [native_record("dup", model="First.")]
    lines += [native_record(f"n{i}") for i in range(4)]
    lines += [native_record("dup", model="Second."), native_record("dup", model="First.")]
    path = write_jsonl(tmp_path / "samples.jsonl", lines)
    expected = [(6, "id", "'dup' was already used at line 1 of this file, with different content")]

    first = run_import(project, "native", path)
    second = run_import(project, "native", path)

    assert counts(first) == {"read": 7, "created": 5, "updated": 0, "skipped": 1, "rejected": 1}
    assert errors(first) == expected
    assert counts(second) == {"read": 7, "created": 0, "updated": 0, "skipped": 6, "rejected": 1}
    assert errors(second) == expected
    assert Turn.objects.get(sample__external_id="dup").model_response == "First."


def dress_lines() -> list:
    return [
        dress_record("a.jpg", ("Q1?", "A1.", "3", "Weak."), ("Be precise.", "A1 precise.", "5", "Better.")),
        dress_record("b.jpg", ("Q2?", "A2.", 6, "Good.")),
        dress_record("c.jpg", ("Q3?", "A3.", "", "")),
    ]


def test_reimport_of_the_same_file_changes_nothing(project, tmp_path):
    path = write_jsonl(tmp_path / "harmlessness_nlf.jsonl", dress_lines())
    first = run_import(project, "dress", path)
    assert counts(first) == {"read": 3, "created": 3, "updated": 0, "skipped": 0, "rejected": 0}
    before_rows = row_counts()
    before_samples = {s.external_id: (s.pk, s.updated_at, s.import_batch_id) for s in Sample.objects.all()}
    before_images = {i.file_name: (i.pk, i.updated_at, i.captions) for i in Image.objects.all()}
    before_turns = sorted(Turn.objects.values_list("pk", "user_message", "model_response"))
    before_feedback = sorted(ImportedFeedback.objects.values_list("pk", "score", "refinement"))

    second = run_import(project, "dress", path)

    assert second.status == ImportBatch.Status.COMPLETED, second.failure
    assert counts(second) == {"read": 3, "created": 0, "updated": 0, "skipped": 3, "rejected": 0}
    assert row_counts() == before_rows == {"samples": 3, "turns": 4, "feedback": 3, "images": 3}
    assert {s.external_id: (s.pk, s.updated_at, s.import_batch_id) for s in Sample.objects.all()} == before_samples
    assert {i.file_name: (i.pk, i.updated_at, i.captions) for i in Image.objects.all()} == before_images
    assert sorted(Turn.objects.values_list("pk", "user_message", "model_response")) == before_turns
    assert sorted(ImportedFeedback.objects.values_list("pk", "score", "refinement")) == before_feedback


def test_reimport_of_a_changed_record_updates_it_in_place(project, tmp_path):
    original = native_record("s1", "a.png", model="A dog.")
    original["turns"].append({"user": "Look again.", "model": "Still a dog."})
    original["turns"][0]["feedback"] = [{"criterion": "honesty", "score": 2, "critique": "Wrong animal."}]
    path = write_jsonl(tmp_path / "samples.jsonl", [original, native_record("s2")])
    run_import(project, "native", path)
    sample = Sample.objects.get(external_id="s1")
    turn_ids = list(sample.turns.values_list("pk", flat=True))

    changed = native_record("s1", "a.png", model="A cat.")
    changed["turns"][0]["feedback"] = [{"criterion": "honesty", "score": 6, "critique": "Right."}]
    changed["reference"] = "A cat."
    path = write_jsonl(tmp_path / "samples.jsonl", [changed, native_record("s2")])
    batch = run_import(project, "native", path)

    assert counts(batch) == {"read": 2, "created": 0, "updated": 1, "skipped": 1, "rejected": 0}
    updated = Sample.objects.get(pk=sample.pk)
    assert updated.reference_answer == "A cat."
    assert updated.import_batch == batch
    assert updated.updated_at > sample.updated_at
    assert updated.content_hash != sample.content_hash
    assert list(updated.turns.values_list("pk", "user_message", "model_response")) == [
        (turn_ids[0], "What is shown?", "A cat.")
    ]
    assert list(ImportedFeedback.objects.values_list("turn_id", "criterion", "score", "critique")) == [
        (turn_ids[0], "honesty", 6, "Right.")
    ]


# Records of the wrong shape


def test_wrong_types_are_rejected_by_line_and_field_and_neighbours_imported(project, tmp_path):
    good = dress_record("good1.jpg", ("Q?", "A.", "4", "Fine."))
    not_a_list = {"image_id": "x.jpg", "caption": "", "interaction": {"user": "Q?", "model": "A."}}
    rating_list = dress_record("x.jpg", ("Q?", "A.", [4], "Fine."))
    rating_out_of_scale = dress_record("x.jpg", ("Q?", "A.", "9", "Fine."))
    user_not_string = dress_record("x.jpg", ("Q?", "A.", "4", "Fine."), (5, "A.", "4", "Fine."))
    path = write_jsonl(
        tmp_path / "harmlessness_nlf.jsonl",
        [
            good,
            not_a_list,
            dress_record("good2.jpg", ("Q?", "A.", "4", "Fine.")),
            rating_list,
            rating_out_of_scale,
            user_not_string,
            dress_record("good3.jpg", ("Q?", "A.", "4", "Fine.")),
        ],
    )

    batch = run_import(project, "dress", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert counts(batch) == {"read": 7, "created": 3, "updated": 0, "skipped": 0, "rejected": 4}
    assert errors(batch) == [
        (2, "interaction", "expected an array, got object"),
        (4, "interaction[0].rating", "expected a number or a numeric string, got array"),
        (5, "interaction[0].rating", "score 9 is outside this project's scale 1-7"),
        (6, "interaction[1].user", "expected a string, got number"),
    ]
    assert sorted(Sample.objects.values_list("image__file_name", "import_line")) == [
        ("good1.jpg", 1),
        ("good2.jpg", 3),
        ("good3.jpg", 7),
    ]
    assert not Image.objects.filter(file_name="x.jpg").exists()


def test_native_wrong_types_name_the_nested_field(project, tmp_path):
    bad_width = native_record("w", {"file_name": "a.png", "width": "64"})
    bad_bbox = native_record("b", {"file_name": "a.png", "objects": [{"label": "cat", "bbox": [1, 2, "3", 4]}]})
    bad_model = native_record("m", model=["A cat."])
    bad_score = native_record("s")
    bad_score["turns"][0]["feedback"] = [{"criterion": "honesty", "score": 3.5}]
    bad_criterion = native_record("c")
    bad_criterion["turns"][0]["feedback"] = [{"criterion": "beauty", "score": 3}]
    path = write_jsonl(
        tmp_path / "samples.jsonl", [bad_width, bad_bbox, bad_model, bad_score, bad_criterion, native_record("ok")]
    )

    batch = run_import(project, "native", path)

    assert errors(batch) == [
        (1, "image.width", "expected an integer, got string"),
        (2, "image.objects[0].bbox[2]", "expected a number, got string"),
        (3, "turns[0].model", "expected a string or null"),
        (4, "turns[0].feedback[0].score", "expected a whole number on the scale, got 3.5"),
        (
            5,
            "turns[0].feedback[0].criterion",
            "unknown criterion 'beauty' (this project's criteria: helpfulness, honesty, harmlessness)",
        ),
    ]
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["ok"]


def test_numbers_too_large_for_the_database_are_rejected_naming_the_field(project, tmp_path):
    path = write_jsonl(
        tmp_path / "samples.jsonl",
        [native_record("big", {"file_name": "a.png", "width": 10**20}), native_record("ok", "b.png")],
    )

    batch = run_import(project, "native", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert errors(batch) == [(1, "image.width", "must not exceed 2147483647")]
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["ok"]


def test_nul_character_is_rejected_naming_the_field(project, tmp_path):
    path = write_jsonl(
        tmp_path / "harmlessness_nlf.jsonl",
        [
            dress_record("a.jpg", ("Q?", "A.", "4", "Fine."), ("More\u0000?", "B.", "4", "Fine.")),
            dress_record("b.jpg", ("Q?", "A.", "4", "Fine.")),
        ],
    )
    native = write_jsonl(
        tmp_path / "samples.jsonl",
        [{"id": "m", "metadata": {"note": "a\u0000b"}, "turns": [{"user": "Q?"}]}, native_record("ok")],
    )

    batch = run_import(project, "dress", path)
    native_batch = run_import(project, "native", native)

    assert errors(batch) == [(1, "interaction[1].user", "must not contain a NUL character")]
    assert errors(native_batch) == [(1, "metadata.note", "must not contain a NUL character")]
    assert sorted(Sample.objects.values_list("import_line", "target_criterion")) == [(2, ""), (2, "harmlessness")]


def test_nan_and_infinity_are_rejected_naming_the_field(project, tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(
        '{"id": "a", "image": {"file_name": "a.png", "objects": [{"label": "x", "bbox": [1, 2, NaN, 4]}]},'
        ' "turns": [{"user": "Q?"}]}\n'
        '{"id": "b", "metadata": {"scores": [1, -Infinity]}, "turns": [{"user": "Q?"}]}\n'
        '{"id": "c", "image": "c.png", "turns": [{"user": "Q?"}]}\n',
        encoding="utf-8",
    )

    batch = run_import(project, "native", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert errors(batch) == [
        (1, "image.objects[0].bbox[2]", "expected a finite number, got NaN"),
        (2, "metadata.scores[1]", "expected a finite number, got -Infinity"),
    ]
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["c"]
    assert list(Image.objects.values_list("file_name", flat=True)) == ["c.png"]


def test_coco_bad_annotations_are_rejected_and_the_rest_applied(project, tmp_path):
    path = tmp_path / "instances_val2017.json"
    path.write_text(
        """{
 "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}, {"id": 2, "file_name": 7}],
 "categories": [{"id": 1, "name": "cat"}],
 "annotations": [
  {"image_id": 1, "category_id": 1, "bbox": [1, 1, NaN, 2]},
  {"image_id": 1, "caption": "bad\\u0000caption"},
  {"image_id": 9, "caption": "no such image"},
  {"image_id": 1, "category_id": 5, "bbox": [1, 1, 2, 2]},
  {"image_id": 1},
  {"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},
  {"image_id": 1, "caption": "A cat."}
 ]
}""",
        encoding="utf-8",
    )

    batch = run_import(project, "coco", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.rejected) == (1, 1, 6)
    assert errors(batch) == [
        (None, "images[1].file_name", "expected a file name string, got number"),
        (None, "annotations[0].bbox[2]", "expected a finite number, got NaN"),
        (None, "annotations[1].caption", "must not contain a NUL character"),
        (None, "annotations[2].image_id", "no image with id 9 in this file"),
        (None, "annotations[3].category_id", "no category with id 5"),
        (None, "annotations[4]", "neither a caption nor a bbox"),
    ]
    image = Image.objects.get()
    assert (image.file_name, image.captions, image.object_boxes) == (
        "a.jpg",
        ["A cat."],
        [{"label": "cat", "bbox": [1, 1, 2, 2]}],
    )


def test_record_with_a_bad_second_turn_leaves_no_half_sample(project, tmp_path):
    half = native_record("half")
    half["turns"].append({"user": "", "model": "B."})
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("before"), half, native_record("after")])

    batch = run_import(project, "native", path)

    assert errors(batch) == [(2, "turns[1].user", "must not be empty")]
    assert not Sample.objects.filter(external_id="half").exists()
    assert list(Turn.objects.values_list("sample__external_id", flat=True)) == ["before", "after"]


def test_dress_record_with_a_bad_second_rating_leaves_no_feedback(project, tmp_path):
    path = write_jsonl(
        tmp_path / "harmlessness_nlf.jsonl",
        [dress_record("a.jpg", ("Q?", "A.", "4", "Fine."), ("Refine.", "B.", "eight", "Fine."))],
    )

    batch = run_import(project, "dress", path)

    assert errors(batch) == [(1, "interaction[1].rating", "expected a whole number on the scale, got 'eight'")]
    assert row_counts() == {"samples": 0, "turns": 0, "feedback": 0, "images": 0}


# Unknown fields


def test_native_rejects_unknown_fields_naming_them(project, tmp_path):
    top = native_record("top")
    top["colour"] = "red"
    nested = native_record("nested")
    nested["turns"][0]["rating"] = 4
    image = native_record("image", {"file_name": "a.png", "caption": "singular"})
    path = write_jsonl(tmp_path / "samples.jsonl", [top, nested, image, native_record("ok")])

    batch = run_import(project, "native", path)

    assert errors(batch) == [
        (1, "colour", "unknown field (allowed: criterion, id, image, metadata, reference, source, turns)"),
        (2, "turns[0].rating", "unknown field (allowed: feedback, model, user)"),
        (
            3,
            "image.caption",
            "unknown field (allowed: captions, file_name, height, notes, objects, ref, regions, width)",
        ),
    ]
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["ok"]


def test_dress_keeps_unknown_fields_in_the_metadata(project, tmp_path):
    record = dress_record("a.jpg", ("Q?", "A.", "4", "Fine."), ("Refine.", "B.", "5", "Good."))
    record["split"] = "val"
    record["interaction"][1]["latency_ms"] = 120
    path = write_jsonl(tmp_path / "harmlessness_nlf.jsonl", [record])

    batch = run_import(project, "dress", path)

    assert (batch.created, batch.rejected) == (1, 0)
    assert Sample.objects.get().metadata == {"extra_fields": {"record.split": "val", "interaction[1].latency_ms": 120}}


def test_vlsafe_keeps_unknown_fields_in_the_metadata(project, tmp_path):
    path = write_jsonl(
        tmp_path / "vlsafe.jsonl",
        [{"image_id": "a.jpg", "caption": "A jar.", "query": "How?", "category": "chemicals", "rank": [1, 2]}],
    )

    run_import(project, "vlsafe", path)

    assert Sample.objects.get().metadata == {"extra_fields": {"record.category": "chemicals", "record.rank": [1, 2]}}


def test_llava_keeps_unknown_fields_in_the_metadata(project, tmp_path):
    path = write_json(
        tmp_path / "llava.json",
        [{"id": "a1", "model": "llava-7b", "conversations": [{"from": "human", "value": "Hi?"}]}],
    )

    run_import(project, "llava", path)

    assert Sample.objects.get().metadata == {"extra_fields": {"record.model": "llava-7b"}}


# Lines that are not records


def test_non_utf8_line_is_rejected_and_neighbours_imported(project, tmp_path):
    bad = b'{"image_id": "b.jpg", "caption": "", "query": "Caf\xe9?"}'
    path = write_jsonl(
        tmp_path / "vlsafe.jsonl",
        [{"image_id": "a.jpg", "query": "One?"}, bad, {"image_id": "c.jpg", "query": "Three?"}],
    )

    batch = run_import(project, "vlsafe", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert counts(batch) == {"read": 3, "created": 2, "updated": 0, "skipped": 0, "rejected": 1}
    byte = bad.index(b"\xe9") + 1
    assert errors(batch) == [(2, "", f"not valid UTF-8 (byte {byte} of the line)")]
    assert sorted(line or 0 for line in Sample.objects.values_list("import_line", flat=True)) == [1, 3]


def test_non_utf8_llava_file_fails_as_a_whole_naming_the_line(project, tmp_path):
    path = tmp_path / "llava.json"
    path.write_bytes(b'[\n{"id": "a", "conversations": [\n{"from": "human", "value": "Caf\xe9?"}]}\n]\n')

    batch = run_import(project, "llava", path)

    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == "line 3: not valid UTF-8"
    assert batch.finished_at is not None
    assert not Sample.objects.exists()


def test_llava_syntax_error_stops_the_file_at_that_record(project, tmp_path):
    path = tmp_path / "llava.json"
    path.write_text(
        '[\n{"id": "a", "conversations": [{"from": "human", "value": "One?"}]},\n'
        '{"id": "b", "conversations": [{"from": "human", "value": "Two?"]},\n'
        '{"id": "c", "conversations": [{"from": "human", "value": "Three?"}]}\n]\n',
        encoding="utf-8",
    )

    batch = run_import(project, "llava", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.created, batch.rejected) == (1, 1)
    [(line, field, message)] = errors(batch)
    assert (line, field) == (3, "")
    assert message.startswith("invalid JSON: ")
    assert message.endswith("the rest of the file is unreadable")
    assert list(Sample.objects.values_list("external_id", flat=True)) == ["a"]


@pytest.mark.parametrize(
    ("format", "file_name", "content"),
    [
        ("native", "samples.jsonl", b""),
        ("native", "samples.jsonl", b"\n  \n\n"),
        ("dress", "harmlessness_nlf.jsonl", b""),
        ("vlsafe", "vlsafe.jsonl", b"\xef\xbb\xbf\n"),
        ("llava", "llava.json", b""),
        ("llava", "llava.json", b" [ ] "),
        ("coco", "captions_val2017.json", b""),
    ],
)
def test_empty_file_completes_with_a_warning(project, tmp_path, format, file_name, content):
    path = tmp_path / file_name
    path.write_bytes(content)

    batch = run_import(project, format, path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert batch.records_read == 0
    assert batch.warnings == [{"line": None, "field": "", "message": "the file holds no records"}]
    assert batch.bytes_done == batch.bytes_total == len(content)


def test_malformed_json_and_non_objects_are_rejected_by_line(project, tmp_path):
    path = write_jsonl(
        tmp_path / "samples.jsonl",
        [
            native_record("first"),
            '{"id": "broken", "turns": [',
            '["id", "turns"]',
            "42",
            '"a string"',
            "",
            native_record("last"),
        ],
    )

    batch = run_import(project, "native", path)

    assert counts(batch) == {"read": 6, "created": 2, "updated": 0, "skipped": 0, "rejected": 4}
    assert errors(batch)[1:] == [
        (3, "record", "expected an object, got array"),
        (4, "record", "expected an object, got number"),
        (5, "record", "expected an object, got string"),
    ]
    line, field, message = errors(batch)[0]
    assert (line, field) == (2, "")
    assert message.startswith("invalid JSON: ")
    assert "column" in message
    assert [s.import_line for s in Sample.objects.order_by("import_line")] == [1, 7]


def test_an_unexpected_error_in_an_import_is_logged_and_recorded_not_hidden(project, tmp_path, monkeypatch, caplog):
    """A bug (here a ValueError where none is expected) used to become a quiet "import failed": it is
    logged with its traceback, the batch records the failure, and the caller sees the exception."""
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("s1")])

    def broken(path):
        raise ValueError("a bug in the importer")

    monkeypatch.setattr(importer_service, "_sha256", broken)
    with caplog.at_level(logging.ERROR, logger="feedback.importers.service"), pytest.raises(ValueError, match="a bug"):
        run_import(project, "native", path)

    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == "unexpected error: ValueError: a bug in the importer"
    logged = [r for r in caplog.records if r.name == "feedback.importers.service" and r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info and f"import batch {batch.pk} failed" in logged[0].getMessage()
