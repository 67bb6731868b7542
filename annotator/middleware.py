"""Request bodies are bounded before anything reads them.

DRF's JSON parser reads the whole body whatever ``DATA_UPLOAD_MAX_MEMORY_SIZE`` says, and Django
spools any multipart body to disk before a view can look at who sent it. This middleware answers
413 first, from ``Content-Length``, or by counting a chunked body as it reads it:

- anyone not signed in: any body over ``ANNOTATOR_ANON_BODY_MAX_BYTES`` (the login form and the
  token request are a few hundred bytes);
- signed-in users: any body but a multipart upload over ``ANNOTATOR_JSON_MAX_BYTES``. Multipart
  uploads (imports) are bounded by the import endpoints' own cap, ``ANNOTATOR_UPLOAD_MAX_BYTES``.

It sits after the session's authentication middleware (to know the user) and before anything
that reads a body (the CSRF check reads forms in ``process_view``, after every ``__call__``).
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .tokens import token_user


def body_limit(request: HttpRequest) -> tuple[int, str] | None:
    """The most bytes this request's body may have, and the setting that says so; None: unbounded here."""
    user = getattr(request, "user", None)
    signed_in = (user is not None and user.is_authenticated) or token_user(request) is not None
    if not signed_in:
        return settings.ANON_BODY_MAX_BYTES, "ANNOTATOR_ANON_BODY_MAX_BYTES"
    if request.content_type == "multipart/form-data":
        return None
    return settings.JSON_MAX_BYTES, "ANNOTATOR_JSON_MAX_BYTES"


def too_large(limit: int, setting: str) -> JsonResponse:
    return JsonResponse(
        {"detail": f"Request body too large: at most {limit:,} bytes ({setting})."},
        status=413,
    )


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = _declared_length(request)
        chunked = length is None and _chunked(request)
        if length or chunked:
            bound = body_limit(request)
            if bound is not None:
                limit, setting = bound
                if length is not None and length > limit:
                    return too_large(limit, setting)
                if chunked and not _read_chunked(request, limit):
                    return too_large(limit, setting)
        return self.get_response(request)


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def _chunked(request: HttpRequest) -> bool:
    """A body whose length only its end tells. Only a server that ends the input stream there
    (``wsgi.input_terminated``, as gunicorn does) can have one read; Django reads none otherwise."""
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and bool(
        request.META.get("wsgi.input_terminated")
    )


def _read_chunked(request: HttpRequest, limit: int) -> bool:
    """Reads a chunked body, at most ``limit`` bytes and one more; False when it is longer. A body
    within the bound is handed on as if it had come with its length, so that Django and DRF read it."""
    stream = request.META["wsgi.input"]
    buffer = BytesIO()
    while buffer.tell() <= limit:
        piece = stream.read(min(64 * 1024, limit + 1 - buffer.tell()))
        if not piece:
            break
        buffer.write(piece)
    if buffer.tell() > limit:
        return False
    body = buffer.getvalue()
    request.META["CONTENT_LENGTH"] = str(len(body))
    request._stream = BytesIO(body)
    return True
