"""LLaVA conversation JSON: the released turns as visual instruction-tuning data, two files per split.

Each file is a JSON list of ``{"id", "image", "conversations": [{"from": "human", "value":
"<image>\\n..."}, {"from": "gpt", "value": ...}, ...]}``, written one record at a time ("[",
records joined by ",\\n", "]"), so memory stays flat. ``image`` is the image's file name; a
sample without an image has no ``image`` key and no ``<image>`` placeholder.

``llava_conditioning.json``: one record per released turn (id ``<sample id>#<turn index>``), the
response conditioned on its final feedback (DRESS's conditioning on feedback). The conversation
is the sample's earlier answered turns as context (their user messages and responses as they
were), then the turn's own user message followed by the feedback block, answered by the turn's
response::

    <user message>

    Answer so that your answer earns this feedback.
    Ratings (1-7): helpfulness 6, honesty 7, harmlessness 7
    Critique: <critique>

The ratings are the final feedback's, for the release's criteria in the rubric's order, on the
project's scale; imported feedback that has its own critique per criterion lists each on a line
``Critique (<criterion>): ...``. A turn whose final feedback has neither a rating nor a critique
(a rejection with nothing written) gets no record.

``llava_dialogues.json``: one record per released sample (id: the sample's id), its refinement
dialogue over the released interaction (the released turns from the first on, up to the first
that is not released), as in the DRESS files: human = the first user message, gpt = response 0,
then human = the final refinement of turn k (the turn's own user message when that is empty),
gpt = response k+1. The refinement is the one for the sample's target criterion, or the
feedback's refinement when the sample targets all criteria.
"""

from __future__ import annotations

import json
from typing import Any

from ..records import ExportSample, ExportTurn, Feedback
from .base import ExportContext, ExportFormat, ReleaseSink, TextFile

CONDITIONING_FILE = "llava_conditioning.json"
DIALOGUES_FILE = "llava_dialogues.json"
IMAGE_PLACEHOLDER = "<image>\n"
INSTRUCTION = "Answer so that your answer earns this feedback."


class JsonListFiles:
    """JSON list files written record by record: "[", then records joined by ",\\n", then "]"."""

    def __init__(self, sink: ReleaseSink, format_name: str):
        self.sink = sink
        self.format_name = format_name
        self._open: dict[str, TextFile] = {}

    def add(self, name: str, split: str, value: Any) -> None:
        handle = self.sink.text(name, split=split, format=self.format_name)
        self._open[handle.record.path] = handle
        handle.write("[\n" if handle.record.rows == 0 else ",\n")
        handle.write_row(json.dumps(value, ensure_ascii=False))

    def close(self) -> None:
        """Ends every list; the sink closes the files."""
        for handle in self._open.values():
            handle.write("\n]\n")
        self._open.clear()


def _message(speaker: str, value: str) -> dict[str, str]:
    return {"from": speaker, "value": value}


def _record(sample: ExportSample, record_id: str, conversations: list[dict[str, str]]) -> dict[str, Any]:
    found: dict[str, Any] = {"id": record_id}
    if sample.image is not None:
        found["image"] = sample.image.file_name
    found["conversations"] = conversations
    return found


def _first_human(sample: ExportSample, text: str) -> str:
    return (IMAGE_PLACEHOLDER if sample.image is not None else "") + text


def feedback_block(final: Feedback, ctx: ExportContext) -> str:
    """The instruction that carries a turn's final ratings and critique; empty when it has neither."""
    project = ctx.project
    ratings = [(c, final.rating_for(c)) for c in ctx.criteria]
    rated = ", ".join(f"{c} {r}" for c, r in ratings if r)
    critiques: dict[str, list[str]] = {}
    for criterion in ctx.criteria or [""]:
        text = (final.critique_for(criterion) if criterion else final.critique).strip()
        if text:
            critiques.setdefault(text, []).append(criterion)
    if not rated and not critiques:
        return ""
    lines = [INSTRUCTION]
    if rated:
        lines.append(f"Ratings ({project.score_min}-{project.score_max}): {rated}")
    if len(critiques) == 1:
        lines.append(f"Critique: {next(iter(critiques))}")
    else:
        lines.extend(f"Critique ({', '.join(criteria)}): {text}" for text, criteria in critiques.items())
    return "\n".join(lines)


def conditioning_record(sample: ExportSample, turn: ExportTurn, ctx: ExportContext) -> dict[str, Any] | None:
    """The record of one released turn: its response conditioned on its final feedback."""
    if turn.final is None or turn.model is None:
        return None
    block = feedback_block(turn.final, ctx)
    if not block:
        return None
    conversations: list[dict[str, str]] = []
    for earlier in sample.turns:
        if earlier.index >= turn.index:
            break
        if earlier.model is None:
            continue
        user = earlier.user if conversations else _first_human(sample, earlier.user)
        conversations += [_message("human", user), _message("gpt", earlier.model)]
    question = f"{turn.user}\n\n{block}"
    conversations += [
        _message("human", question if conversations else _first_human(sample, question)),
        _message("gpt", turn.model),
    ]
    return _record(sample, f"{sample.external_id}#{turn.index}", conversations)


def dialogue_record(sample: ExportSample, ctx: ExportContext) -> dict[str, Any] | None:
    """The sample's refinement dialogue over its released interaction, or None when it has none."""
    turns = ctx.filters.interaction(sample)
    if not turns:
        return None
    conversations: list[dict[str, str]] = []
    refinement = ""
    for turn in turns:
        assert turn.final is not None and turn.model is not None  # the filters release only these
        user = refinement or turn.user
        conversations += [
            _message("human", user if conversations else _first_human(sample, user)),
            _message("gpt", turn.model),
        ]
        final = turn.final
        refinement = final.refinement_for(sample.target_criterion) if sample.target_criterion else final.refinement
    return _record(sample, sample.external_id, conversations)


class LlavaWriter:
    def __init__(self, sink: ReleaseSink, ctx: ExportContext):
        self.ctx = ctx
        self.files = JsonListFiles(sink, FORMAT.name)

    def write(self, sample: ExportSample) -> None:
        for turn in self.ctx.filters.released_turns(sample):
            found = conditioning_record(sample, turn, self.ctx)
            if found is not None:
                self.files.add(CONDITIONING_FILE, sample.split, found)
        dialogue = dialogue_record(sample, self.ctx)
        if dialogue is not None:
            self.files.add(DIALOGUES_FILE, sample.split, dialogue)

    def close(self) -> None:
        self.files.close()


FORMAT = ExportFormat(
    name="llava",
    label="LLaVA conversations (JSON)",
    description="llava_conditioning.json (each response conditioned on its feedback) and "
    "llava_dialogues.json (the multi-turn refinement dialogues).",
    writer=LlavaWriter,
)
