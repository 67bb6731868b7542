"""Review pages: the queue's start page, the review screen, and the admins' view of leases.

The review screen is server-rendered; its script saves through the REST API (feedback/review/api.py).
"""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ..errors import NotFound
from ..models import Role
from ..permissions import project_access
from . import selectors
from .claims import NotAllowed, lease_end, leases_expire, queue_sync, sample_claim
from .models import Assignment, Decision, Flag
from .shortcuts import SHORTCUTS, shortcuts_config

REVIEWERS = (Role.ANNOTATOR, Role.ADMIN)


def review_home(request, slug):
    access = project_access(request.user, slug, *REVIEWERS)
    project = access.project
    queue_sync(project)
    current = Assignment.objects.filter(project=project, reviewer=request.user, state=Assignment.State.LEASED).first()
    return render(
        request,
        "feedback/review_home.html",
        {
            "project": project,
            "is_admin": access.is_admin,
            "progress": selectors.review_progress(project, request.user),
            "current": current,
        },
    )


@require_POST
def review_start(request, slug):
    project = project_access(request.user, slug, *REVIEWERS).project
    assignment = sample_claim(project=project, reviewer=request.user)
    if assignment is None:
        messages.info(request, "Nothing is left for you to review in this project.")
        return redirect("feedback:review-home", slug=project.slug)
    return redirect("feedback:review-page", slug=project.slug, pk=assignment.pk)


def review_page(request, slug, pk):
    access = project_access(request.user, slug, *REVIEWERS)
    project, is_admin = access.project, access.is_admin
    try:
        assignment = selectors.assignment_for_page(project, pk)
    except Assignment.DoesNotExist:
        raise NotFound("No such assignment.") from None
    access.check_owner(assignment.reviewer_id)  # another annotator's: 404, as in the API
    page = selectors.review_page(assignment, can_see_all=is_admin)
    api = reverse("api-review-assignment", kwargs={"slug": project.slug, "pk": assignment.pk})
    levels = [(n, project.level_descriptions.get(str(n), "")) for n in project.score_range]
    config = {
        "assignment": assignment.pk,
        "state": assignment.state,
        # The names the script needs, from the models: it repeats none of them.
        "states": {state.name: state.value for state in Assignment.State},
        "editableStates": [*Assignment.HOLDING, Assignment.State.EXPIRED],
        "decisions": {decision.name: decision.value for decision in Decision},
        "decisionLabels": dict(Decision.choices),
        "scale": {"min": project.score_min, "max": project.score_max},
        "levels": {str(n): description for n, description in levels},
        "shortcuts": shortcuts_config(),
        "mine": assignment.reviewer_id == request.user.pk,
        "api": api,
        "claim": reverse("api-review-claim", kwargs={"slug": project.slug}),
        "page": reverse("feedback:review-page", kwargs={"slug": project.slug, "pk": 0}),
        "home": reverse("feedback:review-home", kwargs={"slug": project.slug}),
        "renewSeconds": settings.REVIEW_RENEW_SECONDS,
        "criteria": project.criteria,
        "turns": [
            {
                "id": t.turn.pk,
                "index": t.turn.index,
                "reviewable": t.reviewable,
                "baseVersion": t.base_version,
                "draft": _draft_fields(t.draft),
                "baseline": t.baseline,
                "start": t.start,
                "decided": t.latest is not None,
                "diff": selectors.live_diff(t, project.criteria),
            }
            for t in page.turns
        ],
    }
    return render(
        request,
        "feedback/review.html",
        {
            "project": project,
            "page": page,
            "assignment": assignment,
            "sample": assignment.sample,
            "is_admin": is_admin,
            "progress": selectors.review_progress(project, request.user),
            "levels": levels,
            "flags": Flag.choices,
            "shortcuts": SHORTCUTS,
            "config": config,
        },
    )


def _draft_fields(draft) -> dict | None:
    if draft is None:
        return None
    return {"id": draft.pk, "critique": draft.critique, "refinement": draft.refinement, "scores": draft.scores}


@require_http_methods(["GET", "POST"])
def review_leases(request, slug):
    project = project_access(request.user, slug, Role.ADMIN).project
    if request.method == "POST":
        chosen = request.POST.get("assignment", "")
        if not (chosen.isascii() and chosen.isdigit() and len(chosen) <= 18):  # an id, within bigint
            messages.error(request, "Nothing released: the form must name a lease by its number.")
            return redirect("feedback:review-leases", slug=project.slug)
        assignment = get_object_or_404(Assignment, project=project, pk=int(chosen))
        try:
            lease_end(assignment=assignment, user=request.user, state=Assignment.State.RELEASED, by_admin=True)
            messages.info(request, f"Released {assignment.sample.external_id} from {assignment.reviewer}.")
        except NotAllowed as exc:
            messages.error(request, str(exc))
        return redirect("feedback:review-leases", slug=project.slug)
    leases_expire(project)
    return render(
        request,
        "feedback/review_leases.html",
        {"project": project, "leases": selectors.active_leases(project)},
    )
