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
