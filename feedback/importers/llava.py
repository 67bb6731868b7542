"""LLaVA-style conversation JSON: a list of ``{"id", "image", "conversations": [{"from", "value"}]}``.

Human and gpt messages pair up into turns; the ``<image>`` placeholder is dropped from the text
(the sample's image stands for it). A trailing human message becomes a turn awaiting a response.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .base import ParseContext, SampleFormat
from .reader import iter_json_array
from .records import (
    ImageRecord,
    RecordError,
    SampleRecord,
    TurnRecord,
    check_text,
    expect_object,
    extras,
    get_list,
    get_str,
    image_file_name,
)

RECORD_FIELDS = {"id", "image", "conversations"}
USER_ROLES = {"human", "user"}
MODEL_ROLES = {"gpt", "assistant", "model"}
IMAGE_TOKEN = re.compile(r"\s*<image>\s*")


def parse(value: Any, ctx: ParseContext) -> SampleRecord:
    obj = expect_object(value, "record")
    record_id = obj.get("id")
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    if not isinstance(record_id, str) or not record_id.strip():
        raise RecordError("id", "is required: a non-empty string or integer")
    image = obj.get("image")
    turns: list[TurnRecord] = []
    for i, item in enumerate(get_list(obj, "conversations")):
        where = f"conversations[{i}]"
        message = expect_object(item, where)
        role = get_str(message, "from", where).strip().lower()
        text = get_str(message, "value", where, allow_empty=True)
        if role in USER_ROLES:
            if turns and turns[-1].model is None:
                raise RecordError(where, "two human messages in a row")
            text = IMAGE_TOKEN.sub(" ", text).strip() if i == 0 else text
            if not text:
                raise RecordError(f"{where}.value", "must not be empty")
            turns.append(TurnRecord(user=check_text(text, "user_message", f"{where}.value"), model=None))
        elif role in MODEL_ROLES:
            if not turns or turns[-1].model is not None:
                raise RecordError(where, "a gpt message must answer a human message")
            turns[-1].model = check_text(text, "model_response", f"{where}.value")
        else:
            raise RecordError(f"{where}.from", f"unknown speaker {role!r} (expected human or gpt)")
    if not turns:
        raise RecordError("conversations", "must hold at least one human message")
    extra = extras(obj, RECORD_FIELDS)
    return SampleRecord(
        external_id=record_id.strip(),
        image=ImageRecord(file_name=image_file_name(image, "image")) if image is not None else None,
        turns=turns,
        target_criterion=ctx.criterion,
        source_dataset=ctx.source_dataset or "LLaVA",
        source_model=ctx.source_model,
        metadata={"extra_fields": {f"record.{k}": v for k, v in extra.items()}} if extra else {},
    )


def read(path: Path):
    yield from iter_json_array(path)


FORMAT = SampleFormat(name="llava", label="LLaVA conversation JSON", read=read, parse=parse)
