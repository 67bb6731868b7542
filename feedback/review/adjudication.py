"""Adjudication: settling the samples whose independent reviews disagree.

With ``reviews_required`` of 2 or more, once a sample's last required review is submitted its
reviews are compared turn by turn (``turn_disagreements``): a criterion whose scores differ by at
least the project's ``adjudication_threshold``, or one review accepting (as drafted or edited)
where another rejects, is a disagreement. A disagreeing sample gets one AdjudicationCase (opened
exactly once); an agreeing one goes straight through. An adjudicator (the role, or a project
admin) saves each disagreeing turn's final: one reviewer's version, as it was or edited
(``adjudication_save``); in releases that is the turn's final feedback.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from feedback.models import Project, Role, Sample, Turn

from ..errors import Conflict, InvalidInput, NotFound
from .disagreement import reviews_by_turn
from .models import Adjudication, AdjudicationCase, Decision, Revision
from .revisions import check_text, clean_scores

# Who settles disagreements.
ADJUDICATORS = (Role.ADJUDICATOR, Role.ADMIN)


def case_for(project: Project, sample_id: int) -> AdjudicationCase:
    case = AdjudicationCase.objects.filter(project=project, sample_id=sample_id).first()
    if case is None:
        raise NotFound("This sample has no disagreement to settle.")
    return case


def adjudication_save(
    *,
    project: Project,
    sample: Sample,
    turn: Turn,
    adjudicator,
    revision_id: int,
    edit: dict[str, Any] | None = None,
) -> Adjudication:
    """Settles one turn: the chosen reviewer's version (``revision_id``, the latest revision of a
    submitted review of the turn), or an edit of it (``edit``: any of decision, critique,
    refinement, scores, reason; what is left out stays the reviewer's). One per turn (409 after)."""
    case = case_for(project, sample.pk)
    if turn.sample_id != sample.pk:
        raise InvalidInput("turn", "This turn belongs to another sample.")
    chosen = next((r for r in reviews_by_turn(sample.pk).get(turn.pk, []) if r.pk == revision_id), None)
    if chosen is None:
        raise InvalidInput("revision", f"Revision {revision_id} is not a reviewer's final version of this turn.")
    fields = _final_fields(project, chosen, edit or {})
    edited = fields != _final_fields(project, chosen, {})
    with transaction.atomic():
        locked = AdjudicationCase.objects.select_for_update().get(pk=case.pk)
        existing = Adjudication.objects.filter(turn=turn).select_related("adjudicator").first()
        if existing is not None:
            raise Conflict(
                f"Turn {turn.index + 1} was settled by {existing.adjudicator} at {existing.created_at:%Y-%m-%d %H:%M}."
            )
        adjudication = Adjudication.objects.create(
            case=locked,
            sample=sample,
            turn=turn,
            adjudicator=adjudicator,
            revision=chosen,
            edited=edited,
            **fields,
        )
        settled = set(Adjudication.objects.filter(case=locked).values_list("turn_id", flat=True))
        if locked.settled_at is None and {int(t) for t in locked.turns} <= settled:
            locked.settled_at = timezone.now()
            locked.save(update_fields=["settled_at"])
    return adjudication


def _final_fields(project: Project, chosen: Revision, edit: dict[str, Any]) -> dict[str, Any]:
    decision = edit.get("decision") or chosen.decision
    if decision not in Decision.values:
        raise InvalidInput("decision", f"One of {', '.join(Decision.values)}, not {decision!r}.")
    critique = edit["critique"] if edit.get("critique") is not None else chosen.critique
    refinement = edit["refinement"] if edit.get("refinement") is not None else chosen.refinement
    reason = edit["reason"] if edit.get("reason") is not None else chosen.reason
    for name, value in (("critique", critique), ("refinement", refinement), ("reason", reason)):
        if not isinstance(value, str):
            raise InvalidInput(name, "Text expected.")
    check_text(critique=critique, refinement=refinement, reason=reason)
    rejected = decision == Decision.REJECTED
    scores = {**(chosen.scores or {}), **edit["scores"]} if edit.get("scores") is not None else chosen.scores
    scores = clean_scores(project, scores, required=not rejected)
    if rejected:
        if not reason.strip():
            raise InvalidInput("reason", "Say why the draft is rejected.")
    else:
        reason = ""
        if not critique.strip():
            raise InvalidInput("critique", "The critique is empty.")
    if (
        decision == Decision.ACCEPTED
        and edit
        and (critique, refinement, scores)
        != (
            chosen.critique,
            chosen.refinement,
            chosen.scores,
        )
    ):
        decision = Decision.EDITED  # the draft as accepted is no longer what is kept
    return {
        "decision": decision,
        "critique": critique,
        "refinement": refinement,
        "scores": scores,
        "reason": reason.strip(),
    }
