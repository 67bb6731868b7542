"""VLSafe JSONL: ``{"image_id", "caption", "query", "reference"?}``; harmlessness prompts with no response yet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import ParseContext, SampleFormat
from .reader import iter_jsonl
from .records import (
    ImageRecord,
    SampleRecord,
    TurnRecord,
    expect_object,
    external_id_from,
    extras,
    get_str,
    image_file_name,
)

RECORD_FIELDS = {"id", "image_id", "caption", "query", "reference"}


def context(path: Path, ctx: ParseContext) -> ParseContext:
    criterion = ctx.criterion or ("harmlessness" if "harmlessness" in ctx.criteria else "")
    return ParseContext(ctx.criteria, ctx.scale, criterion, ctx.source_dataset or "VLSafe", ctx.source_model)


def parse(value: Any, ctx: ParseContext) -> SampleRecord:
    obj = expect_object(value, "record")
    image_id = image_file_name(obj.get("image_id"), "image_id")
    caption = get_str(obj, "caption", required=False, limit="caption")
    query = get_str(obj, "query", limit="user_message")
    record_id = obj.get("id")
    external_id = (
        str(record_id) if record_id not in (None, "") else f"vlsafe/{image_id}/{external_id_from(image_id, query)}"
    )
    extra = extras(obj, RECORD_FIELDS)
    return SampleRecord(
        external_id=external_id,
        image=ImageRecord(file_name=image_id, captions=[caption] if caption.strip() else []),
        turns=[TurnRecord(user=query, model=None)],
        target_criterion=ctx.criterion,
        reference_answer=get_str(obj, "reference", required=False, limit="reference_answer"),
        source_dataset=ctx.source_dataset,
        source_model=ctx.source_model,
        metadata={"extra_fields": {f"record.{k}": v for k, v in extra.items()}} if extra else {},
    )


def read(path: Path):
    with path.open("rb") as stream:
        yield from iter_jsonl(stream)


FORMAT = SampleFormat(name="vlsafe", label="VLSafe JSONL", read=read, parse=parse, context=context)
