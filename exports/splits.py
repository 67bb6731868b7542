"""The split rule: train / validation / test fractions, assigned by a hash of the image.

The hash is of the image's file name and the rule's seed, so a given image lands in the same
split on every run and every machine, and all samples of one image land in one split.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from feedback.errors import InvalidInput

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitRule:
    train: float = 1.0
    validation: float = 0.0
    test: float = 0.0
    seed: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def names(self) -> list[str]:
        """The splits that can receive samples, in order."""
        return [name for name in SPLITS if getattr(self, name) > 0]

    def split_of(self, key: str) -> str:
        """The split of an image (``key``: its file name)."""
        digest = hashlib.sha256(f"{self.seed}\0{key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        edge = 0.0
        names = self.names
        for name in names:
            edge += getattr(self, name)
            if point < edge:
                return name
        return names[-1]


def split_rule_from(data: dict | None) -> SplitRule:
    """A validated rule: fractions of at least 0 that add up to 1."""
    data = dict(data or {})
    stray = sorted(set(data) - {*SPLITS, "seed"})
    if stray:
        raise InvalidInput("split", f"Unknown split settings: {', '.join(stray)}.")
    fractions = {}
    for name in SPLITS:
        value = data.get(name, 1.0 if name == "train" and not any(s in data for s in SPLITS) else 0.0)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInput("split", f"The {name} fraction must be a number, not {value!r}.") from None
        if not 0 <= number <= 1:
            raise InvalidInput("split", f"The {name} fraction must lie between 0 and 1, not {number}.")
        fractions[name] = number
    if abs(sum(fractions.values()) - 1) > 1e-6:
        total = sum(fractions.values())
        raise InvalidInput("split", f"The fractions add up to {total:g}; they must add up to 1.")
    seed = data.get("seed", "")
    if not isinstance(seed, str | int):
        raise InvalidInput("split", "The seed must be a string or a whole number.")
    return SplitRule(**fractions, seed=str(seed))
