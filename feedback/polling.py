"""Pages that follow work in progress (a job, an import, a release, the list of releases).

Each such page includes a partial template whose root element, while the work goes on, carries
``hx-get`` (its own URL) and ``hx-trigger="every <PAGE_POLL_SECONDS>"``: htmx fetches the page
again with ``HX-Request: true`` and the view answers with the partial alone, which replaces the old
one. Rendered for finished work the partial has no trigger, so the polling stops. htmx keeps
polling through network errors and error responses (it swaps nothing for those).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect


def render_polled(
    request: HttpRequest, page_template: str, partial_template: str, context: dict, *, polling: bool
) -> HttpResponse:
    """The whole page, or for htmx's refresh only its partial; ``polling`` is whether the work goes on."""
    context = {**context, "polling": polling, "poll_ms": round(settings.PAGE_POLL_SECONDS * 1000)}
    partial = bool(getattr(request, "htmx", False))  # django_htmx.middleware.HtmxMiddleware
    response = render(request, partial_template if partial else page_template, context)
    # One URL, two bodies: caches (the browser's back button too) must tell them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


class HtmxRedirectMiddleware:
    """A refresh answered with a redirect (a session that ended: to the login page) sends the whole
    browser there, rather than letting htmx follow it and swap the login page into the live part.
    Placed above the middleware that may redirect (LoginRequiredMiddleware), so it sees their answers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.headers.get("HX-Request") == "true" and response.status_code in (301, 302, 303, 307, 308):
            return HttpResponseClientRedirect(response["Location"])  # 200 with HX-Redirect: htmx navigates
        return response
