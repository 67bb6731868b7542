"""Human review in the REST API: claim a sample, read its review page, save revisions and typing,
renew, skip, flag or release the lease; a turn's history; the project's active leases.

Reviewing is for annotators and admins (researchers get 403, non-members 404). An assignment is
open to its reviewer and to the project's admins; to another annotator it does not exist (404, as
on the review page); only its reviewer may renew, skip or flag it. The services decide; their
refusals (``feedback.errors``) get the API's one error body (``feedback.rest.errors``):

- ``NotAllowed`` (wrong user, or an assignment no longer leased, e.g. skipping a submitted one) → 403;
- ``LeaseLost`` (the lapsed lease's place went to someone else) → 409, with ``lease_lost: true``;
- ``Conflict`` (a save based on a stale version) → 409, with ``conflict: true`` and ``latest``;
- ``InvalidInput`` → 400, the fields under ``errors``.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.rest.parsers import BoundedJSONParser

from ..errors import NotFound
from ..models import Role, Turn
from ..permissions import Access, project_access
from ..rest.errors import ErrorSerializer
from . import claims, revisions, selectors
from .models import Assignment
from .serializers import (
    AssignmentDetailSerializer,
    AssignmentStateSerializer,
    ConflictSerializer,
    FlagRequestSerializer,
    FlagResultSerializer,
    HistoryEntrySerializer,
    LeaseLostSerializer,
    LeaseSerializer,
    RenewResultSerializer,
    RevisionRequestSerializer,
    RevisionSerializer,
    SaveResultSerializer,
    WorkingCopyRequestSerializer,
    WorkingCopySavedSerializer,
)

TAGS = ["review"]
FIELD_ERRORS = OpenApiResponse(ErrorSerializer, description="Invalid input: ``errors`` maps fields to messages.")
FORBIDDEN = OpenApiResponse(
    description="A researcher, or not this assignment's reviewer (nor an admin where admins may act), "
    "or the assignment is no longer in a state that allows this.",
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such project for this user, or no such assignment.")
LEASE_LOST = OpenApiResponse(
    LeaseLostSerializer, description="The lease ran out and another reviewer took the place; typing is kept."
)


def _review_access(request, slug: str) -> Access:
    """The project, if the user may review in it (annotators and admins)."""
    return project_access(request.user, slug, Role.ANNOTATOR, Role.ADMIN)


class ReviewView(APIView):
    """Takes JSON bodies and answers the review services' refusals as the module's docstring says."""

    parser_classes = [BoundedJSONParser]

    def handle_exception(self, exc):
        if isinstance(exc, revisions.Conflict):  # the error body, with the newer revision
            exc.extra.update(conflict=True, latest=RevisionSerializer(exc.latest).data, diff=exc.diff)
        return super().handle_exception(exc)


class AssignmentView(ReviewView):
    def assignment(self, request, slug: str, pk: int) -> tuple[Assignment, bool]:
        """The assignment, for its reviewer or an admin of the project (404 to anyone else, as on the
        review page); with whether the user is an admin."""
        access = _review_access(request, slug)
        try:
            assignment = selectors.assignment_for_page(access.project, pk)
        except Assignment.DoesNotExist:
            raise NotFound("No such assignment.") from None
        access.check_owner(assignment.reviewer_id)
        return assignment, access.is_admin

    def detail(self, assignment: Assignment, *, is_admin: bool) -> dict:
        page = selectors.review_page(assignment, can_see_all=is_admin)
        return AssignmentDetailSerializer(page).data


class Claim(AssignmentView):
    @extend_schema(
        tags=TAGS,
        request=None,
        summary="Claim the next sample",
        description="The reviewer's current lease in the project, or a new lease on the next sample in "
        "the queue (answered 200 either way); 204 when nothing is left for them.",
        responses={
            200: AssignmentDetailSerializer,
            204: OpenApiResponse(description="Nothing left to review."),
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def post(self, request, slug):
        access = _review_access(request, slug)
        project, is_admin = access.project, access.is_admin
        claimed = claims.sample_claim(project=project, reviewer=request.user)
        if claimed is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        assignment = selectors.assignment_for_page(project, claimed.pk)
        return Response(self.detail(assignment, is_admin=is_admin))


class AssignmentDetail(AssignmentView):
    @extend_schema(
        tags=TAGS,
        summary="An assignment's review page",
        description="The sample, and per turn its latest successful draft, this assignment's latest "
        "revision, the version the next save must name, and unsaved typing.",
        responses={200: AssignmentDetailSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request, slug, pk):
        assignment, is_admin = self.assignment(request, slug, pk)
        return Response(self.detail(assignment, is_admin=is_admin))


class Renew(AssignmentView):
    @extend_schema(
        tags=TAGS,
        request=None,
        summary="Renew the lease",
        description="Extends the lease, or revives a lapsed one whose place is still free. Reviewer only. "
        "An assignment already skipped, released or submitted is answered as it is: check ``state``.",
        responses={200: RenewResultSerializer, 403: FORBIDDEN, 404: NOT_FOUND, 409: LEASE_LOST},
    )
    def post(self, request, slug, pk):
        assignment, _ = self.assignment(request, slug, pk)
        renewed = claims.lease_renew(assignment=assignment, user=request.user)
        return Response(RenewResultSerializer(renewed).data)


class Skip(AssignmentView):
    @extend_schema(
        tags=TAGS,
        request=None,
        summary="Skip the sample",
        description="Ends the lease; the sample goes to the back of this reviewer's queue. Reviewer only; "
        "403 also when the assignment is no longer leased.",
        responses={200: AssignmentStateSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request, slug, pk):
        assignment, _ = self.assignment(request, slug, pk)
        ended = claims.lease_end(assignment=assignment, user=request.user, state=Assignment.State.SKIPPED)
        return Response(AssignmentStateSerializer(ended).data)


class Release(AssignmentView):
    @extend_schema(
        tags=TAGS,
        request=None,
        summary="Release the sample",
        description="Ends the lease and returns the sample to the queue. The reviewer or an admin; "
        "403 also when the assignment is no longer leased.",
        responses={200: AssignmentStateSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request, slug, pk):
        assignment, is_admin = self.assignment(request, slug, pk)
        ended = claims.lease_end(
            assignment=assignment, user=request.user, state=Assignment.State.RELEASED, by_admin=is_admin
        )
        return Response(AssignmentStateSerializer(ended).data)


class FlagSample(AssignmentView):
    @extend_schema(
        tags=TAGS,
        request=FlagRequestSerializer,
        summary="Flag the sample",
        description="Submits the review with a flag instead of feedback. Reviewer only, on a leased "
        "(or revivable) assignment.",
        responses={
            200: FlagResultSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: LEASE_LOST,
        },
    )
    def post(self, request, slug, pk):
        assignment, _ = self.assignment(request, slug, pk)
        form = FlagRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        flagged = revisions.sample_flag(
            assignment=assignment, user=request.user, flag=form.validated_data["flag"], note=form.validated_data["note"]
        )
        return Response(FlagResultSerializer(flagged).data)


class RevisionCreate(AssignmentView):
    @extend_schema(
        tags=TAGS,
        request=RevisionRequestSerializer,
        summary="Save a revision of a turn's feedback",
        description="Appends version base_version + 1 to this assignment's chain for the turn. A save "
        "based on a stale version is refused with 409 and the newer revision. ``completed`` says this "
        "save decided the last turn and so submitted the review.",
        responses={
            201: SaveResultSerializer,
            400: FIELD_ERRORS,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: OpenApiResponse(
                ConflictSerializer,
                description="Stale base_version (``conflict: true``, with ``latest``), or the lease was "
                "lost (``lease_lost: true``).",
            ),
        },
    )
    def post(self, request, slug, pk, turn_id):
        assignment, _ = self.assignment(request, slug, pk)
        turn = get_object_or_404(Turn, pk=turn_id, sample__project=assignment.project)
        form = RevisionRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        result = revisions.revision_create(
            assignment=assignment,
            turn=turn,
            author=request.user,
            base_version=data["base_version"],
            decision=data["decision"],
            critique=data["critique"],
            refinement=data["refinement"],
            scores=data["scores"],
            reason=data["reason"],
            time_spent_ms=data["time_spent_ms"],
            draft_id=data["draft"],
        )
        return Response(SaveResultSerializer(result).data, status=status.HTTP_201_CREATED)


class WorkingCopySave(AssignmentView):
    @extend_schema(
        tags=TAGS,
        request=WorkingCopyRequestSerializer,
        summary="Autosave unsaved typing",
        description="Keeps what is typed on a turn until it is saved as a revision (which deletes it). "
        "Answers with the live diff of the typing against the turn's latest draft, as the server computes "
        "every diff (the history of the revision saved from this typing shows the same segments).",
        responses={200: WorkingCopySavedSerializer, 400: FIELD_ERRORS, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def put(self, request, slug, pk, turn_id):
        assignment, _ = self.assignment(request, slug, pk)
        turn = get_object_or_404(Turn, pk=turn_id, sample__project=assignment.project)
        form = WorkingCopyRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        copy = revisions.working_copy_save(
            assignment=assignment,
            turn=turn,
            user=request.user,
            fields=dict(form.validated_data["fields"]),
            base_version=form.validated_data["base_version"],
        )
        saved = selectors.SavedCopy(copy=copy, diff=selectors.working_diff(turn, copy.fields, assignment.project))
        return Response(WorkingCopySavedSerializer(saved).data)


class TurnHistory(ReviewView):
    @extend_schema(
        tags=TAGS,
        summary="A turn's revisions with diffs",
        description="Every chain's revisions of the turn, each against the one before it (the first "
        "against its draft). Admins and researchers see every reviewer's; annotators their own only.",
        responses={200: HistoryEntrySerializer(many=True), 404: NOT_FOUND},
    )
    def get(self, request, slug, turn_id):
        access = project_access(request.user, slug)
        project, sees_all = access.project, access.has(Role.ADMIN, Role.RESEARCHER)
        try:
            history = selectors.turn_history(project, turn_id, reviewer=None if sees_all else request.user)
        except Turn.DoesNotExist:
            raise NotFound("No such turn.") from None
        return Response(HistoryEntrySerializer(history, many=True).data)


class LeaseList(ReviewView):
    @extend_schema(
        tags=TAGS,
        summary="Active leases",
        description="The project's samples in review now, soonest to expire first. Admins only.",
        responses={200: LeaseSerializer(many=True), 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request, slug):
        project = project_access(request.user, slug, Role.ADMIN).project
        claims.leases_expire(project)
        return Response(LeaseSerializer(selectors.active_leases(project), many=True).data)
