"""The review pages: the start page, the review screen and the leases page; their queries, their
content and who may reach them."""

from __future__ import annotations

import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image as PILImage

from feedback.images import apply_file
from feedback.models import Image, Project, Role, Turn
from feedback.review.claims import sample_claim
from feedback.review.models import Assignment, Revision
from feedback.review.revisions import revision_create
from tests.conftest import make_user
from tests.factories import DraftFactory
from tests.feedback.review_helpers import claim_one, decide_all, make_drafted_samples, make_reviewers

pytestmark = pytest.mark.django_db


def review_url(project, assignment) -> str:
    return f"/projects/{project.slug}/review/{assignment.pk}/"


def lease(project, sample, reviewer) -> Assignment:
    now = timezone.now()
    return Assignment.objects.create(
        project=project, sample=sample, reviewer=reviewer, lane=1, claimed_at=now, expires_at=now
    )


def attach_picture(image: Image) -> None:
    buffer = io.BytesIO()
    PILImage.new("RGB", (640, 480), "steelblue").save(buffer, format="JPEG")
    apply_file(image, buffer.getvalue())
    image.save()


def page_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_the_review_page_runs_the_same_queries_whatever_the_sample_holds(client, project):
    small, big = make_drafted_samples(project, 2, turns=1)[0], make_drafted_samples(project, 1, turns=6, prefix="b")[0]
    alice, bob = make_reviewers(project, "alice", "bob")
    admin = make_user("boss", project=project, role=Role.ADMIN)
    for turn in big.turns.all():
        DraftFactory.create(turn=turn, critique="A second draft.")
        DraftFactory.create(turn=turn, critique="A third draft.")
    small_review, big_review = lease(project, small, alice), lease(project, big, bob)
    for turn in big.turns.all():
        for version in range(3):
            revision_create(assignment=big_review, turn=turn, author=bob, base_version=version, decision="accepted")
    client.force_login(alice)
    small_count = page_queries(client, review_url(project, small_review))
    client.force_login(bob)
    assert page_queries(client, review_url(project, big_review)) == small_count
    # An admin sees every reviewer's history, still in as many queries.
    client.force_login(admin)
    admin_small = page_queries(client, review_url(project, small_review))
    assert page_queries(client, review_url(project, big_review)) == admin_small
    response = client.get(review_url(project, big_review))
    assert response.content.decode().count("History (3 revisions)") == 6


def test_the_review_page_shows_the_image_boxes_draft_rubric_and_guidelines(client, project):
    project.guidelines = "Check every <object> against the boxes."
    project.save()
    sample = make_drafted_samples(project, 1, turns=2)[0]
    turn = sample.turns.get(index=0)
    DraftFactory.create(turn=turn, critique="Says <script>alert(1)</script> about the bus.")
    (alice,) = make_reviewers(project, "alice")
    client.force_login(alice)
    assignment = claim_one(project, alice)
    html = client.get(review_url(project, assignment)).content.decode()
    assert 'id="image-missing"' in html  # no file yet: a notice, and the annotations as text
    assert "bus <span" in html and 'data-label="bus"' not in html
    image = sample.image
    assert image is not None
    attach_picture(image)
    html = client.get(review_url(project, assignment)).content.decode()
    assert 'id="image-missing"' not in html
    assert f'src="/images/{image.pk}/file"' in html
    assert 'data-label="bus"' in html and 'data-label="person"' in html
    assert '<rect x="40" y="60" width="300" height="200">' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "Check every &lt;object&gt; against the boxes." in html
    assert project.level_descriptions["7"] in html
    for criterion in project.criteria:
        assert f'data-criterion="{criterion}"' in html
    assert html.count('data-score="honesty"') == 2 * len(project.score_range)
    assert "A red double-decker bus drives past a shop." in html  # the reference answer


def test_start_claims_the_next_sample_and_says_when_nothing_is_left(client, project):
    samples = make_drafted_samples(project, 2)
    (alice,) = make_reviewers(project, "alice")
    client.force_login(alice)
    home = client.get(f"/projects/{project.slug}/review/")
    assert home.status_code == 200 and "0 / 2" in home.content.decode()
    response = client.post(f"/projects/{project.slug}/review/start/")
    assignment = Assignment.objects.get(reviewer=alice)
    assert response.status_code == 302 and response["Location"] == review_url(project, assignment)
    assert assignment.sample_id == samples[0].pk
    decide_all(assignment)
    second = client.post(f"/projects/{project.slug}/review/start/", follow=True)
    decide_all(Assignment.objects.get(reviewer=alice, state=Assignment.State.LEASED))
    assert second.status_code == 200
    done = client.post(f"/projects/{project.slug}/review/start/", follow=True)
    assert "Nothing is left for you to review" in done.content.decode()
    assert "2 / 2" in client.get(f"/projects/{project.slug}/review/").content.decode()


def test_admins_see_who_holds_what_and_release_a_lease(client, project):
    make_drafted_samples(project, 2)
    alice, bob = make_reviewers(project, "alice", "bob")
    admin = make_user("boss", project=project, role=Role.ADMIN)
    held = claim_one(project, alice)
    client.force_login(admin)
    page = client.get(f"/projects/{project.slug}/review/leases/").content.decode()
    assert "alice" in page and held.sample.external_id in page
    assert client.get(review_url(project, held)).status_code == 200  # an admin may open anyone's review
    client.post(f"/projects/{project.slug}/review/leases/", {"assignment": held.pk})
    held.refresh_from_db()
    assert held.state == Assignment.State.RELEASED and held.released_by == admin
    assert claim_one(project, bob).sample_id == held.sample_id


def test_annotators_reach_only_their_own_reviews_in_their_own_projects(client, project):
    other = Project.objects.create(name="Other", slug="other")
    make_drafted_samples(project, 2)
    make_drafted_samples(other, 1, prefix="o")
    alice, bob = make_reviewers(project, "alice", "bob")
    outsider_review = sample_claim(project=other, reviewer=make_user("olga", project=other, role=Role.ANNOTATOR))
    bobs = claim_one(project, bob)
    client.force_login(alice)
    assert client.get(review_url(project, bobs)).status_code == 404
    assert client.get("/projects/other/review/").status_code == 404
    assert client.get(review_url(other, outsider_review)).status_code == 404
    assert client.get(f"/projects/{project.slug}/review/leases/").status_code == 403
    assert client.get(f"/projects/{project.slug}/jobs/").status_code == 403
    assert client.get(f"/projects/{project.slug}/jobs/new/").status_code == 403
    assert client.get(f"/projects/{project.slug}/imports/new/").status_code == 403
    assert client.get(f"/api/projects/{project.slug}/jobs/").status_code == 403
    admin_site = client.get("/admin/")
    assert admin_site.status_code == 302 and "/admin/login/" in admin_site["Location"]
    assert client.get("/admin/feedback/revision/").status_code == 302
    assert not any(
        path in client.get(f"/projects/{project.slug}/").content.decode() for path in ("/jobs/", "/exports/")
    )


def test_researchers_do_not_review(client, project):
    make_drafted_samples(project, 1)
    rex = make_user("rex", project=project, role=Role.RESEARCHER)
    client.force_login(rex)
    assert client.get(f"/projects/{project.slug}/review/").status_code == 403
    assert client.post(f"/projects/{project.slug}/review/start/").status_code == 403


def test_a_sample_without_an_image_and_a_turn_awaiting_its_response(client, project):
    sample = make_drafted_samples(project, 1, turns=2, awaiting=True)[0]
    sample.image = None
    sample.save()
    Image.objects.filter(project=project).delete()
    (alice,) = make_reviewers(project, "alice")
    client.force_login(alice)
    assignment = claim_one(project, alice)
    html = client.get(review_url(project, assignment)).content.decode()
    assert "This sample has no image." in html
    assert "No response yet: nothing to review on this turn." in html
    answered = Turn.objects.get(sample=sample, index=0)
    decide_all(assignment)
    assert Revision.objects.filter(assignment=assignment).get().turn == answered
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.SUBMITTED
