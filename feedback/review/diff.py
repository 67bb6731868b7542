"""Word-level differences between two texts, for the history of a turn's revisions."""

from __future__ import annotations

import difflib
import re

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """Segments of (op, text), op one of "same", "del", "ins"; whitespace kept as written."""
    old = _TOKENS.findall(before or "")
    new = _TOKENS.findall(after or "")
    segments: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            segments.append(("same", "".join(old[a0:a1])))
            continue
        if a1 > a0:
            segments.append(("del", "".join(old[a0:a1])))
        if b1 > b0:
            segments.append(("ins", "".join(new[b0:b1])))
    return segments


def score_changes(before: dict, after: dict, criteria: list[str]) -> list[tuple[str, object, object]]:
    """(criterion, before, after) for every score that differs."""
    names = list(criteria) + sorted((set(before) | set(after)) - set(criteria))
    return [(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]
