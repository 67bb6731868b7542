"""A one-time password (a superuser made the account) is good for one thing: choosing one's own.
Until then pages lead to the password page, the API answers 403 and no token is handed out; the
page bounds its fields and refuses the same password; any change of the password ends it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotator.passwords import PASSWORD_MAX
from feedback.models import OneTimePassword, Role
from feedback.projects.service import member_add
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
NEW = "violet-harbour-71-kettle"


@pytest.fixture
def fresh(project) -> tuple[User, str]:
    root = UserFactory.create(username="root", is_superuser=True)
    membership, password = member_add(project=project, actor=root, username="fresh", role=Role.ANNOTATOR, create=True)
    assert password is not None
    return membership.user, password


def logged_in(username: str, password: str) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content[:300]
    return client


def test_a_one_time_password_leads_only_to_the_password_page(fresh):
    user, password = fresh
    assert OneTimePassword.objects.filter(user=user).exists()
    client = logged_in("fresh", password)
    page = client.get("/projects/test/")
    assert page.status_code == 302 and page["Location"] == "/account/password/?next=%2Fprojects%2Ftest%2F"
    api = client.get("/api/projects/")
    assert api.status_code == 403 and api.json()["code"] == "password_change_required"
    token = Client().post("/api/auth/token/", {"username": "fresh", "password": password})
    assert token.status_code == 403 and token.json()["code"] == "password_change_required"
    form = client.get("/account/password/?next=/projects/test/")
    assert form.status_code == 200 and b'id="one-time"' in form.content
    assert client.get("/healthz").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert Client().get("/").status_code == 302  # and signed out, the login page as before


def test_choosing_a_password_ends_it_and_goes_where_the_user_was_going(fresh):
    user, password = fresh
    client = logged_in("fresh", password)
    changed = client.post(
        "/account/password/",
        {"old_password": password, "new_password1": NEW, "new_password2": NEW, "next": "/projects/test/"},
    )
    assert changed.status_code == 302 and changed["Location"] == "/projects/test/"
    assert not OneTimePassword.objects.filter(user=user).exists()
    assert client.get("/").status_code == 200  # the same session goes on
    assert client.get("/api/projects/").status_code == 200
    assert Client().post("/api/auth/token/", {"username": "fresh", "password": NEW}).status_code == 200
    # An address elsewhere is no place to go back to.
    current = NEW
    for elsewhere in ("//elsewhere.example/", "/\\elsewhere.example/", "https://elsewhere.example/"):
        chosen = current + "x"
        again = client.post(
            "/account/password/",
            {"old_password": current, "new_password1": chosen, "new_password2": chosen, "next": elsewhere},
        )
        assert again.status_code == 302 and again["Location"] == "/", elsewhere
        current = chosen


def test_the_password_page_bounds_its_fields_and_refuses_the_same_password(fresh):
    user, password = fresh
    client = logged_in("fresh", password)
    long = "k" * (PASSWORD_MAX + 1)
    for field in ("old_password", "new_password1", "new_password2"):
        data = {"old_password": password, "new_password1": NEW, "new_password2": NEW} | {field: long}
        refused = client.post("/account/password/", data)
        assert refused.status_code == 200
        assert refused.context["form"].errors[field] == [
            f"Ensure this value has at most {PASSWORD_MAX} characters (it has {PASSWORD_MAX + 1})."
        ]
    same = client.post(
        "/account/password/", {"old_password": password, "new_password1": password, "new_password2": password}
    )
    assert same.status_code == 200 and "new_password1" in same.context["form"].errors
    wrong = client.post("/account/password/", {"old_password": "nope", "new_password1": NEW, "new_password2": NEW})
    assert wrong.status_code == 200 and "old_password" in wrong.context["form"].errors
    assert OneTimePassword.objects.filter(user=user).exists()
    assert User.objects.get(pk=user.pk).check_password(password)


def test_a_password_changed_elsewhere_ends_it_too(fresh):
    user, password = fresh
    flagged = logged_in("fresh", password)
    user.set_password(NEW)  # as manage.py changepassword or the admin does
    user.save()
    assert not OneTimePassword.objects.filter(user=user).exists()
    assert flagged.get("/").status_code == 302  # that session ended with the old password
    assert logged_in("fresh", NEW).get("/").status_code == 200


def test_users_with_their_own_password_are_not_held_and_may_change_it(project):
    UserFactory.create(username="ola")
    client = logged_in("ola", "pw-ola")
    assert client.get("/").status_code == 200
    assert b'href="/account/password/"' in client.get("/").content
    changed = client.post(
        "/account/password/",
        {"old_password": "pw-ola", "new_password1": NEW, "new_password2": NEW},
    )
    assert changed.status_code == 302 and changed["Location"] == "/"
    assert User.objects.get(username="ola").check_password(NEW)
