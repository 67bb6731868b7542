"""The pages' side of ``feedback.errors``: a service's refusal that a page view did not turn into a
form error itself. A POST's ``InvalidInput`` or ``Conflict`` becomes an error message and a redirect
back to the page the form was on (or the same address); on a GET it is a 400 or 409 page.
``NotFound`` and ``NotAllowed`` are Django's ``Http404`` and ``PermissionDenied``: Django's own 404
and 403 answer them. Any other exception passes through, to the logs and a 500."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from .errors import Conflict, InvalidInput, ServiceError


class ServiceErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, InvalidInput | Conflict):
            return None
        return service_error_response(request, exc)


def service_error_response(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    if request.method == "POST":
        messages.error(request, str(exc))
        back = request.headers.get("referer", "")
        allowed = url_has_allowed_host_and_scheme(back, {request.get_host()}, require_https=request.is_secure())
        return HttpResponseRedirect(back if back and allowed else request.get_full_path())
    return render(request, "feedback/service_error.html", {"error": exc}, status=exc.status)
