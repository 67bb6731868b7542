"""The features (column types) of each JSON format, as a dataset card's ``dataset_info`` states them.

Without them, ``datasets`` infers a config's columns from the first rows of its first split, and
fails on the next split whenever a column it saw only empty there holds values (a rejection's
null scores in ``test``, numbers in ``train``: "Couldn't cast array of type int64 to null"); a
column missing from some records (VLSafe's ``reference``, LLaVA's ``image``) comes back null.
Values whose shape the project does not fix (a sample's metadata, an image's objects and
regions, the criterion scores of the rich records, imported feedback per criterion) are ``json``.
The Parquet file's features follow its Arrow schema (``from_arrow``).

A type is a dtype (``"string"``), ``("list", type)`` or ``("struct", [(name, type), ...])``;
``yaml_lines`` writes them in the card's YAML as ``datasets`` reads them (no import of it here).
"""

from __future__ import annotations

import json
from typing import TypeAlias

import pyarrow as pa

Type: TypeAlias = "str | tuple[str, Type] | tuple[str, list[tuple[str, Type]]]"
Fields: TypeAlias = list[tuple[str, Type]]

STRING, INT, BOOL, JSON = "string", "int64", "bool", "json"


def _strings(*names: str) -> Fields:
    return [(name, STRING) for name in names]


def _rich() -> Fields:
    feedback: Type = ("struct", [
        *_strings("decision", "critique", "refinement"),
        ("scores", JSON),
        ("per_criterion", JSON),
        *_strings("reason", "reviewer", "reviewed_at"),
        ("time_spent_ms", INT),
        ("revision_id", INT),
        ("version", INT),
        ("draft_id", INT),
        ("adjudicated", BOOL),
    ])  # fmt: skip
    adjudication: Type = ("struct", [
        *_strings("adjudicator"),
        ("revision_id", INT),
        ("edited", BOOL),
        *_strings("adjudicated_at"),
    ])  # fmt: skip
    draft: Type = ("struct", [
        ("id", INT),
        *_strings("critique", "refinement"),
        ("scores", JSON),
        ("overall", INT),
        *_strings("model", "endpoint", "prompt_version", "prompt_hash"),
        ("simulated", BOOL),
        *_strings("status", "created_at"),
    ])  # fmt: skip
    image: Type = ("struct", [
        *_strings("file_name", "sha256"),
        ("missing", BOOL),
        ("width", INT),
        ("height", INT),
        ("format", STRING),
        ("byte_size", INT),
        ("captions", ("list", STRING)),
        ("objects", JSON),
        ("regions", JSON),
        ("notes", STRING),
    ])  # fmt: skip
    turn: Type = ("struct", [
        ("index", INT),
        *_strings("user", "model"),
        ("released", BOOL),
        ("final", feedback),
        ("draft", draft),
        ("reviews", ("list", feedback)),
        ("adjudication", adjudication),
    ])  # fmt: skip
    return [
        *_strings("schema_version", "id", "project", "split", "target_criterion", "reference_answer"),
        *_strings("source_dataset", "source_model"),
        ("metadata", JSON),
        ("image", image),
        ("turns", ("list", turn)),
    ]


def _preference(criteria: list[str]) -> Fields:
    scores: Fields = [(c, INT) for c in criteria]
    side: Type = ("struct", [*_strings("critique", "refinement"), ("scores", ("struct", scores))])
    return [
        *_strings("id", "sample_id"),
        ("turn_index", INT),
        *_strings("image", "caption", "user", "response", "target_criterion", "decision", "reason"),
        ("chosen", side),
        ("rejected", side),
        ("draft_id", INT),
        ("revision_id", INT),
        *_strings("reviewer", "reviewed_at", "draft_model", "prompt_version"),
    ]


def from_arrow(schema: pa.Schema | pa.StructType) -> Fields:
    """The features of an Arrow schema, its map columns as ``json``: ``datasets`` has no map type
    (it refuses to infer one) and casts a map only to ``json``, where it reads back as a list of
    ``[key, value]`` pairs."""
    return [(f.name, _arrow_type(f.type)) for f in schema]


def _arrow_type(kind: pa.DataType) -> Type:
    if pa.types.is_map(kind):
        return JSON
    if pa.types.is_struct(kind):
        return ("struct", from_arrow(kind))
    if pa.types.is_list(kind):
        return ("list", _arrow_type(kind.value_type))
    if pa.types.is_string(kind):
        return STRING
    return str(kind)  # int64, float64, bool: the same names in datasets


def features(format_name: str, criteria: list[str]) -> Fields | None:
    """The columns of a format's files (``criteria``: the release's, in the rubric's order); None
    for a format that has none."""
    if format_name == "dress":
        return [*_strings("image_id", "caption"), ("interaction", ("list", ("struct", _strings(
            "user", "model", "rating", "critique NLF"))))]  # fmt: skip
    if format_name == "vlsafe":
        return _strings("image_id", "caption", "query", "reference")
    if format_name == "llava":
        return [*_strings("id", "image"), ("conversations", ("list", ("struct", _strings("from", "value"))))]
    if format_name == "preference":
        return _preference(criteria)
    if format_name == "rich":
        return _rich()
    if format_name == "parquet":
        from .formats.parquet import SCHEMA

        return from_arrow(SCHEMA)
    return None


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def yaml_lines(fields: Fields, indent: int) -> list[str]:
    """``fields`` as the YAML list of ``datasets``' ``Features._to_yaml_list``."""
    lines: list[str] = []
    for name, kind in fields:
        lines.append(f"{' ' * indent}- name: {_quoted(name)}")
        lines += _type_lines(kind, indent + 2, "dtype")
    return lines


def _type_lines(kind: Type, indent: int, scalar_key: str) -> list[str]:
    pad = " " * indent
    if isinstance(kind, str):
        return [f"{pad}{scalar_key}: {kind}"]
    tag, inner = kind
    if tag == "struct":
        assert isinstance(inner, list)
        return [f"{pad}struct:", *yaml_lines(inner, indent)]
    if isinstance(inner, str):
        return [f"{pad}list: {inner}"]
    if isinstance(inner, tuple) and inner[0] == "struct":
        assert isinstance(inner[1], list)
        return [f"{pad}list:", *yaml_lines(inner[1], indent)]
    assert not isinstance(inner, list)
    return [f"{pad}list:", *_type_lines(inner, indent + 2, "list")]
