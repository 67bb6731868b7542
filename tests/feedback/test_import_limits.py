"""Bounds on what an import reads: image files and zips by size and ratio, accepted image formats,
JSON nesting, and the length of imported texts; each refusal names its entry, line or field."""

from __future__ import annotations

import io
import json
import zipfile
from typing import IO, cast

import pytest
from PIL import Image as PILImage

from feedback.images import ImageRefused, inspect_image, read_capped
from feedback.limits import JSON_MAX_DEPTH, TEXT_MAX_CHARS
from feedback.models import Image, ImportBatch, Sample

from .import_helpers import dress_record, image_bytes, native_record, run_import, write_json, write_jsonl

pytestmark = pytest.mark.django_db

MB = 1024 * 1024
DEEP = "[" * 100_000 + "]" * 100_000


def errors(batch: ImportBatch) -> list[tuple]:
    return [(e["line"], e["field"], e["message"]) for e in batch.errors]


def warnings_of(batch: ImportBatch) -> list[str]:
    return [w["message"] for w in batch.warnings]


def samples_with_images(tmp_path, *names: str):
    return write_jsonl(tmp_path / "samples.jsonl", [native_record(f"s-{n}", n) for n in names])


# Zips and folders of images


def test_zip_entry_declaring_more_than_the_image_cap_is_refused_naming_it(project, tmp_path, settings):
    settings.IMAGE_MAX_BYTES = 1 * MB
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # stored: the ratio is 1, only the size is at fault
        zf.writestr("big.png", image_bytes() + bytes(3 * MB))
        zf.writestr("good.png", image_bytes())

    batch = run_import(project, "native", samples_with_images(tmp_path, "big.png", "good.png"), images=archive)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.created, batch.images_attached) == (2, 1)
    [message] = warnings_of(batch)
    assert message.startswith("image big.png refused: zip entry 'big.png' declares ")
    assert "over the limit of 1,048,576 (ANNOTATOR_IMAGE_MAX_BYTES)" in message
    assert Image.objects.get(file_name="big.png").is_missing
    assert not Image.objects.get(file_name="good.png").is_missing


def test_zip_bomb_entry_is_refused_by_its_ratio_before_it_is_read(project, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("bomb.png", "w") as entry:
        for _ in range(20):
            entry.write(bytes(MB))  # 20 MB of zeros in about 20 KB
    assert archive.stat().st_size < 100_000

    batch = run_import(project, "native", samples_with_images(tmp_path, "bomb.png"), images=archive)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    [message] = warnings_of(batch)
    assert message.startswith("image bomb.png refused: zip entry 'bomb.png' would expand ")
    assert "over the limit of 100 (ANNOTATOR_ZIP_MAX_RATIO)" in message


def test_reading_stops_at_the_cap_whatever_was_declared():
    class Endless(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            self.served += len(buffer)
            buffer[:] = bytes(len(buffer))
            return len(buffer)

    stream = Endless()
    with pytest.raises(ImageRefused, match="over the limit of 1,000"):
        read_capped(cast(IO[bytes], stream), 1000)  # a raw stream reads as IO[bytes] does
    assert stream.served <= 1001


def test_zip_with_too_many_entries_fails_naming_the_setting(project, tmp_path, settings):
    settings.ZIP_MAX_ENTRIES = 2
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", image_bytes())

    batch = run_import(project, "native", samples_with_images(tmp_path, "0.png"), images=archive)

    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == "images.zip holds 3 entries, over the limit of 2 (ANNOTATOR_ZIP_MAX_ENTRIES)"


def test_zip_unpacking_to_more_than_the_archive_cap_fails_naming_the_setting(project, tmp_path, settings):
    png = image_bytes()
    settings.ZIP_MAX_BYTES = 2 * len(png)
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", png)

    batch = run_import(project, "images", archive)

    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == (
        f"images.zip would unpack to {3 * len(png):,} bytes, over the limit of {2 * len(png):,} "
        "(ANNOTATOR_ZIP_MAX_BYTES)"
    )


def test_folder_file_over_the_image_cap_is_refused_naming_it(project, tmp_path, settings):
    settings.IMAGE_MAX_BYTES = 1 * MB
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "big.png").write_bytes(image_bytes() + bytes(2 * MB))
    (folder / "good.png").write_bytes(image_bytes())

    batch = run_import(project, "native", samples_with_images(tmp_path, "big.png", "good.png"), images=folder)

    assert batch.images_attached == 1
    assert warnings_of(batch) == [
        f"image big.png refused: {len(image_bytes()) + 2 * MB:,} bytes or more, over the limit of 1,048,576 "
        "(ANNOTATOR_IMAGE_MAX_BYTES); the sample is kept, its image still missing"
    ]


# Image formats


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX"])
def test_formats_outside_the_raster_allow_list_are_refused(fmt):
    buffer = io.BytesIO()
    PILImage.new("RGB", (16, 16), (1, 2, 3)).save(buffer, fmt)
    with pytest.raises(ImageRefused, match=r"not an image in an accepted format \(JPEG, PNG, WEBP, GIF, BMP, TIFF\)"):
        inspect_image(buffer.getvalue())


def test_encapsulated_postscript_is_never_handed_to_the_image_library():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"
    with pytest.raises(ImageRefused, match="not an image in an accepted format"):
        inspect_image(eps)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_accepted_raster_formats_are_read(fmt):
    assert inspect_image(image_bytes(fmt)).format == fmt


# Nesting depth


@pytest.mark.parametrize(
    ("format", "file_name", "good"),
    [
        ("native", "samples.jsonl", lambda n: native_record(f"s{n}")),
        ("dress", "helpfulness_nlf.jsonl", lambda n: dress_record(f"{n}.jpg", ("Q?", "A.", "5", "Fine."))),
        ("vlsafe", "vlsafe.jsonl", lambda n: {"image_id": f"{n}.jpg", "query": "Q?"}),
    ],
)
def test_a_line_nested_too_deep_is_rejected_alone(project, tmp_path, format, file_name, good):
    path = write_jsonl(tmp_path / file_name, [good(1), DEEP, good(2)])

    batch = run_import(project, format, path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.rejected) == (3, 2, 1)
    assert errors(batch) == [(2, "", f"nested deeper than {JSON_MAX_DEPTH} levels of arrays and objects")]


def test_a_native_record_with_deep_metadata_is_rejected_alone(project, tmp_path):
    deep = native_record("deep")
    deep["metadata"] = {"x": json.loads("[" * 70 + "]" * 70)}
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("a"), deep, native_record("b")])

    batch = run_import(project, "native", path)

    assert errors(batch) == [(2, "", f"nested deeper than {JSON_MAX_DEPTH} levels of arrays and objects")]
    assert set(Sample.objects.values_list("external_id", flat=True)) == {"a", "b"}


def llava_item(n: int) -> str:
    return json.dumps({"id": f"l{n}", "image": f"{n}.jpg", "conversations": [{"from": "human", "value": "Q?"}]})


def test_a_llava_element_nested_too_deep_is_rejected_alone(project, tmp_path):
    path = tmp_path / "llava.json"
    path.write_text(f"[\n{llava_item(1)},\n{DEEP},\n{llava_item(2)}\n]\n", encoding="utf-8")

    batch = run_import(project, "llava", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.rejected) == (3, 2, 1)
    assert errors(batch) == [(3, "", f"nested deeper than {JSON_MAX_DEPTH} levels of arrays and objects")]


def test_an_unclosed_deep_llava_element_keeps_the_records_before_it(project, tmp_path):
    path = tmp_path / "llava.json"
    path.write_text(f"[\n{llava_item(1)},\n" + "[" * 100_000, encoding="utf-8")

    batch = run_import(project, "llava", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert batch.created == 1
    assert errors(batch) == [
        (3, "", f"nested deeper than {JSON_MAX_DEPTH} levels of arrays and objects; the rest of the file is unreadable")
    ]


def test_a_coco_file_nested_too_deep_fails_naming_the_depth(project, tmp_path):
    path = tmp_path / "instances.json"
    path.write_text('{"images": [' + DEEP + "]}", encoding="utf-8")

    batch = run_import(project, "coco", path)

    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == f"nested deeper than {JSON_MAX_DEPTH} levels of arrays and objects"


# Text lengths


def over(kind: str) -> str:
    return "x" * (TEXT_MAX_CHARS[kind] + 1)


def length_error(kind: str) -> str:
    return f"at most {TEXT_MAX_CHARS[kind]:,} characters (got {TEXT_MAX_CHARS[kind] + 1:,})"


def test_native_texts_over_their_bound_reject_the_record_naming_line_and_field(project, tmp_path):
    long_user = native_record("u", user=over("user_message"))
    long_model = native_record("m", model=over("model_response"))
    long_reference = {**native_record("r"), "reference": over("reference_answer")}
    long_caption = native_record("c", {"file_name": "c.jpg", "captions": ["ok", over("caption")]})
    long_critique = native_record("f")
    long_critique["turns"][0]["feedback"] = [{"criterion": "honesty", "score": 3, "critique": over("critique")}]
    path = write_jsonl(
        tmp_path / "samples.jsonl",
        [native_record("ok"), long_user, long_model, long_reference, long_caption, long_critique],
    )

    batch = run_import(project, "native", path)

    assert (batch.created, batch.rejected) == (1, 5)
    assert errors(batch) == [
        (2, "turns[0].user", length_error("user_message")),
        (3, "turns[0].model", length_error("model_response")),
        (4, "reference", length_error("reference_answer")),
        (5, "image.captions[1]", length_error("caption")),
        (6, "turns[0].feedback[0].critique", length_error("critique")),
    ]


def test_dress_vlsafe_and_llava_texts_over_their_bound_are_rejected_by_field(project, tmp_path):
    dress = write_jsonl(
        tmp_path / "helpfulness_nlf.jsonl",
        [
            dress_record("a.jpg", ("Q?", "A.", "5", over("critique"))),
            dress_record("b.jpg", ("Q?", "A.", "5", "ok"), caption=over("caption")),
            dress_record("c.jpg", ("Q?", "A.", "5", "ok"), ("R", over("model_response"), "6", "ok")),
        ],
    )
    batch = run_import(project, "dress", dress)
    assert errors(batch) == [
        (1, "interaction[0].critique NLF", length_error("critique")),
        (2, "caption", length_error("caption")),
        (3, "interaction[1].model", length_error("model_response")),
    ]

    vlsafe = write_jsonl(
        tmp_path / "vlsafe.jsonl",
        [
            {"image_id": "a.jpg", "query": over("user_message")},
            {"image_id": "b.jpg", "query": "Q", "reference": over("reference_answer")},
        ],
    )
    batch = run_import(project, "vlsafe", vlsafe)
    assert errors(batch) == [
        (1, "query", length_error("user_message")),
        (2, "reference", length_error("reference_answer")),
    ]

    llava = write_json(
        tmp_path / "llava.json",
        [
            {
                "id": "l1",
                "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": over("model_response")}],
            }
        ],
    )
    batch = run_import(project, "llava", llava)
    assert errors(batch) == [(2, "conversations[1].value", length_error("model_response"))]


def test_coco_caption_over_its_bound_is_rejected_alone(project, tmp_path):
    path = write_json(
        tmp_path / "captions.json",
        {
            "images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"image_id": 1, "caption": over("caption")}, {"image_id": 1, "caption": "A cat."}],
        },
    )

    batch = run_import(project, "coco", path)

    assert errors(batch) == [(None, "annotations[0].caption", length_error("caption"))]
    assert Image.objects.get().captions == ["A cat."]


# COCO at size


def test_coco_keys_in_any_order_and_many_boxes_on_one_image_are_deduplicated(project, tmp_path):
    boxes = [{"image_id": 7, "category_id": 1 + i % 2, "bbox": [i % 1000, i // 1000, 5, 5]} for i in range(20_000)]
    duplicates = [dict(box, id=100_000 + i) for i, box in enumerate(boxes[:5000])]
    document = {  # annotations before images, categories last
        "annotations": [
            *boxes,
            *duplicates,
            {"image_id": 8, "caption": "A dog."},
            {"image_id": 8, "caption": "A dog."},
        ],
        "images": [{"id": 7, "file_name": "seven.jpg", "width": 1000, "height": 20}, {"id": 8, "file_name": "8.jpg"}],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }
    path = tmp_path / "instances_train2017.json"
    path.write_text(json.dumps(document), encoding="utf-8")

    batch = run_import(project, "coco", path)

    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert (batch.records_read, batch.created, batch.rejected) == (2, 2, 0)
    seven = Image.objects.get(file_name="seven.jpg")
    assert len(seven.object_boxes) == 20_000
    assert seven.object_boxes[:3] == [
        {"label": "cat", "bbox": [0, 0, 5, 5]},
        {"label": "dog", "bbox": [1, 0, 5, 5]},
        {"label": "cat", "bbox": [2, 0, 5, 5]},
    ]
    assert Image.objects.get(file_name="8.jpg").captions == ["A dog."]

    again = run_import(project, "coco", path)
    assert (again.created, again.updated, again.skipped) == (0, 0, 2)
    assert len(Image.objects.get(file_name="seven.jpg").object_boxes) == 20_000


def test_coco_file_that_is_not_an_object_with_images_fails_as_a_whole(project, tmp_path):
    for content in ("[1, 2]", '{"annotations": []}', '{"images": {"id": 1}}'):
        path = tmp_path / "instances.json"
        path.write_text(content, encoding="utf-8")
        batch = run_import(project, "coco", path)
        assert (batch.status, batch.failure) == (
            ImportBatch.Status.FAILED,
            'not a COCO annotation file: expected an object with an "images" array',
        ), content


def test_the_entry_count_a_zip_declares_is_checked_before_its_entries_are_listed(project, tmp_path, settings):
    settings.ZIP_MAX_ENTRIES = 1000
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("0.png", image_bytes())
    data = bytearray(buffer.getvalue())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8 : end + 12] = (60_000).to_bytes(2, "little") * 2  # entries on this disk, and in all
    archive = tmp_path / "images.zip"
    archive.write_bytes(bytes(data))

    batch = run_import(project, "images", archive)

    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == "images.zip holds 60,000 entries, over the limit of 1,000 (ANNOTATOR_ZIP_MAX_ENTRIES)"


def test_a_zip_cannot_hide_entries_from_its_end_record(project, tmp_path, settings):
    settings.ZIP_MAX_ENTRIES = 2
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", image_bytes())
    data = bytearray(buffer.getvalue())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8 : end + 12] = (1).to_bytes(2, "little") * 2  # claims one entry
    archive = tmp_path / "images.zip"
    archive.write_bytes(bytes(data))

    batch = run_import(project, "images", archive)

    assert batch.failure == "images.zip holds 3 entries, over the limit of 2 (ANNOTATOR_ZIP_MAX_ENTRIES)"


def test_a_central_directory_larger_than_the_entries_allowed_need_is_refused_unread(project, tmp_path, settings):
    settings.ZIP_MAX_ENTRIES = 1
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x" * 600 + ".png", image_bytes())

    batch = run_import(project, "images", archive)

    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure.startswith("images.zip has a central directory of ")
    assert batch.failure.endswith("bytes, more than 1 entries need (ANNOTATOR_ZIP_MAX_ENTRIES)")
