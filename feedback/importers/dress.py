"""DRESS ``LVLM_NLF`` JSONL: ``{"image_id", "caption", "interaction": [{"user", "model", "rating", "critique NLF"}]}``.

Each published file holds one criterion (helpfulness_nlf, hallucination_nlf = honesty,
harmlessness_nlf); the criterion comes from the command or, failing that, the file name. The
refinement NLF of turn k is the user message of turn k+1. Ratings and critiques are kept as
imported feedback; fields we do not model are kept in the sample's metadata.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .base import ParseContext, SampleFormat
from .reader import iter_jsonl
from .records import (
    CRITERION_ALIASES,
    FeedbackRecord,
    ImageRecord,
    RecordError,
    SampleRecord,
    TurnRecord,
    expect_object,
    external_id_from,
    extras,
    get_list,
    get_str,
    image_file_name,
    parse_score,
)

RECORD_FIELDS = {"id", "image_id", "caption", "interaction"}
TURN_FIELDS = {"user", "model", "rating", "critique NLF"}


def criterion_from_file_name(path: Path) -> str:
    stem = path.name.split(".")[0].lower()
    for word, criterion in CRITERION_ALIASES.items():
        if stem.startswith(word):
            return criterion
    return ""


def context(path: Path, ctx: ParseContext) -> ParseContext:
    criterion = ctx.criterion or criterion_from_file_name(path)
    if not criterion:
        raise InvalidInput(
            "criterion",
            "a DRESS file holds one criterion: name it with --criterion, or use a published file name "
            "such as helpfulness_nlf.jsonl, hallucination_nlf.jsonl or harmlessness_nlf.jsonl",
        )
    if criterion not in ctx.criteria:
        raise InvalidInput(
            "criterion", f"criterion {criterion!r} is not in this project's rubric ({', '.join(ctx.criteria)})"
        )
    return ParseContext(ctx.criteria, ctx.scale, criterion, ctx.source_dataset or "DRESS", ctx.source_model)


def parse(value: Any, ctx: ParseContext) -> SampleRecord:
    obj = expect_object(value, "record")
    image_id = image_file_name(obj.get("image_id"), "image_id")
    caption = get_str(obj, "caption", required=False, limit="caption")
    items = get_list(obj, "interaction")
    if not items:
        raise RecordError("interaction", "must hold at least one turn")
    turns: list[TurnRecord] = []
    extra_fields: dict[str, Any] = {f"record.{k}": v for k, v in extras(obj, RECORD_FIELDS).items()}
    for i, item in enumerate(items):
        where = f"interaction[{i}]"
        turn = expect_object(item, where)
        extra_fields.update({f"{where}.{k}": v for k, v in extras(turn, TURN_FIELDS).items()})
        model = get_str(turn, "model", where, required=False, allow_empty=True, limit="model_response")
        score, raw = parse_score(turn.get("rating"), f"{where}.rating", ctx.scale)
        critique = get_str(turn, "critique NLF", where, required=False, allow_empty=True, limit="critique")
        feedback = [FeedbackRecord(ctx.criterion, score, raw, critique)] if (raw or critique) else []
        user = get_str(turn, "user", where, limit="user_message")
        turns.append(TurnRecord(user=user, model=model or None, feedback=feedback))
    for previous, following in pairwise(turns):
        for fb in previous.feedback:
            fb.refinement = following.user
    record_id = obj.get("id")
    if record_id is not None and not isinstance(record_id, str | int):
        raise RecordError("id", "expected a string or integer")
    external_id = (
        str(record_id)
        if record_id not in (None, "")
        else f"dress/{ctx.criterion}/{image_id}/{external_id_from(image_id, turns[0].user, turns[0].model or '')}"
    )
    return SampleRecord(
        external_id=external_id,
        image=ImageRecord(file_name=image_id, captions=[caption] if caption.strip() else []),
        turns=turns,
        target_criterion=ctx.criterion,
        source_dataset=ctx.source_dataset,
        source_model=ctx.source_model,
        metadata={"extra_fields": extra_fields} if extra_fields else {},
    )


def read(path: Path):
    with path.open("rb") as stream:
        yield from iter_jsonl(stream)


FORMAT = SampleFormat(name="dress", label="DRESS LVLM_NLF JSONL", read=read, parse=parse, context=context)
