"""DRESS ``LVLM_NLF``: one JSONL per criterion, records exactly as the published files hold them.

``{"image_id", "caption", "interaction": [{"user", "model", "rating", "critique NLF"}, ...]}``,
keys in that order, the rating a string on the project's scale (the file's criterion), and the
refinement of turn k as the ``user`` of turn k+1. A sample goes into a criterion's file when it
targets that criterion (or all of them) and every turn of its interaction has a rating for it.

Every split of a DRESS release holds the three published files, empty where nothing is released
(a release of one criterion, say), and a file for each other criterion released.
"""

from __future__ import annotations

from ..records import ExportSample
from .base import ExportContext, ExportFormat, ReleaseSink, json_string

FILE_NAMES = {
    "helpfulness": "helpfulness_nlf.jsonl",
    "honesty": "hallucination_nlf.jsonl",
    "harmlessness": "harmlessness_nlf.jsonl",
}


def file_name(criterion: str) -> str:
    return FILE_NAMES.get(criterion, f"{criterion}_nlf.jsonl")


def record(sample: ExportSample, criterion: str, ctx: ExportContext) -> dict | None:
    """The sample's DRESS record for ``criterion``, or None when it has no such record."""
    if sample.target_criterion and sample.target_criterion != criterion:
        return None
    turns = ctx.filters.interaction(sample)
    if not turns:
        return None
    items = []
    refinement = ""
    for turn in turns:
        assert turn.final is not None  # the filters release only turns with final feedback
        rating = turn.final.rating_for(criterion)
        if not rating:
            return None
        items.append(
            {
                "user": refinement or turn.user,
                "model": turn.model,
                "rating": rating,
                "critique NLF": turn.final.critique_for(criterion),
            }
        )
        refinement = turn.final.refinement_for(criterion)
    return {
        "image_id": sample.image.file_name if sample.image else "",
        "caption": sample.image.caption if sample.image else "",
        "interaction": items,
    }


def dress_line(found: dict) -> str:
    """``json_line(found)`` for a DRESS record, written out by hand: the same bytes (a test holds
    them equal) at half the cost, on the release's most written lines."""
    items = ", ".join(
        '{"user": %s, "model": %s, "rating": %s, "critique NLF": %s}'  # noqa: UP031
        % (json_string(i["user"]), json_string(i["model"]), json_string(i["rating"]), json_string(i["critique NLF"]))
        for i in found["interaction"]
    )
    return '{"image_id": %s, "caption": %s, "interaction": [%s]}\n' % (  # noqa: UP031
        json_string(found["image_id"]),
        json_string(found["caption"]),
        items,
    )


class DressWriter:
    def __init__(self, sink: ReleaseSink, ctx: ExportContext):
        self.sink = sink
        self.ctx = ctx

    def write(self, sample: ExportSample) -> None:
        for criterion in self.ctx.criteria:
            found = record(sample, criterion, self.ctx)
            if found is not None:
                handle = self.sink.text(file_name(criterion), split=sample.split, format=FORMAT.name)
                handle.write_row(dress_line(found))

    def close(self) -> None:
        """Opens the files nothing was written to, so that every split holds the three published
        files (and one per released criterion) and code that opens them all finds them; the sink
        closes the files."""
        names = dict.fromkeys([*FILE_NAMES.values(), *(file_name(c) for c in self.ctx.criteria)])
        for split in self.sink.splits:
            for name in names:
                self.sink.text(name, split=split, format=FORMAT.name)


FORMAT = ExportFormat(
    name="dress",
    label="DRESS LVLM_NLF (JSONL per criterion)",
    description="helpfulness_nlf.jsonl, hallucination_nlf.jsonl, harmlessness_nlf.jsonl as published "
    "(all three in every split, empty where nothing is released).",
    writer=DressWriter,
)
