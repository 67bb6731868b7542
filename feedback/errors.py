"""The services' refusals, one small hierarchy for every app (this module imports no other app).

- ``InvalidInput``: the input is wrong; names the field(s) at fault → 400;
- ``TooLarge``: an input past its size limit, naming the field → 413;
- ``NotAllowed``: the user may not do this → 403;
- ``Conflict``: the object's state refuses the action (a job already finished, a release being
  built, a save based on a stale version) → 409;
- ``NotFound``: no such object (or not one this user may know of) → 404.

The REST API maps them with one exception handler (``feedback.rest.errors``), the pages with one
middleware (``feedback.middleware.ServiceErrorMiddleware``). Anything else is a bug: it is not
caught on the way and reaches the logs as a 500.

``NotFound`` and ``NotAllowed`` are also Django's ``Http404`` and ``PermissionDenied``, so code
that is neither a view of the API nor a page (a decorator, a test client) answers them the same.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

NON_FIELD = "non_field_errors"


class ServiceError(Exception):
    """A refusal a user can act on. ``message`` is a sentence for them; ``extra`` adds keys to the
    API's error body (a stale save's ``latest`` revision, say)."""

    status = 400
    code = "error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    @property
    def errors(self) -> dict[str, list[str]]:
        return {}


class InvalidInput(ServiceError):
    """Bad input: ``InvalidInput("budget", "must be a number")`` for one field, or
    ``InvalidInput.of({"seed": ["..."], "splits": ["..."]})`` for several. The field ``None`` is
    the input as a whole. ``str()`` reads "field: message"."""

    status = 400
    code = "invalid"

    def __init__(self, field: str | None, message: str, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.field = field
        self._errors: dict[str, list[str]] = {field or NON_FIELD: [message]}

    @classmethod
    def of(cls, errors: dict[str, list[str]]) -> InvalidInput:
        errors = {key: [str(m) for m in messages] for key, messages in errors.items() if messages}
        if not errors:
            raise ValueError("InvalidInput.of needs at least one message")
        field, messages = next(iter(errors.items()))
        exc = cls(None if field == NON_FIELD else field, messages[0])
        exc._errors = errors
        return exc

    @property
    def errors(self) -> dict[str, list[str]]:
        return self._errors

    def nested(self, prefix: str) -> InvalidInput:
        """The same errors under ``prefix.`` (a job's ``drafter.model``, say)."""
        return InvalidInput.of(
            {(prefix if key == NON_FIELD else f"{prefix}.{key}"): messages for key, messages in self._errors.items()}
        )

    def __str__(self) -> str:
        return summary(self._errors)


class TooLarge(InvalidInput):
    """An input past its size limit (an upload over ``ANNOTATOR_UPLOAD_MAX_BYTES``), naming the field."""

    status = 413
    code = "too_large"


class NotAllowed(ServiceError, PermissionDenied):
    status = 403
    code = "not_allowed"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class NotFound(ServiceError, Http404):
    status = 404
    code = "not_found"


def summary(errors: dict[str, list[str]]) -> str:
    """One line for people: "field: message" for each message (a non-field message bare)."""
    return " ".join(
        message if key == NON_FIELD else f"{key}: {message}" for key, messages in errors.items() for message in messages
    )
