"""The cached figures (``quality.figures.cached``, behind the API and the page) are never stale:
after every kind of change that moves a figure, the cached JSON equals a fresh ``compute``; a
repeated request is served from the cache in a fixed, small number of queries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from feedback.drafting.models import Draft
from feedback.review.models import Assignment, AssignmentState, Decision, Revision
from quality.figures import cached, compute
from quality.filters import QualityFilters
from quality.models import CachedFigures
from tests.conftest import token_client
from tests.factories import DraftFactory, SampleFactory
from tests.quality.quality_helpers import CRITERIA, Review, SamplePlan, TurnPlan, build, reviewers

pytestmark = pytest.mark.django_db


def fresh(project, filters: QualityFilters | None = None) -> dict[str, Any]:
    return json.loads(json.dumps(compute(project, filters), cls=DjangoJSONEncoder))


@pytest.fixture
def reviewed(project):
    ann, bea = reviewers(project, "ann", "bea")
    four, five = dict.fromkeys(CRITERIA, 4), dict.fromkeys(CRITERIA, 5)
    build(
        project,
        [
            SamplePlan(
                reviews=[
                    Review(ann, [TurnPlan(draft=four), TurnPlan(draft=five, decision=Decision.EDITED, final=four)])
                ]
            ),
            SamplePlan(reviews=[Review(bea, [TurnPlan(draft=five, decision=Decision.REJECTED)])], prompt_version="v2"),
        ],
    )
    return project, ann, bea


def test_a_repeated_request_is_served_from_the_cache(reviewed):
    project, *_ = reviewed
    first = cached(project)
    assert first == fresh(project)
    with CaptureQueriesContext(connection) as queries:
        again = cached(project)
    assert again == first
    assert len(queries) == 2  # the stamp and the cached JSON
    # Each set of filters is its own entry.
    narrowed = cached(project, QualityFilters(prompt_version="v2"))
    assert narrowed == fresh(project, QualityFilters(prompt_version="v2")) and narrowed != first
    assert CachedFigures.objects.filter(project=project).count() == 2


def change_review(project, ann, bea, admin_user):
    from feedback.review.revisions import revision_create

    assignment = Assignment.objects.get(project=project, reviewer=ann)
    turn = assignment.sample.turns.get(index=0)
    revision_create(
        assignment=assignment,
        turn=turn,
        author=admin_user,
        base_version=1,
        decision=Decision.EDITED,
        critique="Corrected.",
        refinement="",
        scores=dict.fromkeys(CRITERIA, 1),
        time_spent_ms=10,
    )


def reopen(project, ann, bea, admin_user):
    assignment = Assignment.objects.get(project=project, reviewer=bea)
    assignment.state = AssignmentState.LEASED
    assignment.save(update_fields=["state"])


def new_review(project, ann, bea, admin_user):
    build(project, [SamplePlan(reviews=[Review(bea, [TurnPlan(draft=dict.fromkeys(CRITERIA, 2))])])], prefix="new")


def new_draft(project, ann, bea, admin_user):
    sample = SampleFactory.create(project=project, external_id="unreviewed", turns=1, source_model="lvlm-z")
    DraftFactory.create(turn=sample.turns.get(), scores=dict.fromkeys(CRITERIA, 3))


def scale(project, ann, bea, admin_user):
    project.score_max = 9
    project.save()


def rebuild(project, ann, bea, admin_user):
    Revision.objects.filter(assignment__reviewer=bea).update(decision=Decision.ACCEPTED, scores={})
    call_command("quality_rebuild", "--project", project.slug, verbosity=0)


@pytest.mark.parametrize("change", [change_review, reopen, new_review, new_draft, scale, rebuild])
def test_every_change_of_a_figure_reaches_the_cached_figures(reviewed, admin_user, change):
    project, ann, bea = reviewed
    before = cached(project)
    change(project, ann, bea, admin_user)
    project.refresh_from_db()
    after = cached(project)
    assert after == fresh(project)
    assert after != before


@pytest.mark.parametrize("what", ["unreviewed draft", "revision"])
def test_deletions_reach_the_cached_figures_when_they_commit(reviewed, what, django_capture_on_commit_callbacks):
    project, ann, bea = reviewed
    new_draft(project, ann, bea, None)
    before = cached(project)
    with django_capture_on_commit_callbacks(execute=True):
        if what == "revision":
            Revision.objects.filter(assignment__reviewer=bea).delete()
        else:
            Draft.objects.filter(turn__sample__external_id="unreviewed").delete()
    after = cached(project)
    assert after == fresh(project)
    assert after != before


def test_the_api_and_the_page_serve_the_cached_figures(reviewed, researcher_user, client):
    project, ann, bea = reviewed
    api = token_client(researcher_user).get(reverse("api-quality", kwargs={"slug": project.slug}))
    assert api.status_code == 200
    assert api.json() == fresh(project)
    new_review(project, ann, bea, None)
    again = token_client(researcher_user).get(reverse("api-quality", kwargs={"slug": project.slug}))
    assert again.json() == fresh(project) != api.json()
    client.force_login(researcher_user)
    page = client.get(reverse("quality:page", kwargs={"slug": project.slug}))
    assert page.status_code == 200
    assert page.context["figures"] == fresh(project)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="work_mem is a PostgreSQL setting")
def test_the_figures_queries_run_with_more_work_memory_and_leave_the_setting_as_it_was(reviewed, monkeypatch):
    from quality import figures

    project, *_ = reviewed
    seen: list[str] = []
    reviewers = figures._reviewers

    def spying(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SHOW work_mem")
            seen.append(cursor.fetchone()[0])
        return reviewers(*args, **kwargs)

    monkeypatch.setattr(figures, "_reviewers", spying)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', '3MB', true)")
    compute(project)
    assert seen == [figures.WORK_MEM]
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == "3MB"
    # A compute that fails leaves it too (rolled back with its savepoint).
    monkeypatch.setattr(figures, "_models", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        compute(project)
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == "3MB"
