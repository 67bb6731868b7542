"""The review API's shapes: the review page of an assignment, the requests that save a reviewer's
work, and the answers (errors included) that the page's script reads."""

from __future__ import annotations

from django.core.validators import MaxLengthValidator
from rest_framework import serializers

from ..limits import TEXT_MAX_CHARS, text_limit_error
from ..models import Sample
from ..rest.errors import ErrorSerializer
from ..rest.serializers import DraftSerializer, ImageWithUrlSerializer, RevisionSerializer
from .models import Assignment, Decision, Flag, WorkingCopy

__all__ = [
    "AssignmentDetailSerializer",
    "AssignmentStateSerializer",
    "ConflictSerializer",
    "FlagRequestSerializer",
    "FlagResultSerializer",
    "HistoryEntrySerializer",
    "LeaseLostSerializer",
    "LeaseSerializer",
    "RenewResultSerializer",
    "RevisionRequestSerializer",
    "RevisionSerializer",
    "SaveResultSerializer",
    "WorkingCopyRequestSerializer",
    "WorkingCopySavedSerializer",
]


class BoundedText(serializers.CharField):
    """Text as typed (blank allowed, whitespace kept), at most ``TEXT_MAX_CHARS[limit]`` characters.

    The bound shows in the OpenAPI document as maxLength; past it, the 400 names the field and
    says how long the text was.
    """

    def __init__(self, limit: str, **kwargs):
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(max_length=TEXT_MAX_CHARS[limit], **kwargs)
        self.limit = limit
        self.validators = [v for v in self.validators if not isinstance(v, MaxLengthValidator)]
        self.validators.append(self.check_length)

    def check_length(self, value: str) -> None:
        problem = text_limit_error(self.limit, value)
        if problem:
            raise serializers.ValidationError(f"{problem[0].upper()}{problem[1:]}.")


def _text(limit: str, **kwargs) -> serializers.CharField:
    """Text as typed, optional (blank by default), within its field's bound."""
    return BoundedText(limit, required=False, default="", **kwargs)


# --- the review page -----------------------------------------------------------------------


class ReviewSampleSerializer(serializers.ModelSerializer):
    image = ImageWithUrlSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Sample
        fields = ["id", "external_id", "target_criterion", "reference_answer", "source_dataset", "image"]
        read_only_fields = fields


class WorkingCopySerializer(serializers.ModelSerializer):
    """Unsaved typing: any of critique, refinement, scores and reason, as last autosaved."""

    class Meta:
        model = WorkingCopy
        fields = ["fields", "base_version", "updated_at"]
        read_only_fields = fields


class TurnReviewSerializer(serializers.Serializer):
    """One turn of the review page (a ``selectors.TurnReview``).

    ``base_version`` is the version the next save must name (0 before the first); ``latest`` is this
    assignment's latest revision of the turn; ``reviewable`` is false while the turn awaits a response.
    """

    id = serializers.IntegerField(source="turn.id", read_only=True)
    index = serializers.IntegerField(source="turn.index", read_only=True)
    user_message = serializers.CharField(source="turn.user_message", read_only=True)
    model_response = serializers.CharField(source="turn.model_response", read_only=True, allow_null=True)
    reviewable = serializers.BooleanField(read_only=True)
    draft = DraftSerializer(read_only=True, allow_null=True)
    base_version = serializers.IntegerField(read_only=True)
    latest = RevisionSerializer(read_only=True, allow_null=True)
    working_copy = WorkingCopySerializer(source="working", read_only=True, allow_null=True)


class AssignmentDetailSerializer(serializers.Serializer):
    """A reviewer's assignment of one sample with everything its review page shows (a ``selectors.ReviewPage``)."""

    id = serializers.IntegerField(source="assignment.id", read_only=True)
    state = serializers.ChoiceField(source="assignment.state", choices=Assignment.State.choices, read_only=True)
    lane = serializers.IntegerField(source="assignment.lane", read_only=True)
    reviewer = serializers.CharField(source="assignment.reviewer.username", read_only=True)
    claimed_at = serializers.DateTimeField(source="assignment.claimed_at", read_only=True)
    expires_at = serializers.DateTimeField(source="assignment.expires_at", read_only=True)
    flag = serializers.ChoiceField(
        source="assignment.flag", choices=[("", "None"), *Flag.choices], read_only=True, allow_blank=True
    )
    flag_note = serializers.CharField(source="assignment.flag_note", read_only=True)
    sample = ReviewSampleSerializer(source="assignment.sample", read_only=True)
    turns = TurnReviewSerializer(many=True, read_only=True)


# --- requests -------------------------------------------------------------------------------


class RevisionRequestSerializer(serializers.Serializer):
    base_version = serializers.IntegerField(
        min_value=0, help_text="The version this save is based on: the turn's base_version, 0 before the first save."
    )
    decision = serializers.ChoiceField(choices=Decision.choices)
    critique = _text("critique", help_text="Required (not blank) when the decision is edited; ignored when accepted.")
    refinement = _text("refinement")
    scores = serializers.DictField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Criterion to a whole number on the project's scale; every criterion when edited.",
    )
    reason = _text("reason", help_text="Why the draft is rejected; required when the decision is rejected.")
    time_spent_ms = serializers.IntegerField(required=False, min_value=0, default=0)
    draft = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="The draft shown; the turn's latest when omitted."
    )


class WorkingFieldsSerializer(serializers.Serializer):
    """Typing in progress: these four keys only (any other is dropped), texts within their bounds,
    scores of the project's criteria on its scale (the service checks them)."""

    critique = BoundedText("critique", required=False)
    refinement = BoundedText("refinement", required=False)
    scores = serializers.DictField(required=False)
    reason = BoundedText("reason", required=False)


class WorkingCopyRequestSerializer(serializers.Serializer):
    # The body's key is "fields": the declared field shadows Serializer.fields for mypy only (the
    # serializer metaclass moves declared fields out of the class's attributes).
    fields = WorkingFieldsSerializer(  # type: ignore[assignment]
        help_text="What is typed so far; only the keys sent are kept."
    )
    base_version = serializers.IntegerField(min_value=0, help_text="The version the typing started from.")


class FlagRequestSerializer(serializers.Serializer):
    flag = serializers.ChoiceField(choices=Flag.choices)
    note = _text("flag_note")


# --- answers -------------------------------------------------------------------------------


class AssignmentStateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assignment
        fields = ["id", "state"]
        read_only_fields = fields


class RenewResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assignment
        fields = ["id", "state", "expires_at"]
        read_only_fields = fields


class FlagResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = Assignment
        fields = ["id", "state", "flag"]
        read_only_fields = fields


class SaveResultSerializer(serializers.Serializer):
    revision = RevisionSerializer(read_only=True)
    completed = serializers.BooleanField(
        read_only=True, help_text="This save decided the sample's last turn: the review is submitted."
    )


def _segments() -> serializers.ListField:
    """Diff segments ``[op, text]``, op one of same, del, ins."""
    return serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(trim_whitespace=False), min_length=2, max_length=2),
        read_only=True,
    )


class LiveDiffSerializer(serializers.Serializer):
    """What the typing changes in the turn's latest draft: word diffs as ``[op, text]`` segments (op one
    of same, del, ins) and score changes as ``[criterion, before, after]``; the server's diff, the one
    a saved revision's history shows."""

    critique = _segments()
    refinement = _segments()
    scores = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=3, max_length=3), read_only=True
    )


class WorkingCopySavedSerializer(serializers.Serializer):
    """The autosave's answer (a ``selectors.SavedCopy``): when it was kept, and the live diff of the typing."""

    updated_at = serializers.DateTimeField(source="copy.updated_at", read_only=True)
    diff = LiveDiffSerializer(read_only=True)


class HistoryEntrySerializer(serializers.Serializer):
    """A revision with what it changed against the one before it in its chain (the first against its draft).

    Diffs are ``[op, text]`` segments, op one of same, del, ins; score changes are
    ``[criterion, before, after]``.
    """

    revision = RevisionSerializer(read_only=True)
    critique_diff = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2), read_only=True
    )
    refinement_diff = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2), read_only=True
    )
    score_changes = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=3, max_length=3), read_only=True
    )


class LeaseSerializer(serializers.ModelSerializer):
    reviewer: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="username", read_only=True)
    external_id = serializers.CharField(source="sample.external_id", read_only=True)

    class Meta:
        model = Assignment
        fields = ["id", "reviewer", "sample", "external_id", "claimed_at", "expires_at"]
        read_only_fields = fields


class LeaseLostSerializer(ErrorSerializer):
    """The one error body, marked: the lease was lost."""

    lease_lost = serializers.BooleanField(read_only=True, default=True)


class ConflictSerializer(ErrorSerializer):
    """The one error body, with the revision saved in the meantime."""

    conflict = serializers.BooleanField(read_only=True, default=True)
    latest = RevisionSerializer(read_only=True, help_text="The revision saved in the meantime.")
    diff = serializers.DictField(
        child=_segments(),
        read_only=True,
        help_text="Critique and refinement of the refused save against ``latest`` (theirs → yours), as segments.",
    )
