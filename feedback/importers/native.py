"""The platform's own JSONL: one sample a line, able to express everything the model holds.

Strict: an unknown field is an error (a typo must not lose data silently); free-form extras go
under "metadata". The README documents every field.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ..references.models import URI_MAX
from .base import ParseContext, SampleFormat
from .reader import iter_jsonl
from .records import (
    FeedbackRecord,
    ImageRecord,
    RecordError,
    SampleRecord,
    TurnRecord,
    check_text,
    expect_object,
    get_list,
    get_optional_int,
    get_str,
    image_file_name,
    normalize_criterion,
    parse_captions,
    parse_objects,
    parse_regions,
    parse_score,
    reject_unknown,
)

SAMPLE_FIELDS = {"id", "image", "criterion", "reference", "source", "metadata", "turns"}
IMAGE_FIELDS = {"file_name", "ref", "width", "height", "captions", "objects", "regions", "notes"}
TURN_FIELDS = {"user", "model", "feedback"}
FEEDBACK_FIELDS = {"criterion", "score", "critique", "refinement"}


def parse_image(value: Any, path: str) -> ImageRecord | None:
    if value is None:
        return None
    if isinstance(value, str):
        return ImageRecord(file_name=image_file_name(value, path))
    obj = expect_object(value, path)
    reject_unknown(obj, IMAGE_FIELDS, path)
    ref = get_str(obj, "ref", path, required=False).strip()
    if len(ref) > URI_MAX:
        raise RecordError(f"{path}.ref", f"longer than {URI_MAX} characters")
    name = obj.get("file_name")
    if name is None and ref:
        # Named by its reference's last component when the record gives no name.
        name = PurePosixPath(urlsplit(ref).path if "://" in ref else ref).name
    return ImageRecord(
        ref=ref,
        file_name=image_file_name(name, f"{path}.file_name"),
        width=get_optional_int(obj, "width", path),
        height=get_optional_int(obj, "height", path),
        captions=parse_captions(get_list(obj, "captions", path, required=False), f"{path}.captions"),
        objects=parse_objects(get_list(obj, "objects", path, required=False), f"{path}.objects"),
        regions=parse_regions(get_list(obj, "regions", path, required=False), f"{path}.regions"),
        notes=get_str(obj, "notes", path, required=False, limit="note"),
    )


def parse_feedback(value: Any, path: str, ctx: ParseContext) -> FeedbackRecord:
    obj = expect_object(value, path)
    reject_unknown(obj, FEEDBACK_FIELDS, path)
    criterion = normalize_criterion(get_str(obj, "criterion", path), f"{path}.criterion", ctx.criteria)
    score, raw = parse_score(obj.get("score"), f"{path}.score", ctx.scale)
    return FeedbackRecord(
        criterion=criterion,
        score=score,
        rating_raw=raw,
        critique=get_str(obj, "critique", path, required=False, limit="critique"),
        refinement=get_str(obj, "refinement", path, required=False, limit="refinement"),
    )


def parse(value: Any, ctx: ParseContext) -> SampleRecord:
    obj = expect_object(value, "record")
    reject_unknown(obj, SAMPLE_FIELDS)
    external_id = obj.get("id")
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)
    if not isinstance(external_id, str) or not external_id.strip():
        raise RecordError("id", "is required: a non-empty string or integer")
    turns = []
    for i, item in enumerate(get_list(obj, "turns")):
        where = f"turns[{i}]"
        turn = expect_object(item, where)
        reject_unknown(turn, TURN_FIELDS, where)
        model = turn.get("model")
        if model is not None and not isinstance(model, str):
            raise RecordError(f"{where}.model", "expected a string or null")
        if model is not None:
            check_text(model, "model_response", f"{where}.model")
        feedback = [
            parse_feedback(f, f"{where}.feedback[{j}]", ctx)
            for j, f in enumerate(get_list(turn, "feedback", where, required=False))
        ]
        criteria = [f.criterion for f in feedback]
        if len(set(criteria)) != len(criteria):
            raise RecordError(f"{where}.feedback", "holds the same criterion twice")
        turns.append(
            TurnRecord(user=get_str(turn, "user", where, limit="user_message"), model=model, feedback=feedback)
        )
    if not turns:
        raise RecordError("turns", "must hold at least one turn")
    source = obj.get("source") or {}
    source = expect_object(source, "source")
    reject_unknown(source, {"dataset", "model"}, "source")
    metadata = expect_object(obj.get("metadata") or {}, "metadata")
    criterion = get_str(obj, "criterion", required=False)
    return SampleRecord(
        external_id=external_id.strip(),
        image=parse_image(obj.get("image"), "image"),
        turns=turns,
        target_criterion=normalize_criterion(criterion, "criterion", ctx.criteria) if criterion else "",
        reference_answer=get_str(obj, "reference", required=False, limit="reference_answer"),
        source_dataset=get_str(source, "dataset", "source", required=False) or ctx.source_dataset,
        source_model=get_str(source, "model", "source", required=False) or ctx.source_model,
        metadata=metadata,
    )


def read(path: Path):
    with path.open("rb") as stream:
        yield from iter_jsonl(stream)


FORMAT = SampleFormat(name="native", label="Native JSONL", read=read, parse=parse)
