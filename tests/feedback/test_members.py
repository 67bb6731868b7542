"""Members through the three doors: a project's admins add existing users, superusers may also
create one with a one-time password (shown once), roles change, members go; the last admin stays;
a removed annotator's leases go back to the queue and their revisions stay."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from feedback.models import Project, ProjectMembership, Role
from feedback.review.claims import sample_claim
from feedback.review.models import Assignment, Revision
from tests.conftest import make_user, token_client
from tests.factories import MembershipFactory, UserFactory
from tests.feedback.review_helpers import claim_one, decide_all, make_drafted_samples

pytestmark = pytest.mark.django_db


def member(name: str, project: Project, role: str) -> User:
    """A member of ``project`` in ``role`` only (no global group)."""
    user = UserFactory.create(username=name)
    MembershipFactory.create(project=project, user=user, role=role)
    return user


def roles(project: Project) -> dict[str, str]:
    return dict(ProjectMembership.objects.filter(project=project).values_list("user__username", "role"))


@pytest.fixture
def lead(project) -> User:
    return member("lead", project, Role.ADMIN)


# --- who may ------------------------------------------------------------------------------------


def test_admins_change_members_researchers_read_annotators_403_outsiders_404(client, project, lead):
    researcher = member("rex", project, Role.RESEARCHER)
    annotator = member("ann", project, Role.ANNOTATOR)
    outsider = member("olga", Project.objects.create(name="Other", slug="other"), Role.ADMIN)
    UserFactory.create(username="newbie")
    for user, read, write in ((annotator, 403, 403), (researcher, 200, 403), (outsider, 404, 404)):
        api = token_client(user)
        assert api.get("/api/projects/test/members/").status_code == read
        assert api.post("/api/projects/test/members/", {"username": "newbie", "role": "annotator"}).status_code == write
        assert api.patch("/api/projects/test/members/ann/", {"role": "admin"}).status_code == write
        assert api.delete("/api/projects/test/members/lead/").status_code == write
        client.force_login(user)
        assert client.get("/projects/test/members/").status_code == read
        assert client.post("/projects/test/members/", {"username": "newbie", "role": "admin"}).status_code == write
        assert client.post("/projects/test/members/ann/role/", {"role": "admin"}).status_code == write
        assert client.post("/projects/test/members/lead/remove/").status_code == write
    assert roles(project) == {"lead": "admin", "rex": "researcher", "ann": "annotator"}
    client.force_login(researcher)
    page = client.get("/projects/test/members/").content
    assert b'id="member-add-form"' not in page and b"/remove/" not in page
    listed = token_client(researcher).get("/api/projects/test/members/").json()
    expected = [("ann", "annotator"), ("lead", "admin"), ("rex", "researcher")]
    assert [(m["username"], m["role"]) for m in listed] == expected


# --- the API -----------------------------------------------------------------------------------


def test_add_change_and_remove_through_the_api(project, lead):
    UserFactory.create(username="nina")
    api = token_client(lead)
    added = api.post("/api/projects/test/members/", {"username": "nina", "role": "annotator"}, format="json")
    assert added.status_code == 201 and added.json() == {"username": "nina", "role": "annotator", "password": None}
    again = api.post("/api/projects/test/members/", {"username": "nina", "role": "admin"}, format="json")
    assert again.status_code == 409 and "already a member" in again.json()["detail"]
    changed = api.patch("/api/projects/test/members/nina/", {"role": "researcher"}, format="json")
    assert changed.status_code == 200 and changed.json() == {"username": "nina", "role": "researcher", "leases": 0}
    assert api.get("/api/projects/test/members/nina/").json()["role"] == "researcher"
    removed = api.delete("/api/projects/test/members/nina/")
    assert removed.status_code == 200 and removed.json() == {"username": "nina", "released_leases": 0}
    assert api.delete("/api/projects/test/members/nina/").status_code == 404
    assert api.get("/api/projects/test/members/nobody/").status_code == 404
    assert User.objects.filter(username="nina").exists()  # leaving a project deletes no user


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ghost", "role": "annotator"}, "username"),
        ({"username": "u" * 151, "role": "annotator"}, "username"),
        ({"username": "", "role": "annotator"}, "username"),
        ({"username": "lead", "role": "boss"}, "role"),
        ({"role": "annotator"}, "username"),
    ],
)
def test_a_bad_member_is_refused_naming_the_field(project, lead, body, field):
    response = token_client(lead).post("/api/projects/test/members/", body, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == [field], response.json()


def test_superusers_create_a_user_with_a_one_time_password_others_may_not(project, lead):
    group_admin = make_user("boss", role=Role.ADMIN)  # the global admin group: every project, no new users
    new_user = {"username": "fresh", "role": "annotator", "create_user": True}
    for user in (lead, group_admin):
        refused = token_client(user).post("/api/projects/test/members/", new_user, format="json")
        assert refused.status_code == 403
    root = UserFactory.create(username="root", is_superuser=True)
    made = token_client(root).post(
        "/api/projects/test/members/", {"username": "fresh", "role": "annotator", "create_user": True}, format="json"
    )
    assert made.status_code == 201
    password = made.json()["password"]
    assert len(password) >= 12 and User.objects.get(username="fresh").check_password(password)
    assert User.objects.get(username="fresh").password != password  # stored hashed
    assert roles(project)["fresh"] == "annotator"
    assert "password" not in token_client(root).get("/api/projects/test/members/fresh/").json()
    taken = token_client(root).post(
        "/api/projects/test/members/", {"username": "lead", "role": "annotator", "create_user": True}, format="json"
    )
    assert taken.status_code == 400 and "exists already" in taken.json()["errors"]["username"][0]
    odd = token_client(root).post(
        "/api/projects/test/members/", {"username": "a b", "role": "annotator", "create_user": True}, format="json"
    )
    assert odd.status_code == 400 and list(odd.json()["errors"]) == ["username"]


def test_the_last_admin_can_be_neither_removed_nor_demoted(project, lead):
    api = token_client(lead)
    demoted = api.patch("/api/projects/test/members/lead/", {"role": "annotator"}, format="json")
    assert demoted.status_code == 409 and "last admin" in demoted.json()["detail"]
    assert api.delete("/api/projects/test/members/lead/").status_code == 409
    member("second", project, Role.ADMIN)
    assert api.patch("/api/projects/test/members/lead/", {"role": "annotator"}, format="json").status_code == 200
    assert token_client(lead).delete("/api/projects/test/members/second/").status_code == 403  # lead is annotator now
    second = User.objects.get(username="second")
    assert token_client(second).delete("/api/projects/test/members/second/").status_code == 409
    assert roles(project) == {"lead": "annotator", "second": "admin"}


def test_removing_an_annotator_releases_their_leases_and_keeps_their_revisions(project, lead):
    make_drafted_samples(project, 3)
    ann = member("ann", project, Role.ANNOTATOR)
    done = claim_one(project, ann)
    decide_all(done)  # a submitted review, with its revisions
    leased = claim_one(project, ann)
    revisions = Revision.objects.filter(author=ann).count()
    assert revisions >= 1 and Assignment.objects.get(pk=leased.pk).state == Assignment.State.LEASED
    listed = token_client(lead).get("/api/projects/test/members/ann/").json()
    assert listed["leases"] == 1
    response = token_client(lead).delete("/api/projects/test/members/ann/")
    assert response.json() == {"username": "ann", "released_leases": 1}
    released = Assignment.objects.get(pk=leased.pk)
    assert (released.state, released.released_by) == (Assignment.State.RELEASED, lead)
    assert Revision.objects.filter(author=ann).count() == revisions
    assert Assignment.objects.get(pk=done.pk).state == Assignment.State.SUBMITTED
    # The sample is free for someone else, and ann can no longer claim.
    other = member("bob", project, Role.ANNOTATOR)
    assert claim_one(project, other).sample_id == leased.sample_id
    assert token_client(ann).post("/api/projects/test/review/claim/").status_code == 404


def test_a_member_who_may_no_longer_review_gives_their_leases_back(project, lead):
    make_drafted_samples(project, 1)
    ann = member("ann", project, Role.ANNOTATOR)
    leased = claim_one(project, ann)
    token_client(lead).patch("/api/projects/test/members/ann/", {"role": "researcher"}, format="json")
    assert Assignment.objects.get(pk=leased.pk).state == Assignment.State.RELEASED
    assert sample_claim(project=project, reviewer=member("bob", project, Role.ANNOTATOR)) is not None


# --- the pages ----------------------------------------------------------------------------------


def test_the_members_page_adds_changes_and_removes(client, project, lead):
    UserFactory.create(username="nina")
    client.force_login(lead)
    page = client.get("/projects/test/members/").content
    assert b'id="member-add-form"' in page and b'name="create"' not in page  # not a superuser
    added = client.post("/projects/test/members/", {"username": "nina", "role": "annotator"})
    assert added.status_code == 302 and roles(project)["nina"] == "annotator"
    unknown = client.post("/projects/test/members/", {"username": "ghost", "role": "annotator"})
    assert unknown.status_code == 400 and b'id="error-username"' in unknown.content
    twice = client.post("/projects/test/members/", {"username": "nina", "role": "admin"})
    assert twice.status_code == 409 and b"already a member" in twice.content
    assert client.post("/projects/test/members/nina/role/", {"role": "researcher"}).status_code == 302
    assert roles(project)["nina"] == "researcher"
    assert client.post("/projects/test/members/nina/role/", {"role": "boss"}).status_code == 302  # a message
    assert roles(project)["nina"] == "researcher"
    assert client.post("/projects/test/members/nina/remove/").status_code == 302
    assert "nina" not in roles(project)
    last = client.post("/projects/test/members/lead/remove/", HTTP_REFERER="http://testserver/projects/test/members/")
    assert last.status_code == 302 and roles(project) == {"lead": "admin"}
    assert "last admin" in client.get("/projects/test/members/").content.decode()


def test_a_superuser_sees_a_new_users_password_once_and_never_in_a_cookie(client, project):
    root = UserFactory.create(username="root", is_superuser=True)
    client.force_login(root)
    response = client.post("/projects/test/members/", {"username": "fresh", "role": "annotator", "create": "on"})
    assert response.status_code == 200 and b'id="one-time-password"' in response.content
    html = response.content.decode()
    password = html.split("<code>")[1].split("</code>")[0]
    assert User.objects.get(username="fresh").check_password(password)
    assert all(password not in morsel.value for morsel in response.cookies.values())
    assert password not in client.get("/projects/test/members/").content.decode()


# --- the command --------------------------------------------------------------------------------


def test_project_member_command_adds_changes_creates_and_removes(project, capsys):
    UserFactory.create(username="nina")
    call_command("project_member", "--project=test", "--user=nina", "--role=annotator")
    call_command("project_member", "--project=test", "--user=nina", "--role=admin")
    assert roles(project) == {"nina": "admin"}
    call_command("project_member", "--project=test", "--user=fresh", "--role=researcher", "--create")
    out = capsys.readouterr().out
    password = out.split("(shown only now): ")[1].split()[0]
    assert User.objects.get(username="fresh").check_password(password)
    assert roles(project) == {"nina": "admin", "fresh": "researcher"}
    call_command("project_member", "--project=test", "--user=fresh", "--role=remove")
    assert roles(project) == {"nina": "admin"}
    with pytest.raises(CommandError, match=r"^nina is the project's last admin"):
        call_command("project_member", "--project=test", "--user=nina", "--role=remove")
    with pytest.raises(CommandError, match=r"^username: no user named 'ghost'"):
        call_command("project_member", "--project=test", "--user=ghost", "--role=annotator")
    with pytest.raises(CommandError, match=r"^user: No such member"):
        call_command("project_member", "--project=test", "--user=ghost", "--role=remove")
    with pytest.raises(CommandError, match=r"^username: at most 150"):
        call_command("project_member", "--project=test", "--user=" + "u" * 151, "--role=annotator")
    with pytest.raises(CommandError, match=r"^project: no project"):
        call_command("project_member", "--project=nowhere", "--user=nina", "--role=annotator")


def test_project_member_command_releases_a_removed_annotators_leases(project):
    make_drafted_samples(project, 1)
    ann = member("ann", project, Role.ANNOTATOR)
    leased = claim_one(project, ann)
    call_command("project_member", "--project=test", "--user=ann", "--role=remove")
    assert Assignment.objects.get(pk=leased.pk).state == Assignment.State.RELEASED


def test_the_members_list_runs_the_same_queries_whatever_the_number_of_members(client, project, lead):
    client.force_login(lead)
    api = token_client(lead)

    def counts() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            assert client.get("/projects/test/members/").status_code == 200
        with CaptureQueriesContext(connection) as listed:
            assert api.get("/api/projects/test/members/").status_code == 200
        return len(page), len(listed)

    few = counts()
    for n in range(20):
        member(f"extra{n}", project, Role.ANNOTATOR)
    assert counts() == few
