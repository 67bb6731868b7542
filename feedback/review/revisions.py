"""Saving a reviewer's work: revisions (immutable, versioned), working copies and flags.

A save names the version it was based on. If the chain has moved on since, the save is refused
with the newer revision, so the page can show both and nothing typed is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from feedback.drafting.models import CallStatus, Draft
from feedback.models import Project, Turn

from ..errors import Conflict as ConflictError
from ..errors import InvalidInput
from ..limits import text_limit_error
from ..permissions import roles_in
from .claims import NotAllowed, assignment_submit, lease_revive
from .diff import revision_diff
from .disagreement import adjudication_open
from .models import Assignment, Decision, Flag, Revision, WorkingCopy
from .selectors import latest_draft

MAX_TIME_SPENT_MS = 24 * 3600 * 1000
FEEDBACK_FIELDS = ("critique", "refinement", "scores")
WORKING_COPY_KEYS = (*FEEDBACK_FIELDS, "reason")
# In error messages, at most this many stray names, each cut to this many characters.
NAMES_SHOWN = 5
NAME_CHARS = 40


class Conflict(ConflictError):
    """The save was based on a version older than the chain's latest (409).

    ``diff``: the word diffs of the refused save's critique and refinement against ``latest``
    (theirs → yours), for the page's conflict view; empty when not computed.
    """

    def __init__(self, latest: Revision, diff: dict | None = None):
        super().__init__(f"Revision {latest.version} by {latest.author} was saved in the meantime.")
        self.latest = latest
        self.diff = diff or {}


@dataclass(frozen=True)
class SaveResult:
    revision: Revision
    completed: bool  # this save finished the reviewer's review of the sample


def can_edit(assignment: Assignment, user) -> bool:
    """The reviewer, on their own assignment; an admin of the project, on anyone's."""
    return assignment.reviewer_id == user.pk or "admin" in roles_in(user, assignment.project)


def names_for_message(names) -> str:
    """A few of the given names, each cut short: an error message stays small, whatever was sent."""
    names = sorted(str(n) for n in names)
    shown = [n if len(n) <= NAME_CHARS else n[: NAME_CHARS - 1] + "…" for n in names[:NAMES_SHOWN]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" and {more:,} more" if more else "")


def check_text(**values: str) -> None:
    """Refuses any text past its field's bound (``feedback.limits.TEXT_MAX_CHARS``), naming the field."""
    errors = {}
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        problem = text_limit_error(name, value)
        if problem:
            errors[name] = f"{problem[0].upper()}{problem[1:]}."
    if errors:
        raise InvalidInput.of({name: [message] for name, message in errors.items()})


def clean_scores(project: Project, scores, *, required: bool) -> dict[str, int]:
    """Criterion to a whole number on the project's scale, criteria of the project only."""
    if scores in (None, "") and not required:
        return {}
    if not isinstance(scores, dict):
        raise InvalidInput("scores", "An object from criterion to score.")
    stray = set(scores) - set(project.criteria)
    if stray:
        raise InvalidInput("scores", f"Not criteria of this project: {names_for_message(stray)}.")
    cleaned: dict[str, int] = {}
    for name in project.criteria:
        value = scores.get(name)
        if value in (None, ""):
            if required:
                raise InvalidInput("scores", f"A score for {name} is required.")
            continue
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidInput("scores", f"The score for {name} must be a whole number.")
        try:
            number = int(value)
        except ValueError:
            raise InvalidInput("scores", f"The score for {name} must be a whole number, not {value!r}.") from None
        if not project.score_min <= number <= project.score_max:
            raise InvalidInput(
                "scores", f"The score for {name} is {number}, outside {project.score_min} to {project.score_max}."
            )
        cleaned[name] = number
    return cleaned


def revision_create(
    *,
    assignment: Assignment,
    turn: Turn,
    author,
    base_version: int,
    decision: str,
    critique: str = "",
    refinement: str = "",
    scores: dict | None = None,
    reason: str = "",
    time_spent_ms: int = 0,
    draft_id: int | None = None,
) -> SaveResult:
    """Appends a revision to the assignment's chain for the turn; raises Conflict if stale."""
    project = assignment.project
    if turn.sample_id != assignment.sample_id:
        raise InvalidInput("turn", "This turn belongs to another sample.")
    if turn.model_response is None:
        raise InvalidInput("turn", "This turn has no response to review yet.")
    if not can_edit(assignment, author):
        raise NotAllowed("Only the reviewer of this sample or an admin can save feedback on it.")
    check_text(critique=critique, refinement=refinement, reason=reason)
    draft = _draft_for(turn, draft_id)
    fields = _fields_for(project, draft, decision, critique, refinement, scores, reason)
    decision = decision_stored(decision, draft, fields)
    # The diff against what this save starts from, computed once, here, outside the lock: the
    # version check below makes sure that the revision it was computed against is still the latest.
    fields["diff"] = revision_diff(
        _revision_of(assignment, turn, base_version) if base_version else draft,
        critique=fields["critique"],
        refinement=fields["refinement"],
    )
    with transaction.atomic():
        locked = Assignment.objects.select_for_update(of=("self",)).select_related("project").get(pk=assignment.pk)
        if locked.state == Assignment.State.EXPIRED and locked.reviewer_id == author.pk:
            locked = lease_revive(locked)
        elif locked.state not in Assignment.HOLDING:
            raise NotAllowed(f"This review was {locked.get_state_display().lower()}; claim the sample again.")
        chain = Revision.objects.filter(assignment=locked, turn=turn)
        latest = chain.order_by("-version").select_related("author").first()
        if (latest.version if latest else 0) != base_version:
            if latest is None:
                raise InvalidInput("base_version", "No revision of that version.")
            raise Conflict(latest, _theirs_to_yours(latest, fields))
        try:
            with transaction.atomic():
                revision = Revision.objects.create(
                    assignment=locked,
                    turn=turn,
                    version=base_version + 1,
                    author=author,
                    draft=draft,
                    decision=decision,
                    time_spent_ms=max(0, min(int(time_spent_ms or 0), MAX_TIME_SPENT_MS)),
                    **fields,
                )
        except IntegrityError:
            newer = chain.order_by("-version").select_related("author").first()
            if newer is None:
                raise
            raise Conflict(newer, _theirs_to_yours(newer, fields)) from None
        WorkingCopy.objects.filter(assignment=locked, turn=turn).delete()
        completed = False
        if locked.state == Assignment.State.LEASED and _all_turns_decided(locked):
            assignment_submit(locked)
            completed = True
        if locked.state == Assignment.State.SUBMITTED and not locked.gold:
            adjudication_open(project=locked.project, sample_id=locked.sample_id)
    return SaveResult(revision=revision, completed=completed)


def decision_stored(decision: str, draft: Draft | None, fields: dict) -> str:
    """The decision a save is stored with: an edit that leaves the draft's critique, refinement and
    scores as they were is an acceptance of the draft, whoever sends it (the page or an API client)."""
    if decision == Decision.EDITED and draft is not None and same_as_draft(draft, fields):
        return Decision.ACCEPTED
    return decision


def same_as_draft(draft: Draft, fields: dict) -> bool:
    """Critique, refinement and scores (on the project's criteria, as numbers) equal the draft's."""
    drafted = {name: value for name, value in (draft.scores or {}).items() if value not in (None, "")}
    try:
        drafted = {name: int(value) for name, value in drafted.items()}
    except (TypeError, ValueError):
        return False
    return (
        fields["critique"] == (draft.critique or "")
        and fields["refinement"] == (draft.refinement or "")
        and fields["scores"] == drafted
    )


def _theirs_to_yours(latest: Revision, fields: dict) -> dict:
    """The conflict view's diff: the newer revision's texts against the refused save's (bounded)."""
    return revision_diff(latest, critique=fields["critique"], refinement=fields["refinement"])


def _revision_of(assignment: Assignment, turn: Turn, version: int) -> Revision | None:
    chain = Revision.objects.filter(assignment=assignment, turn=turn, version=version)
    return chain.only("critique", "refinement").first()


def _draft_for(turn: Turn, draft_id: int | None) -> Draft | None:
    if draft_id is None:
        return latest_draft(turn)
    draft = turn.drafts.filter(pk=draft_id).exclude(status=CallStatus.FAILED).first()
    if draft is None:
        raise InvalidInput("draft", f"Draft {draft_id} is not a draft of this turn.")
    return draft


def _fields_for(project, draft, decision, critique, refinement, scores, reason) -> dict:
    if decision == Decision.ACCEPTED:
        if draft is None:
            raise InvalidInput("decision", "There is no draft to accept on this turn; save your own feedback.")
        return {"critique": draft.critique, "refinement": draft.refinement, "scores": dict(draft.scores), "reason": ""}
    if decision == Decision.EDITED:
        if not (critique or "").strip():
            raise InvalidInput("critique", "The critique is empty.")
        return {
            "critique": critique,
            "refinement": refinement or "",
            "scores": clean_scores(project, scores, required=True),
            "reason": "",
        }
    if decision == Decision.REJECTED:
        if not (reason or "").strip():
            raise InvalidInput("reason", "Say why the draft is rejected.")
        return {
            "critique": critique or "",
            "refinement": refinement or "",
            "scores": clean_scores(project, scores, required=False),
            "reason": reason.strip(),
        }
    raise InvalidInput("decision", f"One of {', '.join(Decision.values)}, not {decision!r}.")


def _all_turns_decided(assignment: Assignment) -> bool:
    undecided = (
        Turn.objects.filter(sample_id=assignment.sample_id, model_response__isnull=False)
        .exclude(revisions__assignment=assignment)
        .exists()
    )
    return not undecided


def working_copy_save(*, assignment: Assignment, turn: Turn, user, fields: dict, base_version: int) -> WorkingCopy:
    """Keeps what the reviewer is typing; overwritten by each autosave, deleted by a save."""
    if turn.sample_id != assignment.sample_id:
        raise InvalidInput("turn", "This turn belongs to another sample.")
    if not can_edit(assignment, user):
        raise NotAllowed("Only the reviewer of this sample or an admin can edit it.")
    kept = {key: fields[key] for key in WORKING_COPY_KEYS if key in fields}  # any other key is dropped
    for key in ("critique", "refinement", "reason"):
        if key in kept and not isinstance(kept[key], str):
            raise InvalidInput(key, "Text expected.")
    check_text(**{key: kept[key] for key in ("critique", "refinement", "reason") if key in kept})
    if "scores" in kept:
        kept["scores"] = clean_scores(assignment.project, kept["scores"], required=False)
    copy, _ = WorkingCopy.objects.update_or_create(
        assignment=assignment, turn=turn, defaults={"fields": kept, "base_version": max(0, int(base_version))}
    )
    return copy


def sample_flag(*, assignment: Assignment, user, flag: str, note: str = "") -> Assignment:
    """Ends the review with a flag on the sample (bad image, unanswerable, off-topic)."""
    if flag not in Flag.values:
        raise InvalidInput("flag", f"One of {', '.join(Flag.values)}, not {flag!r}.")
    if assignment.reviewer_id != user.pk:
        raise NotAllowed("Only the reviewer holding this sample can flag it.")
    problem = text_limit_error("flag_note", note or "")
    if problem:
        raise InvalidInput("note", f"{problem[0].upper()}{problem[1:]}.")
    with transaction.atomic():
        locked = Assignment.objects.select_for_update(of=("self",)).select_related("project").get(pk=assignment.pk)
        if locked.state == Assignment.State.EXPIRED:
            locked = lease_revive(locked)
        if locked.state != Assignment.State.LEASED:
            raise NotAllowed(f"This review was {locked.get_state_display().lower()}.")
        return assignment_submit(locked, flag=flag, note=(note or "").strip())
