"""What goes into a release: filters on samples and on each turn's final feedback.

A turn is released when its final feedback passes every filter; a sample is released when it is
not flagged, matches the criterion filter, and at least one of its answered turns is released.
Formats that need whole interactions (DRESS, the dialogues) take the released turns from the
first one on, up to the first turn that is not released.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from django.utils import timezone

from feedback.errors import InvalidInput
from feedback.models import Project
from feedback.review.models import Decision

from .records import ExportSample, ExportTurn, Feedback

DEFAULT_DECISIONS = [Decision.ACCEPTED.value, Decision.EDITED.value]
DECISIONS = list(Decision.values)


@dataclass(frozen=True)
class ReleaseFilters:
    decisions: list[str] = field(default_factory=lambda: list(DEFAULT_DECISIONS))
    include_imported: bool = True  # feedback that came with the dataset, on turns nobody reviewed
    criteria: list[str] = field(default_factory=list)  # empty: all the project's criteria
    score_ranges: dict[str, list[int]] = field(default_factory=dict)  # criterion: [low, high]
    reviewers: list[str] = field(default_factory=list)  # user names; empty: anyone
    date_from: str = ""  # ISO dates, inclusive, of the final revision
    date_to: str = ""
    prompt_versions: list[str] = field(default_factory=list)  # of the draft the feedback started from
    include_simulated: bool = True  # feedback that started from a simulator's draft

    def as_dict(self) -> dict:
        return asdict(self)

    def criteria_of(self, project: Project) -> list[str]:
        return [c for c in project.criteria if not self.criteria or c in self.criteria]

    def sample_passes(self, sample: ExportSample) -> bool:
        if sample.flags:
            return False
        return not (self.criteria and sample.target_criterion and sample.target_criterion not in self.criteria)

    def turn_passes(self, turn: ExportTurn) -> bool:
        final = turn.final
        if final is None or not turn.answered:
            return False
        if final.imported:
            return self.include_imported and self._imported_passes(final)
        if final.decision not in self.decisions:
            return False
        if self.reviewers and final.reviewer not in self.reviewers:
            return False
        if (self.date_from or self.date_to) and not self._in_dates(final):
            return False
        draft = turn.draft if turn.draft and turn.draft.id == final.draft_id else None
        if self.prompt_versions and (draft is None or draft.prompt_version not in self.prompt_versions):
            return False
        if not self.include_simulated and draft is not None and draft.simulated:
            return False
        return self._scores_pass(final)

    def released_turns(self, sample: ExportSample) -> list[ExportTurn]:
        """The sample's answered turns whose final feedback passes (worked out once per sample:
        a sample is read for one release, and every format asks)."""
        if sample.released is None:
            sample.released = [t for t in sample.turns if self.turn_passes(t)]
        return sample.released

    def interaction(self, sample: ExportSample) -> list[ExportTurn]:
        """The released turns from the first answered turn on, up to the first one not released."""
        if sample.interaction is None:
            released = {id(t) for t in self.released_turns(sample)}
            out: list[ExportTurn] = []
            for turn in sample.turns:
                if not turn.answered and not out:
                    continue
                if id(turn) not in released:
                    break
                out.append(turn)
            sample.interaction = out
        return sample.interaction

    def _imported_passes(self, final: Feedback) -> bool:
        if self.reviewers or self.date_from or self.date_to or self.prompt_versions:
            return False  # nobody reviewed it, on no date, from no prompt
        return self._scores_pass(final)

    def _scores_pass(self, final: Feedback) -> bool:
        for criterion, (low, high) in self.score_ranges.items():
            score = final.scores.get(criterion)
            if score is None or not low <= score <= high:
                return False
        return True

    def _in_dates(self, final: Feedback) -> bool:
        if final.reviewed_at is None:
            return False
        at = final.reviewed_at
        day = (timezone.localtime(at) if timezone.is_aware(at) else at).date()
        if self.date_from and day < date.fromisoformat(self.date_from):
            return False
        return not (self.date_to and day > date.fromisoformat(self.date_to))


def filters_from(project: Project, data: dict | None) -> ReleaseFilters:
    """Validated filters; an InvalidInput names the fields that are wrong."""
    data = dict(data or {})
    known = set(ReleaseFilters.__dataclass_fields__)
    stray = sorted(set(data) - known)
    if stray:
        raise InvalidInput(None, f"Unknown filters: {', '.join(stray)}.")
    errors: dict[str, str] = {}
    decisions = _str_list(data, "decisions", errors, default=list(DEFAULT_DECISIONS))
    if decisions is not None:
        bad = [d for d in decisions if d not in DECISIONS]
        if bad:
            errors["decisions"] = f"Not decisions: {', '.join(bad)} (one of {', '.join(DECISIONS)})."
        elif not decisions:
            errors["decisions"] = "Choose at least one decision."
    criteria = _str_list(data, "criteria", errors, default=[])
    if criteria:
        bad = [c for c in criteria if c not in project.criteria]
        if bad:
            errors["criteria"] = f"Not criteria of this project: {', '.join(bad)}."
    ranges = data.get("score_ranges") or {}
    cleaned_ranges: dict[str, list[int]] = {}
    if not isinstance(ranges, dict):
        errors["score_ranges"] = 'An object from criterion to [low, high], e.g. {"honesty": [5, 7]}.'
    else:
        for criterion, bounds in ranges.items():
            if criterion not in project.criteria:
                errors["score_ranges"] = f"{criterion!r} is not a criterion of this project."
                break
            if (
                not isinstance(bounds, list | tuple)
                or len(bounds) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                or bounds[0] > bounds[1]
            ):
                errors["score_ranges"] = f"The range of {criterion} must be [low, high], whole numbers, low ≤ high."
                break
            cleaned_ranges[criterion] = [int(bounds[0]), int(bounds[1])]
    reviewers = _str_list(data, "reviewers", errors, default=[])
    versions = _str_list(data, "prompt_versions", errors, default=[])
    dates = {}
    for name in ("date_from", "date_to"):
        value = data.get(name) or ""
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            value = value.isoformat()
        if value:
            try:
                date.fromisoformat(str(value))
            except ValueError:
                errors[name] = f"A date such as 2026-01-31, not {value!r}."
        dates[name] = str(value)
    if not errors.keys() & dates.keys() and "" < dates["date_to"] < dates["date_from"]:
        errors["date_to"] = "The end comes before the start."
    flags = {}
    for name in ("include_imported", "include_simulated"):
        value = data.get(name, True)
        if not isinstance(value, bool):
            errors[name] = "true or false."
        flags[name] = bool(value)
    if errors:
        raise InvalidInput.of({name: [message] for name, message in errors.items()})
    return ReleaseFilters(
        decisions=decisions or list(DEFAULT_DECISIONS),
        include_imported=flags["include_imported"],
        criteria=criteria or [],
        score_ranges=cleaned_ranges,
        reviewers=reviewers or [],
        date_from=dates["date_from"],
        date_to=dates["date_to"],
        prompt_versions=versions or [],
        include_simulated=flags["include_simulated"],
    )


def _str_list(data: dict, name: str, errors: dict, *, default: list[str]) -> list[str] | None:
    value = data.get(name)
    if value in (None, ""):
        return default
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        errors[name] = "A list of names."
        return None
    return list(value)
