"""Preference pairs JSONL: where a reviewer edited or rejected an LLM draft, the human's final
feedback (``chosen``) against the draft it started from (``rejected``); ``preference_pairs.jsonl``
per split, one record per such released turn.

``{"id", "sample_id", "turn_index", "image", "caption", "user", "response", "target_criterion",
"decision", "reason", "chosen", "rejected", "draft_id", "revision_id", "reviewer", "reviewed_at",
"draft_model", "prompt_version"}``, where ``chosen`` and ``rejected`` are each
``{"critique", "refinement", "scores"}`` and ``scores`` holds every criterion of the release
(the rubric's order), null where the feedback has no score. ``id`` is ``<sample id>#<turn index>``.

Only released turns count, so the release's filters apply: rejections are paired when the
release's ``decisions`` filter includes ``rejected`` (its default is accepted and edited). The
chosen side of a rejection is what the reviewer wrote, possibly an empty critique; ``reason``
says why the draft was rejected. Turns accepted as drafted, imported feedback, feedback written
with no draft, and edits that changed nothing of the critique, refinement or scores give no pair.
"""

from __future__ import annotations

from typing import Any

from feedback.review.models import Decision

from ..records import ExportSample, ExportTurn
from .base import ExportContext, ExportFormat, ReleaseSink, json_line

FILE_NAME = "preference_pairs.jsonl"
PAIRED = (Decision.EDITED.value, Decision.REJECTED.value)


def _side(critique: str, refinement: str, scores: dict[str, int], criteria: list[str]) -> dict[str, Any]:
    return {"critique": critique, "refinement": refinement, "scores": {c: scores.get(c) for c in criteria}}


def pair(sample: ExportSample, turn: ExportTurn, ctx: ExportContext) -> dict[str, Any] | None:
    """The pair of one released turn, or None when a human did not edit or reject a draft there."""
    final, draft = turn.final, turn.draft
    if final is None or draft is None or final.decision not in PAIRED or final.draft_id != draft.id:
        return None
    chosen = _side(final.critique, final.refinement, final.scores, ctx.criteria)
    rejected = _side(draft.critique, draft.refinement, draft.scores, ctx.criteria)
    if chosen == rejected and final.decision == Decision.EDITED:
        return None
    return {
        "id": f"{sample.external_id}#{turn.index}",
        "sample_id": sample.external_id,
        "turn_index": turn.index,
        "image": sample.image.file_name if sample.image else None,
        "caption": sample.image.caption if sample.image else "",
        "user": turn.user,
        "response": turn.model,
        "target_criterion": sample.target_criterion or None,
        "decision": final.decision,
        "reason": final.reason,
        "chosen": chosen,
        "rejected": rejected,
        "draft_id": draft.id,
        "revision_id": final.revision_id,
        "reviewer": final.reviewer or None,
        "reviewed_at": final.reviewed_at.isoformat() if final.reviewed_at else None,
        "draft_model": draft.model,
        "prompt_version": draft.prompt_version,
    }


class PreferenceWriter:
    def __init__(self, sink: ReleaseSink, ctx: ExportContext):
        self.sink = sink
        self.ctx = ctx

    def write(self, sample: ExportSample) -> None:
        for turn in self.ctx.filters.released_turns(sample):
            found = pair(sample, turn, self.ctx)
            if found is not None:
                self.sink.text(FILE_NAME, split=sample.split, format=FORMAT.name).write_row(json_line(found))

    def close(self) -> None:
        """The sink closes the files."""


FORMAT = ExportFormat(
    name="preference",
    label="Preference pairs (JSONL)",
    description="preference_pairs.jsonl: the human final feedback (chosen) against the LLM draft (rejected) "
    "on every released turn a reviewer edited or rejected.",
    writer=PreferenceWriter,
)
