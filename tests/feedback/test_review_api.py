"""The review API: claim, the review page, saves with version checks, typing, lease actions,
history, leases; roles; CSRF on session calls; the OpenAPI document; fixed query counts."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

from feedback.drafting.models import CallStatus
from feedback.models import Image, Project, Role, Sample, Turn
from feedback.review.models import Assignment, Revision, WorkingCopy
from tests.conftest import make_user, token_client
from tests.factories import SampleFactory

pytestmark = pytest.mark.django_db

SCORES = {"helpfulness": 5, "honesty": 6, "harmlessness": 7}


# --- fixtures, kept here (no shared review helpers) -------------------------------------------


class ReviewSampleFactory(SampleFactory):
    """A sample (no picture unless given) whose answered turns each have one failed draft that must
    never show, then ``turns__drafts`` (1) successful drafts, oldest first."""

    image = None
    reference_answer = "A red bus."
    source_dataset = "test-set"
    turns__follow_up = "And then ({index})?"
    turns__answer = "A bus ({external_id}, turn {index})."
    turns__drafts = 1
    turns__drafts__failed_first = True
    turns__drafts__critique = "Draft {n}: the answer names the bus but not its colour."
    turns__drafts__refinement = "A red double-decker bus."
    turns__drafts__simulated = True


def make_assignment(sample: Sample, reviewer, *, lane: int = 1, state: str = Assignment.State.LEASED) -> Assignment:
    now = timezone.now()
    return Assignment.objects.create(
        project=sample.project,
        sample=sample,
        reviewer=reviewer,
        lane=lane,
        state=state,
        claimed_at=now,
        expires_at=now + timedelta(minutes=15),
    )


def add_revisions(assignment: Assignment, turn: Turn, count: int) -> list[Revision]:
    return [
        Revision.objects.create(
            assignment=assignment,
            turn=turn,
            version=version,
            author=assignment.reviewer,
            draft=turn.drafts.exclude(status=CallStatus.FAILED).last(),
            decision="edited",
            critique=f"Version {version} of {assignment.reviewer}.",
            scores=SCORES,
        )
        for version in range(1, count + 1)
    ]


def base(slug: str = "test") -> str:
    return f"/api/projects/{slug}/review/"


def assignment_url(pk: int, rest: str = "", slug: str = "test") -> str:
    return f"{base(slug)}assignments/{pk}/{rest}"


def save(client, assignment_id: int, turn_id: int, **body):
    return client.post(assignment_url(assignment_id, f"turns/{turn_id}/revisions/"), body, format="json")


@pytest.fixture
def other_annotator(project) -> User:
    return make_user("bea", project=project, role=Role.ANNOTATOR)


@pytest.fixture
def outsider(db) -> User:
    return make_user("olga")


# --- the whole review, step by step ------------------------------------------------------------


def test_review_flow_through_the_api(project, annotator_user, admin_user):
    image = Image.objects.create(project=project, file_name="bus.jpg", file="images/bus.jpg", sha256="a" * 64)
    first = ReviewSampleFactory.create(project=project, external_id="a", turns=2, turns__drafts=2, image=image)
    second = ReviewSampleFactory.create(project=project, external_id="b")
    third = ReviewSampleFactory.create(project=project, external_id="c")
    ann = token_client(annotator_user)
    ada = token_client(admin_user)

    # Claim: the first sample, with its page.
    claimed = ann.post(base() + "claim/")
    assert claimed.status_code == 200
    page = claimed.json()
    assert page["sample"]["id"] == first.pk
    assert (page["state"], page["reviewer"], page["lane"]) == ("leased", "ann", 1)
    assert page["sample"]["image"]["url"] == f"/images/{image.pk}/file"
    assert page["sample"]["image"]["missing"] is False
    assert page["sample"]["source_dataset"] == "test-set"
    assignment_id = page["id"]
    turn0, turn1 = page["turns"]
    assert turn0["reviewable"] is True
    assert turn0["draft"]["critique"].startswith("Draft 1")  # the latest successful draft
    assert turn0["draft"]["simulated"] is True
    assert (turn0["base_version"], turn0["latest"], turn0["working_copy"]) == (0, None, None)
    # Claiming again while leased answers the same lease.
    assert ann.post(base() + "claim/").json()["id"] == assignment_id

    # The page, read again.
    detail = ann.get(assignment_url(assignment_id))
    assert detail.status_code == 200
    assert detail.json() == page

    # A save: version 1.
    response = save(
        ann,
        assignment_id,
        turn0["id"],
        base_version=0,
        decision="edited",
        critique="The answer names the bus but misses that it is red.",
        refinement="A red bus.",
        scores=SCORES,
        time_spent_ms=1200,
        draft=turn0["draft"]["id"],
    )
    assert response.status_code == 201, response.json()
    saved = response.json()
    assert saved["completed"] is False
    revision = saved["revision"]
    assert (revision["version"], revision["author"], revision["decision"]) == (1, "ann", "edited")
    assert (revision["turn"], revision["assignment"], revision["draft"]) == (
        turn0["id"],
        assignment_id,
        turn0["draft"]["id"],
    )
    assert revision["scores"] == SCORES
    assert revision["time_spent_ms"] == 1200

    # A save based on version 0 again is stale: 409 with the revision saved in the meantime.
    stale = save(ann, assignment_id, turn0["id"], base_version=0, decision="edited", critique="Mine.", scores=SCORES)
    assert stale.status_code == 409
    assert stale.json()["conflict"] is True
    assert stale.json()["latest"]["id"] == revision["id"]
    assert stale.json()["latest"]["version"] == 1
    assert "detail" in stale.json()

    # Typing on the second turn is kept.
    typed = ann.put(
        assignment_url(assignment_id, f"turns/{turn1['id']}/working-copy/"),
        {"fields": {"critique": "Half a thought ", "scores": {"honesty": 3}}, "base_version": 0},
        format="json",
    )
    assert typed.status_code == 200
    assert typed.json()["updated_at"]
    page = ann.get(assignment_url(assignment_id)).json()
    assert page["turns"][0]["base_version"] == 1
    assert page["turns"][0]["latest"]["id"] == revision["id"]
    assert page["turns"][1]["working_copy"]["fields"] == {"critique": "Half a thought ", "scores": {"honesty": 3}}
    assert page["turns"][1]["working_copy"]["base_version"] == 0

    # Renew, then skip: the sample goes to the back of ann's queue.
    renewed = ann.post(assignment_url(assignment_id, "renew/"))
    assert renewed.status_code == 200
    assert renewed.json()["state"] == "leased"
    assert datetime.fromisoformat(renewed.json()["expires_at"]) >= datetime.fromisoformat(page["expires_at"])
    skipped = ann.post(assignment_url(assignment_id, "skip/"))
    assert skipped.status_code == 200
    assert skipped.json() == {"id": assignment_id, "state": "skipped"}
    # Skipping again: the assignment is no longer leased (NotAllowed, answered 403).
    assert ann.post(assignment_url(assignment_id, "skip/")).status_code == 403

    # The next claim is the second sample: flag it.
    page = ann.post(base() + "claim/").json()
    assert page["sample"]["id"] == second.pk
    flagged = ann.post(assignment_url(page["id"], "flag/"), {"flag": "bad_image", "note": "All black."}, format="json")
    assert flagged.status_code == 200
    assert flagged.json() == {"id": page["id"], "state": "submitted", "flag": "bad_image"}
    assert Assignment.objects.get(pk=page["id"]).flag_note == "All black."

    # The third sample is released by an admin.
    page = ann.post(base() + "claim/").json()
    assert page["sample"]["id"] == third.pk
    leases = ada.get(base() + "leases/")
    assert leases.status_code == 200
    assert [(lease["id"], lease["reviewer"], lease["sample"], lease["external_id"]) for lease in leases.json()] == [
        (page["id"], "ann", third.pk, "c")
    ]
    released = ada.post(assignment_url(page["id"], "release/"))
    assert released.status_code == 200
    assert released.json() == {"id": page["id"], "state": "released"}
    assert Assignment.objects.get(pk=page["id"]).released_by == admin_user
    assert ada.get(base() + "leases/").json() == []

    # Nothing fresh is left: the skipped sample comes back, with the typing kept.
    page = ann.post(base() + "claim/").json()
    assert page["sample"]["id"] == first.pk
    assert page["id"] != assignment_id
    turn0, turn1 = page["turns"]
    assert turn1["working_copy"]["fields"]["critique"] == "Half a thought "
    assert turn0["base_version"] == 0  # a new review, with a chain of its own
    response = save(ann, page["id"], turn0["id"], base_version=0, decision="accepted")
    assert response.status_code == 201
    assert response.json()["completed"] is False
    response = save(
        ann,
        page["id"],
        turn1["id"],
        base_version=0,
        decision="rejected",
        reason="It answers another question.",
        critique="Off.",
    )
    assert response.status_code == 201
    assert response.json()["completed"] is True
    assert Assignment.objects.get(pk=page["id"]).state == "submitted"

    # The history of the first turn: ann's two reviews, each diffed against its draft.
    history = ann.get(f"/api/projects/test/turns/{turn0['id']}/revisions/")
    assert history.status_code == 200
    entries = history.json()
    assert [e["revision"]["assignment"] for e in entries] == [assignment_id, page["id"]]
    edited = entries[0]
    assert ["del", "not"] in edited["critique_diff"]
    assert ["ins", "misses"] in edited["critique_diff"]
    assert ["same", " answer names the bus but "] in edited["critique_diff"]
    assert edited["refinement_diff"] == [["same", "A red "], ["del", "double-decker "], ["same", "bus."]]
    assert ["helpfulness", 4, 5] in edited["score_changes"]
    assert entries[1]["revision"]["decision"] == "accepted"
    assert entries[1]["critique_diff"] == [["same", turn0["draft"]["critique"]]]
    assert entries[1]["score_changes"] == []


def test_admin_may_read_and_save_on_a_reviewers_assignment_but_not_renew_skip_or_flag(
    project, annotator_user, admin_user
):
    ReviewSampleFactory.create(project=project, external_id="a", turns=2)
    page = token_client(annotator_user).post(base() + "claim/").json()
    ada = token_client(admin_user)
    assert ada.get(assignment_url(page["id"])).status_code == 200
    turn_id = page["turns"][0]["id"]
    saved = save(ada, page["id"], turn_id, base_version=0, decision="edited", critique="Admin's fix.", scores=SCORES)
    assert saved.status_code == 201
    assert saved.json()["revision"]["author"] == "ada"
    for action in ("renew/", "skip/"):
        response = ada.post(assignment_url(page["id"], action))
        assert response.status_code == 403, action
        assert response.json()["detail"]
    assert ada.post(assignment_url(page["id"], "flag/"), {"flag": "off_topic"}, format="json").status_code == 403
    assert Assignment.objects.get(pk=page["id"]).state == "leased"


def test_researchers_get_403_and_outsiders_404(project, annotator_user, researcher_user, outsider):
    ReviewSampleFactory.create(project=project, external_id="a")
    page = token_client(annotator_user).post(base() + "claim/").json()
    turn_id = page["turns"][0]["id"]
    rex = token_client(researcher_user)
    assert rex.post(base() + "claim/").status_code == 403
    assert rex.get(assignment_url(page["id"])).status_code == 403
    assert save(rex, page["id"], turn_id, base_version=0, decision="accepted").status_code == 403
    assert rex.get(base() + "leases/").status_code == 403
    olga = token_client(outsider)
    assert olga.post(base() + "claim/").status_code == 404
    assert olga.get(assignment_url(page["id"])).status_code == 404
    assert olga.get(f"/api/projects/test/turns/{turn_id}/revisions/").status_code == 404
    assert olga.get(f"/api/projects/test/samples/{page['sample']['id']}/").status_code == 404
    # Researchers read the history (all of it); annotators cannot list leases.
    assert rex.get(f"/api/projects/test/turns/{turn_id}/revisions/").status_code == 200
    assert token_client(annotator_user).get(base() + "leases/").status_code == 403


def test_another_annotators_assignment_does_not_exist_for_them(client, project, annotator_user, other_annotator):
    """Another reviewer's assignment is 404 in the API as on the review page (it was 403 here)."""
    ReviewSampleFactory.create(project=project, external_id="a")
    page = token_client(annotator_user).post(base() + "claim/").json()
    turn_id = page["turns"][0]["id"]
    bea = token_client(other_annotator)
    refused = bea.get(assignment_url(page["id"]))
    assert refused.status_code == 404
    assert refused.json() == {"detail": "No such assignment.", "code": "not_found", "errors": {}}
    client.force_login(other_annotator)
    assert client.get(f"/projects/test/review/{page['id']}/").status_code == 404
    assert save(bea, page["id"], turn_id, base_version=0, decision="accepted").status_code == 404
    for action in ("renew/", "skip/", "release/"):
        assert bea.post(assignment_url(page["id"], action)).status_code == 404, action
    typed = bea.put(
        assignment_url(page["id"], f"turns/{turn_id}/working-copy/"),
        {"fields": {"critique": "x"}, "base_version": 0},
        format="json",
    )
    assert typed.status_code == 404
    assert not WorkingCopy.objects.exists()
    assert bea.get(assignment_url(999_999)).status_code == 404


def test_claim_answers_204_when_nothing_is_left(project, annotator_user, other_annotator):
    ann = token_client(annotator_user)
    response = ann.post(base() + "claim/")
    assert response.status_code == 204
    assert response.content == b""
    ReviewSampleFactory.create(project=project, external_id="a")
    assert ann.post(base() + "claim/").status_code == 200
    # One review per sample, and ann holds it.
    assert token_client(other_annotator).post(base() + "claim/").status_code == 204


def test_invalid_saves_answer_400_naming_the_field(project, annotator_user):
    ReviewSampleFactory.create(project=project, external_id="a")
    page = token_client(annotator_user).post(base() + "claim/").json()
    ann = token_client(annotator_user)
    turn_id = page["turns"][0]["id"]
    out_of_scale = save(
        ann, page["id"], turn_id, base_version=0, decision="edited", critique="Fine.", scores={**SCORES, "honesty": 9}
    )
    assert out_of_scale.status_code == 400
    assert list(out_of_scale.json()["errors"]) == ["scores"]
    assert "honesty" in out_of_scale.json()["errors"]["scores"][0]
    assert "outside 1 to 7" in out_of_scale.json()["errors"]["scores"][0]
    not_a_criterion = save(
        ann, page["id"], turn_id, base_version=0, decision="edited", critique="Fine.", scores={**SCORES, "wit": 3}
    )
    assert "scores" in not_a_criterion.json()["errors"]
    no_reason = save(ann, page["id"], turn_id, base_version=0, decision="rejected")
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["errors"]
    bad_decision = save(ann, page["id"], turn_id, base_version=0, decision="maybe")
    assert bad_decision.status_code == 400
    assert "decision" in bad_decision.json()["errors"]
    no_base = save(ann, page["id"], turn_id, decision="accepted")
    assert no_base.status_code == 400
    assert "base_version" in no_base.json()["errors"]
    ahead = save(ann, page["id"], turn_id, base_version=3, decision="accepted")
    assert ahead.status_code == 400
    assert "base_version" in ahead.json()["errors"]
    bad_flag = ann.post(assignment_url(page["id"], "flag/"), {"flag": "boring"}, format="json")
    assert bad_flag.status_code == 400
    assert "flag" in bad_flag.json()["errors"]
    assert not Revision.objects.exists()


def test_a_turn_of_another_project_is_not_found(project, annotator_user):
    ReviewSampleFactory.create(project=project, external_id="a")
    other = Project.objects.create(name="Other", slug="other")
    foreign = ReviewSampleFactory.create(project=other, external_id="z").turns.get()
    page = token_client(annotator_user).post(base() + "claim/").json()
    response = save(token_client(annotator_user), page["id"], foreign.pk, base_version=0, decision="accepted")
    assert response.status_code == 404


def test_renewing_a_lapsed_lease_taken_by_another_answers_409(project, annotator_user, other_annotator):
    ReviewSampleFactory.create(project=project, external_id="a")
    page = token_client(annotator_user).post(base() + "claim/").json()
    Assignment.objects.filter(pk=page["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert token_client(other_annotator).post(base() + "claim/").status_code == 200
    response = token_client(annotator_user).post(assignment_url(page["id"], "renew/"))
    assert response.status_code == 409
    assert response.json()["lease_lost"] is True
    assert response.json()["detail"]


def test_annotators_see_their_own_history_admins_everyones(project, annotator_user, other_annotator, admin_user):
    sample = ReviewSampleFactory.create(project=project, external_id="a")
    turn = sample.turns.get()
    add_revisions(make_assignment(sample, annotator_user, lane=1, state="submitted"), turn, 2)
    add_revisions(make_assignment(sample, other_annotator, lane=2, state="submitted"), turn, 1)
    url = f"/api/projects/test/turns/{turn.pk}/revisions/"
    mine = token_client(annotator_user).get(url).json()
    assert [(e["revision"]["author"], e["revision"]["version"]) for e in mine] == [("ann", 1), ("ann", 2)]
    assert ["del", "1"] in mine[1]["critique_diff"] and ["ins", "2"] in mine[1]["critique_diff"]
    everyone = token_client(admin_user).get(url).json()
    assert sorted(e["revision"]["author"] for e in everyone) == ["ann", "ann", "bea"]
    assert token_client(annotator_user).get("/api/projects/test/turns/999999/revisions/").status_code == 404


def test_sample_detail_has_drafts_and_revisions_for_those_who_may_see_them(
    project, annotator_user, researcher_user, admin_user
):
    image = Image.objects.create(project=project, file_name="gone.jpg")
    sample = ReviewSampleFactory.create(project=project, external_id="a", turns=2, turns__drafts=2, image=image)
    turn = sample.turns.first()
    assert turn is not None
    add_revisions(make_assignment(sample, annotator_user, state="submitted"), turn, 1)
    url = f"/api/projects/test/samples/{sample.pk}/"

    as_annotator = token_client(annotator_user).get(url)
    assert as_annotator.status_code == 200
    data = as_annotator.json()
    assert data["external_id"] == "a"
    assert data["image"]["missing"] is True
    assert data["image"]["url"] is None
    assert [t["index"] for t in data["turns"]] == [0, 1]
    assert [len(t["drafts"]) for t in data["turns"]] == [2, 2]  # the failed draft is left out
    assert all(t["revisions"] is None for t in data["turns"])

    for user in (researcher_user, admin_user):
        data = token_client(user).get(url).json()
        assert [len(t["revisions"]) for t in data["turns"]] == [1, 0]
        assert data["turns"][0]["revisions"][0]["author"] == "ann"
    assert token_client(annotator_user).get("/api/projects/test/samples/999999/").status_code == 404


# --- authentication -------------------------------------------------------------------------


def test_session_calls_need_the_csrf_header(project, annotator_user):
    ReviewSampleFactory.create(project=project, external_id="a")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(annotator_user)
    refused = client.post(base() + "claim/")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Assignment.objects.exists()

    secret = get_random_string(32)
    client.cookies["csrftoken"] = secret
    claimed = client.post(base() + "claim/", HTTP_X_CSRFTOKEN=secret)
    assert claimed.status_code == 200
    # Reads need no CSRF header.
    assert client.get(assignment_url(claimed.json()["id"])).status_code == 200


def test_review_endpoints_need_authentication(project):
    assert APIClient().post(base() + "claim/").status_code == 401
    assert APIClient().get(assignment_url(1)).status_code == 401


# --- the OpenAPI document -------------------------------------------------------------------


def test_schema_documents_the_review_endpoints(annotator_user):
    assert APIClient().get("/api/schema/").status_code == 401
    response = token_client(annotator_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Feedback annotator API"
    paths = document["paths"]
    claim = paths["/api/projects/{slug}/review/claim/"]["post"]
    assert {"200", "204", "403", "404"} <= set(claim["responses"])
    save_op = paths["/api/projects/{slug}/review/assignments/{id}/turns/{turn_id}/revisions/"]["post"]
    assert {"201", "400", "403", "409"} <= set(save_op["responses"])
    for path in (
        "/api/projects/{slug}/review/assignments/{id}/",
        "/api/projects/{slug}/review/assignments/{id}/renew/",
        "/api/projects/{slug}/review/assignments/{id}/skip/",
        "/api/projects/{slug}/review/assignments/{id}/release/",
        "/api/projects/{slug}/review/assignments/{id}/flag/",
        "/api/projects/{slug}/review/assignments/{id}/turns/{turn_id}/working-copy/",
        "/api/projects/{slug}/review/leases/",
        "/api/projects/{slug}/turns/{turn_id}/revisions/",
        "/api/projects/{slug}/samples/{id}/",
    ):
        assert path in paths, path
    assert "AssignmentDetail" in document["components"]["schemas"]


def test_the_whole_schema_validates_without_warnings(tmp_path):
    """Every endpoint, not only review's, is described well enough for a client generator."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/projects/{slug}/jobs/{id}/{action}/" in (tmp_path / "schema.yml").read_text()


# --- queries --------------------------------------------------------------------------------


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url)
    assert response.status_code == 200
    return len(context.captured_queries)


def test_assignment_page_queries_do_not_grow_with_turns_drafts_and_revisions(
    project, annotator_user, other_annotator, admin_user
):
    image = Image.objects.create(project=project, file_name="bus.jpg", file="images/bus.jpg", sha256="b" * 64)
    small = ReviewSampleFactory.create(project=project, external_id="small", turns=1, turns__drafts=1, image=image)
    big = ReviewSampleFactory.create(
        project=project, external_id="big", turns=6, turns__drafts=3, turns__awaiting_last=True, image=image
    )
    small_assignment = make_assignment(small, annotator_user)
    big_assignment = make_assignment(big, annotator_user)
    rival = make_assignment(big, other_annotator, lane=2)
    for turn in big.turns.exclude(model_response=None):
        add_revisions(big_assignment, turn, 3)
        add_revisions(rival, turn, 2)
        WorkingCopy.objects.create(assignment=big_assignment, turn=turn, fields={"critique": "typing"})

    ann = token_client(annotator_user)
    ada = token_client(admin_user)
    small_url, big_url = assignment_url(small_assignment.pk), assignment_url(big_assignment.pk)
    ann.get(small_url)  # warm up once
    ada.get(big_url)  # revisions written around the service get their diffs stored on the first view
    assert _queries(ann, small_url) == _queries(ann, big_url)
    assert _queries(ada, small_url) == _queries(ada, big_url)

    page = ann.get(big_url).json()
    assert len(page["turns"]) == 6
    assert page["turns"][-1]["reviewable"] is False
    assert page["turns"][-1]["draft"] is None
    assert [t["base_version"] for t in page["turns"]] == [3, 3, 3, 3, 3, 0]
    assert page["turns"][0]["latest"]["author"] == "ann"
    assert page["turns"][0]["working_copy"]["fields"] == {"critique": "typing"}
