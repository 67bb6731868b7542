"""Word-level differences between two texts, for the history of a turn's revisions.

A revision's diff is computed once, when it is saved (``revision_diff``), and stored on it; pages and
the history endpoint read the stored segments. The work is bounded: after the common start and end
are set aside, the middle is compared with Myers' algorithm for at most ``DIFF_MAX_STEPS`` steps;
a middle that needs more (long texts that differ almost everywhere, or repetitive ones built to be
slow) is shown as one deletion of the old middle and one insertion of the new one.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(r"\s+|[^\s]+")

# Steps of the comparison of two texts' changed middles (each diagonal tried, each token matched):
# about 0.1 s of one core at most, spent once per save. A 450-word critique half rewritten, or a
# 3,000-word one edited in 5% of its words, stays under it; texts that differ nearly everywhere,
# or repetitive ones, reach it and get the plain replacement.
DIFF_MAX_STEPS = 100_000

Segments = list[tuple[str, str]]


def word_diff(before: str, after: str, *, max_steps: int = DIFF_MAX_STEPS) -> Segments:
    """Segments of (op, text), op one of "same", "del", "ins"; whitespace kept as written.

    Between two "same" segments there is at most one "del" followed by at most one "ins".
    """
    old = _TOKENS.findall(before or "")
    new = _TOKENS.findall(after or "")
    start = 0
    while start < len(old) and start < len(new) and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    middle_old, middle_new = old[start:end_old], new[start:end_new]
    ops = _myers(middle_old, middle_new, max_steps)
    if ops is None:
        ops = [("del", token) for token in middle_old] + [("ins", token) for token in middle_new]
    return _grouped([("same", t) for t in old[:start]] + ops + [("same", t) for t in old[end_old:]])


def _myers(a: list[str], b: list[str], max_steps: int) -> list[tuple[str, str]] | None:
    """The shortest edit script from a to b, token by token; None past ``max_steps``."""
    n, m = len(a), len(b)
    if not n or not m:
        return [("del", t) for t in a] + [("ins", t) for t in b]
    offset = n + m + 1
    v = [0] * (2 * offset + 1)
    trace: list[list[int]] = []
    steps = 0
    for d in range(n + m + 1):
        steps += d + 1
        if steps > max_steps:
            return None
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v[offset + k - 1] < v[offset + k + 1]):
                x = v[offset + k + 1]
            else:
                x = v[offset + k - 1] + 1
            y = x - k
            begin = x
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            steps += x - begin
            if steps > max_steps:
                return None
            v[offset + k] = x
            if x >= n and y >= m:
                trace.append(v[offset - d : offset + d + 1])
                return _backtrack(a, b, trace)
        trace.append(v[offset - d : offset + d + 1])
    raise AssertionError("unreachable: an edit script exists within n + m steps")


def _backtrack(a: list[str], b: list[str], trace: list[list[int]]) -> list[tuple[str, str]]:
    x, y = len(a), len(b)
    ops: list[tuple[str, str]] = []
    for d in range(len(trace) - 1, 0, -1):
        previous = trace[d - 1]  # v after round d - 1, indexed from k = -(d - 1)
        k = x - y
        came_down = k == -d or (k != d and previous[k - 1 + d - 1] < previous[k + 1 + d - 1])
        prev_k = k + 1 if came_down else k - 1
        prev_x = previous[prev_k + d - 1]
        prev_y = prev_x - prev_k
        while x > prev_x and y > prev_y:
            x -= 1
            y -= 1
            ops.append(("same", a[x]))
        if x == prev_x:
            y -= 1
            ops.append(("ins", b[y]))
        else:
            x -= 1
            ops.append(("del", a[x]))
    while x > 0:
        x -= 1
        ops.append(("same", a[x]))
    ops.reverse()
    return ops


def _grouped(ops: list[tuple[str, str]]) -> Segments:
    """Tokens joined into segments: runs of "same", and each change as its deletion then its insertion.

    A shortest edit script may keep a lone space between two changes ("Draft 1: the" to "The" keeps
    the space after "Draft"); such a space joins the changes around it when one of them only deletes
    or only inserts, and a token that a change's deletion and insertion both end (or start) with
    moves out into the text kept, so that a change reads as words replaced, as difflib shows it.
    """
    blocks: list[list[list[str]]] = []  # [same tokens] or [deleted tokens, inserted tokens]
    for op, token in ops:
        if op == "same":
            if not blocks or len(blocks[-1]) != 1:
                blocks.append([[]])
            blocks[-1][0].append(token)
        else:
            if not blocks or len(blocks[-1]) != 2:
                blocks.append([[], []])
            blocks[-1][0 if op == "del" else 1].append(token)
    merged: list[list[list[str]]] = []
    for i, block in enumerate(blocks):
        lone_space = len(block) == 1 and 0 < i < len(blocks) - 1 and all(t.isspace() for t in block[0])
        if lone_space and not (all(merged[-1]) and all(blocks[i + 1])):
            merged[-1][0].extend(block[0])
            merged[-1][1].extend(block[0])
        elif len(block) == 2 and merged and len(merged[-1]) == 2:
            merged[-1][0].extend(block[0])
            merged[-1][1].extend(block[1])
        else:
            merged.append(block)
    segments: Segments = []
    carry: list[str] = []  # tokens moved out of the end of a change, kept before what follows
    for block in merged:
        if len(block) == 1:
            text = "".join(carry + block[0])
            if segments and segments[-1][0] == "same":  # a change that turned out to be no change
                text = segments.pop()[1] + text
            segments.append(("same", text))
            carry = []
            continue
        deleted, inserted = block
        lead = 0
        while lead < len(deleted) and lead < len(inserted) and deleted[lead] == inserted[lead]:
            lead += 1
        tail = 0
        while (
            tail < len(deleted) - lead
            and tail < len(inserted) - lead
            and deleted[len(deleted) - 1 - tail] == inserted[len(inserted) - 1 - tail]
        ):
            tail += 1
        kept_before = carry + deleted[:lead]
        if kept_before:
            if segments and segments[-1][0] == "same":
                segments[-1] = ("same", segments[-1][1] + "".join(kept_before))
            else:
                segments.append(("same", "".join(kept_before)))
        if len(deleted) - tail > lead:
            segments.append(("del", "".join(deleted[lead : len(deleted) - tail])))
        if len(inserted) - tail > lead:
            segments.append(("ins", "".join(inserted[lead : len(inserted) - tail])))
        carry = deleted[len(deleted) - tail :] if tail else []
    if carry:
        segments.append(("same", "".join(carry)))
    return segments


def revision_diff(before, *, critique: str, refinement: str) -> dict[str, Segments]:
    """The stored diff of a revision with this critique and refinement against what it started from
    (``before``: the previous revision of its chain, else its draft, else None: nothing)."""
    return {
        "critique": word_diff(before.critique if before is not None else "", critique),
        "refinement": word_diff(before.refinement if before is not None else "", refinement),
    }


def score_changes(before: dict, after: dict, criteria: list[str]) -> list[tuple[str, object, object]]:
    """(criterion, before, after) for every score that differs."""
    names = list(criteria) + sorted((set(before) | set(after)) - set(criteria))
    return [(n, before.get(n), after.get(n)) for n in names if before.get(n) != after.get(n)]


def draft_diff(draft, fields: dict, criteria: list[str]) -> dict:
    """The review page's live diff: the texts and scores being typed (``fields``, as a working copy
    holds them) against the draft shown, else against nothing. Bounded like ``word_diff``."""
    scores = fields.get("scores") or {}
    return {
        **revision_diff(draft, critique=fields.get("critique") or "", refinement=fields.get("refinement") or ""),
        "scores": [list(change) for change in score_changes(dict(draft.scores) if draft else {}, scores, criteria)],
    }
