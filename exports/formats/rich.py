"""Rich JSONL of our own: one record per released sample with everything a researcher may need.

Every turn of the conversation, and on each released turn the LLM draft and the human final side by
side (critique, refinement, all criterion scores), the decision, every reviewer's version (the one
an adjudicator kept marked, the adjudication beside them), the model, prompt version and hash; the
image's annotations and metadata. The shape is stated by ``exports/schemas/rich_record.schema.json``
(``SCHEMA_VERSION``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ..records import Adjudicated, DraftInfo, ExportSample, Feedback, ImageInfo
from .base import ExportContext, ExportFormat, JsonlWriter, compact_json_line

SCHEMA_VERSION = "1.1"
FILE_NAME = "rich.jsonl"
# Shipped in every release of rich records (JSONL or Parquet), listed in its manifest as "schema".
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "rich_record.schema.json"
SCHEMA_FORMAT = "schema"


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def feedback_dict(feedback: Feedback) -> dict[str, Any]:
    return {
        "decision": feedback.decision,
        "critique": feedback.critique,
        "refinement": feedback.refinement,
        "scores": feedback.scores,
        "per_criterion": feedback.per_criterion,
        "reason": feedback.reason,
        "reviewer": feedback.reviewer or None,
        "reviewed_at": _time(feedback.reviewed_at),
        "time_spent_ms": feedback.time_spent_ms,
        "revision_id": feedback.revision_id,
        "version": feedback.version,
        "draft_id": feedback.draft_id,
        "adjudicated": feedback.adjudicated,
    }


def adjudication_dict(adjudication: Adjudicated) -> dict[str, Any]:
    return {
        "adjudicator": adjudication.adjudicator,
        "revision_id": adjudication.revision_id,
        "edited": adjudication.edited,
        "adjudicated_at": _time(adjudication.adjudicated_at),
    }


def draft_dict(draft: DraftInfo) -> dict[str, Any]:
    return {
        "id": draft.id,
        "critique": draft.critique,
        "refinement": draft.refinement,
        "scores": draft.scores,
        "overall": draft.overall,
        "model": draft.model,
        "endpoint": draft.endpoint,
        "prompt_version": draft.prompt_version,
        "prompt_hash": draft.prompt_hash,
        "simulated": draft.simulated,
        "status": draft.status,
        "created_at": _time(draft.created_at),
    }


def image_dict(image: ImageInfo) -> dict[str, Any]:
    return {
        "file_name": image.file_name,
        "sha256": image.sha256 or None,
        "missing": not image.file,
        "width": image.width,
        "height": image.height,
        "format": image.format or None,
        "byte_size": image.byte_size,
        "captions": image.captions,
        "objects": image.object_boxes,
        "regions": image.regions,
        "notes": image.notes,
    }


def record(sample: ExportSample, ctx: ExportContext) -> dict[str, Any] | None:
    filters = ctx.filters
    released = {turn.id for turn in filters.released_turns(sample)}
    if not released:
        return None
    turns = []
    for turn in sample.turns:
        shown = turn.id in released
        final = feedback_dict(turn.final) if shown and turn.final else None
        turns.append(
            {
                "index": turn.index,
                "user": turn.user,
                "model": turn.model,
                "released": shown,
                "final": final,
                "draft": draft_dict(turn.draft) if shown and turn.draft else None,
                # The final feedback is most often the latest review: the same dict, written twice.
                "reviews": [final if r is turn.final else feedback_dict(r) for r in turn.reviews] if shown else [],
                "adjudication": adjudication_dict(turn.adjudication) if shown and turn.adjudication else None,
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "id": sample.external_id,
        "project": ctx.project.slug,
        "split": sample.split,
        "target_criterion": sample.target_criterion or None,
        "reference_answer": sample.reference_answer or None,
        "source_dataset": sample.source_dataset or None,
        "source_model": sample.source_model or None,
        "metadata": sample.metadata,
        "image": image_dict(sample.image) if sample.image else None,
        "turns": turns,
    }


class RichWriter(JsonlWriter):
    file_name = FILE_NAME
    format_name = "rich"
    encode = staticmethod(compact_json_line)

    def record(self, sample: ExportSample) -> dict | None:
        return record(sample, self.ctx)


FORMAT = ExportFormat(
    name="rich",
    label="Rich JSONL",
    description="Every turn with the LLM draft and the human final side by side; rich_record.schema.json "
    "states their shape.",
    writer=RichWriter,
    companions=(SCHEMA_PATH,),
)
