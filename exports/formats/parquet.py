"""Parquet of the rich records: ``rich.parquet`` per split, one row per released sample.

The columns are the rich record's keys (see ``rich.py`` and
``exports/schemas/rich_record.schema.json``) with explicit, nested Arrow types, so that
``pyarrow.parquet.read_table(path).to_pylist()`` gives back the rich JSONL records, except that:

- ``metadata`` is free-form, so it is a JSON string (``json.loads`` it);
- criterion scores (``scores`` of feedback and drafts) and imported feedback's ``per_criterion``
  are ``map<string, ...>`` columns, since a project names its own criteria: read them as dicts
  with ``to_pylist(maps_as_pydicts="strict")`` (plain ``to_pylist()`` gives (key, value) pairs);
- an image object's ``score`` is null where the annotation has none (the JSONL leaves it out).

``image`` is a struct (captions a list of strings; objects ``{label, bbox, score}`` and regions
``{description, bbox}`` lists of structs, bboxes ``[x, y, w, h]`` as doubles); ``turns`` a list of
structs with ``final`` and ``draft`` structs and ``reviews`` a list of the same struct as ``final``,
and ``adjudication`` a struct (null when the turn was not adjudicated). Times are ISO 8601 strings
as in the JSONL. The file's schema metadata carries ``schema_version``.

Rows are written in row groups of ``ROW_GROUP_ROWS``; only the group being filled is held in
memory (one per split).
"""

from __future__ import annotations

import json
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..records import ExportSample
from . import rich
from .base import ExportContext, ExportFormat, ReleaseSink, WrittenFile

FILE_NAME = "rich.parquet"
ROW_GROUP_ROWS = 1000

SCORES = pa.map_(pa.string(), pa.int64())
BBOX = pa.list_(pa.float64())

FEEDBACK = pa.struct(
    [
        ("decision", pa.string()),
        ("critique", pa.string()),
        ("refinement", pa.string()),
        ("scores", SCORES),
        (
            "per_criterion",
            pa.map_(
                pa.string(),
                pa.struct([("critique", pa.string()), ("refinement", pa.string()), ("rating_raw", pa.string())]),
            ),
        ),
        ("reason", pa.string()),
        ("reviewer", pa.string()),
        ("reviewed_at", pa.string()),
        ("time_spent_ms", pa.int64()),
        ("revision_id", pa.int64()),
        ("version", pa.int64()),
        ("draft_id", pa.int64()),
        ("adjudicated", pa.bool_()),
    ]
)

ADJUDICATION = pa.struct(
    [
        ("adjudicator", pa.string()),
        ("revision_id", pa.int64()),
        ("edited", pa.bool_()),
        ("adjudicated_at", pa.string()),
    ]
)

DRAFT = pa.struct(
    [
        ("id", pa.int64()),
        ("critique", pa.string()),
        ("refinement", pa.string()),
        ("scores", SCORES),
        ("overall", pa.int64()),
        ("model", pa.string()),
        ("endpoint", pa.string()),
        ("prompt_version", pa.string()),
        ("prompt_hash", pa.string()),
        ("simulated", pa.bool_()),
        ("status", pa.string()),
        ("created_at", pa.string()),
    ]
)

IMAGE = pa.struct(
    [
        ("file_name", pa.string()),
        ("sha256", pa.string()),
        ("missing", pa.bool_()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("format", pa.string()),
        ("byte_size", pa.int64()),
        ("captions", pa.list_(pa.string())),
        ("objects", pa.list_(pa.struct([("label", pa.string()), ("bbox", BBOX), ("score", pa.float64())]))),
        ("regions", pa.list_(pa.struct([("description", pa.string()), ("bbox", BBOX)]))),
        ("notes", pa.string()),
    ]
)

TURN = pa.struct(
    [
        ("index", pa.int64()),
        ("user", pa.string()),
        ("model", pa.string()),
        ("released", pa.bool_()),
        ("final", FEEDBACK),
        ("draft", DRAFT),
        ("reviews", pa.list_(FEEDBACK)),
        ("adjudication", ADJUDICATION),
    ]
)

SCHEMA = pa.schema(
    [
        pa.field("schema_version", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("project", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("target_criterion", pa.string()),
        pa.field("reference_answer", pa.string()),
        pa.field("source_dataset", pa.string()),
        pa.field("source_model", pa.string()),
        pa.field("metadata", pa.string(), nullable=False),  # JSON text
        pa.field("image", IMAGE),
        pa.field("turns", pa.list_(TURN), nullable=False),
    ],
    metadata={
        "schema_version": rich.SCHEMA_VERSION,
        "json_columns": "metadata",
    },
)


def row(record: dict[str, Any]) -> dict[str, Any]:
    """A rich record as a row of ``SCHEMA``."""
    out = dict(record)
    out["metadata"] = json.dumps(record["metadata"], ensure_ascii=False)
    image = record["image"]
    if image is not None:
        out["image"] = {
            **image,
            "objects": [
                {"label": o.get("label"), "bbox": o.get("bbox"), "score": o.get("score")} for o in image["objects"]
            ],
            "regions": [{"description": r.get("description"), "bbox": r.get("bbox")} for r in image["regions"]],
        }
    return out


class _SplitFile:
    def __init__(self, stream: IO[bytes], record: WrittenFile):
        self.stream = stream
        self.record = record
        self.rows: list[dict[str, Any]] = []
        self.writer: pq.ParquetWriter | None = None

    def flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.stream, SCHEMA)
        table = pa.Table.from_pylist(self.rows, schema=SCHEMA)
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.record.rows += table.num_rows
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


class RichParquetWriter:
    def __init__(self, sink: ReleaseSink, ctx: ExportContext):
        self.sink = sink
        self.ctx = ctx
        self.files: dict[str, _SplitFile] = {}

    def write(self, sample: ExportSample) -> None:
        record = rich.record(sample, self.ctx)
        if record is None:
            return
        target = self.files.get(sample.split)
        if target is None:
            stream, written = self.sink.binary(FILE_NAME, split=sample.split, format=FORMAT.name)
            target = self.files[sample.split] = _SplitFile(stream, written)
        target.rows.append(row(record))
        if len(target.rows) >= ROW_GROUP_ROWS:
            target.flush()

    def close(self) -> None:
        for target in self.files.values():
            target.close()
        self.files.clear()


FORMAT = ExportFormat(
    name="parquet",
    label="Parquet (rich records)",
    description="rich.parquet: the rich records with nested Arrow types, in row groups of 1,000; "
    "rich_record.schema.json states their shape.",
    writer=RichParquetWriter,
    companions=(rich.SCHEMA_PATH,),
)
