"""The login lockout: wrong passwords are counted per user name and client address.

``ANNOTATOR_LOGIN_FAILURE_LIMIT`` failures lock the pair out for ``ANNOTATOR_LOGIN_COOLOFF_MINUTES``
on every login over HTTP (the login page, the admin's, the token endpoint); a successful login
starts the count over. Locked out, the API answers 429 with a JSON detail, the browser a page.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def client_address(request: HttpRequest) -> str:
    """The client's address: the connection's, or behind ``ANNOTATOR_PROXY_COUNT`` proxies the one
    the outermost of them put in X-Forwarded-For (as DRF's throttles take it with ``NUM_PROXIES``)."""
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not settings.PROXY_COUNT or not forwarded:
        return remote
    addresses = [address.strip() for address in forwarded.split(",")]
    return addresses[-min(settings.PROXY_COUNT, len(addresses))]


class LockoutBackend(AxesStandaloneBackend):
    """Refuses locked-out user name and address pairs before any password is checked.

    Every login over HTTP (the login page, the admin's, the token endpoint) passes the request;
    ``authenticate()`` called in code without one (the test client's ``login()``) has no address
    to count against, and is let through to the password check."""

    def authenticate(self, request, username=None, password=None, **kwargs: Any):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_message() -> str:
    cool_off = get_cool_off()
    minutes = int(cool_off.total_seconds() // 60) if cool_off else 0
    return (
        f"Too many failed logins for this user from this address: try again in {minutes} minutes."
        if minutes
        else "Too many failed logins for this user from this address: ask an administrator to unlock it."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """What a locked-out login gets: JSON for the API, a page for the browser (429 both)."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": lockout_message()}, status=429)
    return render(request, "registration/locked_out.html", {"message": lockout_message()}, status=429)
