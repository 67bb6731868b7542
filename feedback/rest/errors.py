"""The REST API's one error body, for every refusal of every endpoint::

    {"detail": "budget: must be a non-negative amount of US dollars",
     "code": "invalid",
     "errors": {"budget": ["must be a non-negative amount of US dollars"]}}

``detail`` is one line for people; ``code`` is ``invalid`` (400; ``too_large`` for a 413), ``not_allowed`` (403),
``not_found`` (404), ``conflict`` (409), or DRF's own code (``not_authenticated``, ``throttled``,
``parse_error``…); ``errors`` maps each field at fault (nested ones dotted: ``drafter.model``,
``sample_ids.3``; the input as a whole ``non_field_errors``) to its messages, and is ``{}`` when
no field is at fault. A few conflicts add keys: a stale review save ``conflict: true`` and
``latest`` (the newer revision), a lapsed review lease ``lease_lost: true``.

Set as ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``. An exception that is none of these (a bug) is
not answered here: Django logs it and answers 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import NON_FIELD, InvalidInput, ServiceError, summary


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer (for the schema)."""

    detail = serializers.CharField()
    code = serializers.CharField()
    # Declared fields leave the class (DRF's metaclass collects them), so Serializer.errors stays.
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


def error_body(detail: str, code: str, errors: dict[str, list[str]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "code": code, "errors": errors or {}, **extra}


def flat_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors as ``{"a.b": [messages]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = str(key) if not prefix else (prefix if key == NON_FIELD else f"{prefix}.{key}")
            for field, messages in flat_errors(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(data, list) and any(isinstance(item, dict | list) for item in data):
        for index, item in enumerate(data):
            if item:
                for field, messages in flat_errors(item, f"{prefix}.{index}" if prefix else str(index)).items():
                    out.setdefault(field, []).extend(messages)
    elif isinstance(data, list):
        out[prefix or NON_FIELD] = [str(item) for item in data]
    else:
        out[prefix or NON_FIELD] = [str(data)]
    return out


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        exc = InvalidInput.of(errors)
    if isinstance(exc, ServiceError):
        body = error_body(exc.message if not exc.errors else str(exc), exc.code, exc.errors, **exc.extra)
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flat_errors(response.data)
        response.data = error_body(summary(errors), "invalid", errors)
    elif isinstance(exc, exceptions.APIException):
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        codes = exc.get_codes()
        drf_code = codes if isinstance(codes, str) else "error"
        response.data = error_body(str(detail), "not_allowed" if drf_code == "permission_denied" else drf_code)
    else:  # Django's Http404 / PermissionDenied, which DRF answers itself
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = error_body(str(detail), "not_found" if response.status_code == 404 else "not_allowed")
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler (``handler404``): an address under ``/api/`` that matches no endpoint
    (``/api/projects/x/samples/abc/``) answers the API's error body; any other is Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("No such endpoint.", "not_found"), status=404)
    return page_not_found(request, exception)
