"""COCO annotation files (``captions_*.json``, ``instances_*.json``): captions and boxes for images.

Annotations attach to the project's images by file name. Images the project does not know yet
are registered (with COCO's width and height) so that samples imported later find their
annotations; their files can arrive later too. Boxes keep COCO's ``[x, y, w, h]`` pixels and take
their category's name as label.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .reader import SourceError, load_json_document
from .records import (
    ImageRecord,
    RecordError,
    expect_object,
    get_list,
    get_optional_int,
    get_str,
    image_file_name,
    parse_bbox,
)

CocoItem = tuple[str, ImageRecord | RecordError]


def load(path: Path) -> dict[str, Any]:
    text = load_json_document(path)
    if not text:
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise SourceError('not a COCO annotation file: expected an object with an "images" array')
    return document


def read(path: Path) -> Iterator[CocoItem]:
    """Yields (where, image record or error); one image record per image of the file."""
    document = load(path)
    if not document:
        return
    images: dict[Any, ImageRecord] = {}
    for i, entry in enumerate(document["images"]):
        where = f"images[{i}]"
        try:
            obj = expect_object(entry, where)
            if "id" not in obj:
                raise RecordError(f"{where}.id", "is required")
            images[obj["id"]] = ImageRecord(
                file_name=image_file_name(obj.get("file_name"), f"{where}.file_name"),
                width=get_optional_int(obj, "width", where),
                height=get_optional_int(obj, "height", where),
            )
        except RecordError as exc:
            yield where, exc
    categories: dict[Any, str] = {}
    for i, entry in enumerate(get_list(document, "categories", required=False)):
        where = f"categories[{i}]"
        try:
            obj = expect_object(entry, where)
            categories[obj.get("id")] = get_str(obj, "name", where)
        except RecordError as exc:
            yield where, exc
    for i, entry in enumerate(get_list(document, "annotations", required=False)):
        where = f"annotations[{i}]"
        try:
            attach_annotation(entry, where, images, categories)
        except RecordError as exc:
            yield where, exc
    for image_id, record in images.items():
        yield f"image id {image_id}", record


def attach_annotation(entry: Any, where: str, images: dict[Any, ImageRecord], categories: dict[Any, str]) -> None:
    obj = expect_object(entry, where)
    image = images.get(obj.get("image_id"))
    if image is None:
        raise RecordError(f"{where}.image_id", f"no image with id {obj.get('image_id')!r} in this file")
    if "caption" in obj:
        caption = get_str(obj, "caption", where, allow_empty=True).strip()
        if caption and caption not in image.captions:
            image.captions.append(caption)
    elif "bbox" in obj:
        bbox = parse_bbox(obj["bbox"], f"{where}.bbox")
        label = categories.get(obj.get("category_id"))
        if label is None:
            raise RecordError(f"{where}.category_id", f"no category with id {obj.get('category_id')!r}")
        box = {"label": label, "bbox": bbox}
        if box not in image.objects:
            image.objects.append(box)
    else:
        raise RecordError(where, "neither a caption nor a bbox")
