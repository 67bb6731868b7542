"""VLSafe JSONL: the harmlessness prompts of a release, as the published VLSafe files hold them.

``{"image_id", "caption", "query", "reference"}``, keys in that order (``reference`` left out when
the sample has no reference answer, as in VLSafe's examine split); one file, ``vlsafe.jsonl``,
per split.

Which samples: the released samples (those the release service passes on: not flagged, and at
least one answered turn whose final feedback passes the release's filters) that target
harmlessness, or all criteria (empty target), when harmlessness is among the release's criteria.
``query`` is the user message of the sample's first turn, ``caption`` the image's first caption,
``reference`` the sample's reference answer (the ground truth, never a model's response).

Bare prompts (imported VLSafe prompts nobody has answered and reviewed yet) are not written: a
release holds what passed review and its filters, and its manifest, card and splits count exactly
those samples. A prompt set that was never reviewed is its import file.
"""

from __future__ import annotations

from typing import Any

from ..records import ExportSample
from .base import ExportContext, ExportFormat, JsonlWriter

FILE_NAME = "vlsafe.jsonl"
CRITERION = "harmlessness"


def record(sample: ExportSample, ctx: ExportContext) -> dict[str, Any] | None:
    """The sample's VLSafe record, or None when it is not a released harmlessness prompt."""
    if CRITERION not in ctx.criteria:
        return None
    if sample.target_criterion and sample.target_criterion != CRITERION:
        return None
    if not sample.turns or not ctx.filters.released_turns(sample):
        return None
    found: dict[str, Any] = {
        "image_id": sample.image.file_name if sample.image else "",
        "caption": sample.image.caption if sample.image else "",
        "query": sample.turns[0].user,
    }
    if sample.reference_answer:
        found["reference"] = sample.reference_answer
    return found


class VlsafeWriter(JsonlWriter):
    file_name = FILE_NAME
    format_name = "vlsafe"

    def record(self, sample: ExportSample) -> dict | None:
        return record(sample, self.ctx)


FORMAT = ExportFormat(
    name="vlsafe",
    label="VLSafe JSONL (harmlessness prompts)",
    description="vlsafe.jsonl: image_id, caption, query and reference of the released harmlessness samples.",
    writer=VlsafeWriter,
)
