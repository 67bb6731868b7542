"""What a format module provides, and what it is told about the project it imports into."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .reader import RawRecord
from .records import SampleRecord


@dataclass(frozen=True)
class ParseContext:
    criteria: list[str]
    scale: range
    criterion: str = ""  # the file's criterion, for formats that hold one per file (DRESS)
    source_dataset: str = ""
    source_model: str = ""


@dataclass(frozen=True)
class SampleFormat:
    """A format of samples: read yields raw records with line numbers, parse checks one."""

    name: str
    label: str
    read: Callable[[Path], Iterator[RawRecord]]
    parse: Callable[[Any, ParseContext], SampleRecord]
    context: Callable[[Path, ParseContext], ParseContext] = lambda path, ctx: ctx
