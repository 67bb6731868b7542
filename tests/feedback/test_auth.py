"""Signing in over real HTTP (Django's live server): the login lockout on the page and the token
endpoint, the token endpoint's throttle, and tokens that expire and die with a password change."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from tests.conftest import make_user
from tests.http_helpers import Browser, call, post_json

LIMIT = 10  # ANNOTATOR_LOGIN_FAILURE_LIMIT's default
TOKEN_RATE = 20  # ANNOTATOR_TOKEN_RATE's default, per minute


@pytest.fixture(autouse=True)
def fresh_throttles():
    cache.clear()  # the token endpoint's throttle counts live in the cache
    yield
    cache.clear()


def token_for(base: str, username: str, password: str):
    return post_json(base + "/api/auth/token/", {"username": username, "password": password})


def projects(base: str, token: str):
    return call("GET", base + "/api/projects/", headers={"Authorization": f"Token {token}"})


# The lockout ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_login_page_locks_a_user_out_after_the_failure_limit(live_server):
    make_user("ann")
    make_user("bob")
    browser = Browser(live_server.url)
    for _ in range(LIMIT - 1):
        reply = browser.log_in("ann", "wrong")
        assert reply.status == 200 and b"did not match" in reply.body
    reply = browser.log_in("ann", "wrong")
    assert reply.status == 429
    # Locked out, even the right password is refused, with a page that says why and for how long.
    reply = browser.log_in("ann", "pw-ann")
    assert reply.status == 429
    assert b"Too many failed logins for this user from this address: try again in 15 minutes." in reply.body
    assert b"<h1>Login locked</h1>" in reply.body
    # Another user at the same address is not locked out.
    reply = Browser(live_server.url).log_in("bob", "pw-bob")
    assert reply.status == 302


@pytest.mark.django_db(transaction=True)
def test_a_successful_login_starts_the_count_over(live_server):
    make_user("ann")
    browser = Browser(live_server.url)
    for _ in range(LIMIT - 1):
        browser.log_in("ann", "wrong")
    assert browser.log_in("ann", "pw-ann").status == 302
    for _ in range(LIMIT - 1):
        assert Browser(live_server.url).log_in("ann", "wrong").status == 200
    assert Browser(live_server.url).log_in("ann", "pw-ann").status == 302


@pytest.mark.django_db(transaction=True)
def test_the_token_endpoint_locks_a_user_out_with_a_json_429(live_server):
    make_user("ann")
    for _ in range(LIMIT - 1):
        assert token_for(live_server.url, "ann", "wrong").status == 400
    reply = token_for(live_server.url, "ann", "wrong")
    assert reply.status == 429
    reply = token_for(live_server.url, "ann", "pw-ann")
    assert reply.status == 429
    assert reply.json() == {
        "detail": "Too many failed logins for this user from this address: try again in 15 minutes."
    }
    # The page and the API share the count: the login page is locked for ann too.
    assert Browser(live_server.url).log_in("ann", "pw-ann").status == 429


@pytest.mark.django_db(transaction=True)
def test_the_token_endpoint_is_throttled_per_address(live_server):
    make_user("ann")
    for _ in range(TOKEN_RATE):
        assert token_for(live_server.url, "ann", "pw-ann").status == 200
    reply = token_for(live_server.url, "ann", "pw-ann")
    assert reply.status == 429
    assert "throttled" in reply.json()["detail"]


# Tokens ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_expired_token_is_refused_and_a_fresh_one_issued(live_server):
    make_user("ann")
    key = token_for(live_server.url, "ann", "pw-ann").json()["token"]
    assert projects(live_server.url, key).status == 200
    # 720 hours (the default) and a minute ago.
    Token.objects.filter(key=key).update(created=Token.objects.get(key=key).created - timedelta(hours=720, minutes=1))
    reply = projects(live_server.url, key)
    assert reply.status == 401
    assert reply.json()["detail"] == "Token expired: obtain a new one from /api/auth/token/."
    fresh = token_for(live_server.url, "ann", "pw-ann").json()["token"]
    assert fresh != key
    assert projects(live_server.url, fresh).status == 200
    assert projects(live_server.url, key).status == 401


@pytest.mark.django_db(transaction=True)
def test_a_token_within_its_lifetime_is_handed_out_again(live_server):
    make_user("ann")
    key = token_for(live_server.url, "ann", "pw-ann").json()["token"]
    Token.objects.filter(key=key).update(created=Token.objects.get(key=key).created - timedelta(hours=719))
    assert token_for(live_server.url, "ann", "pw-ann").json()["token"] == key
    assert projects(live_server.url, key).status == 200


@pytest.mark.django_db(transaction=True)
def test_a_ttl_of_zero_means_tokens_never_expire(live_server, settings):
    settings.TOKEN_TTL_HOURS = 0
    make_user("ann")
    key = token_for(live_server.url, "ann", "pw-ann").json()["token"]
    Token.objects.filter(key=key).update(created=Token.objects.get(key=key).created - timedelta(days=3650))
    assert projects(live_server.url, key).status == 200


@pytest.mark.django_db(transaction=True)
def test_a_password_change_ends_the_old_token(live_server):
    make_user("ann")
    key = token_for(live_server.url, "ann", "pw-ann").json()["token"]
    assert projects(live_server.url, key).status == 200

    user = User.objects.get(username="ann")
    user.last_name = "Other"
    user.save()  # a save that leaves the password alone leaves the token alone
    assert projects(live_server.url, key).status == 200

    user.set_password("a-new-long-password")
    user.save()
    assert projects(live_server.url, key).status == 401
    assert token_for(live_server.url, "ann", "pw-ann").status == 400
    fresh = token_for(live_server.url, "ann", "a-new-long-password").json()["token"]
    assert fresh != key and projects(live_server.url, fresh).status == 200


@pytest.mark.django_db(transaction=True)
def test_a_password_changed_on_the_password_page_ends_the_old_token(live_server):
    make_user("ada", is_staff=True, is_superuser=True)
    key = token_for(live_server.url, "ada", "pw-ada").json()["token"]
    browser = Browser(live_server.url)
    assert browser.log_in("ada", "pw-ada").status == 302
    browser.request("/admin/password_change/")
    form = {
        "old_password": "pw-ada",
        "new_password1": "a-new-long-password",
        "new_password2": "a-new-long-password",
        "csrfmiddlewaretoken": browser.csrf(),
    }
    assert browser.request("/admin/password_change/", form).status == 302
    assert projects(live_server.url, key).status == 401


@pytest.mark.django_db(transaction=True)
def test_behind_a_proxy_the_lockout_counts_the_address_the_proxy_forwarded(live_server, settings):
    settings.PROXY_COUNT = 1
    make_user("ann")

    def token_from(forwarded_for: str, password: str):
        body = json.dumps({"username": "ann", "password": password}).encode()
        headers = {"Content-Type": "application/json", "X-Forwarded-For": forwarded_for}
        return call("POST", live_server.url + "/api/auth/token/", body, headers)

    for _ in range(LIMIT):
        token_from("198.51.100.7, 203.0.113.5", "wrong")
    # What the client itself wrote into the header (the left part) changes nothing.
    assert token_from("192.0.2.1, 203.0.113.5", "pw-ann").status == 429
    assert token_from("203.0.113.5", "pw-ann").status == 429
    # Another client behind the same proxy is not locked out.
    assert token_from("203.0.113.6", "pw-ann").status == 200
