"""Choosing one's own password.

Every signed-in user has a password page (``password_change``). A user with a one-time password
(``feedback.models.OneTimePassword``: a superuser made the account and was shown the password) can
do nothing else until they have used it:

- a page redirects to the password page (then back where they were going);
- the API answers 403, ``code`` ``password_change_required``, whether the request came with the
  session or a token, and the token endpoint hands out no token (``annotator.token_view``).

Logging in and out, the password page and the health check stay open. The mark is read once, at
login, into the session: other requests cost no query. Any change of the password (this page,
``manage.py changepassword``, the admin) removes the mark (``annotator.tokens``), and Django ends the
user's other sessions with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import Resolver404, resolve, reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from feedback.models import OneTimePassword
from feedback.rest.errors import error_body

PASSWORD_MAX = 128  # characters, in each of the page's three fields
OPEN = frozenset({"login", "logout", "password_change", "healthz"})  # URL names a one-time password reaches
REQUIRED = "Choose your own password first: yours was set by someone else and works only for that."
SESSION_KEY = "annotator_one_time_password"


def must_change(user: Any) -> bool:
    """Whether ``user`` signed in with a one-time password they have not replaced yet."""
    return user is not None and user.is_authenticated and OneTimePassword.objects.filter(user=user).exists()


class PasswordForm(PasswordChangeForm):
    """Django's password change (old password, new one twice, the password validators) with each
    field bounded before anything hashes it, and a new password that is not the old one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.validators.append(MaxLengthValidator(PASSWORD_MAX))
            field.widget.attrs["maxlength"] = str(PASSWORD_MAX)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        new, old = cleaned.get("new_password1"), cleaned.get("old_password")
        if new and old and new == old:
            self.add_error("new_password1", ValidationError("Choose a password other than the present one."))
        return cleaned


class PasswordChange(PasswordChangeView):
    form_class = PasswordForm
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("feedback:project-list")

    def get_success_url(self) -> str:
        wanted = self.request.POST.get("next", "")[:2000]
        request = self.request
        if wanted and url_has_allowed_host_and_scheme(wanted, {request.get_host()}, require_https=request.is_secure()):
            return wanted
        return str(self.success_url)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["one_time"] = must_change(self.request.user)
        context["next"] = self.request.GET.get("next", self.request.POST.get("next", ""))[:2000]
        return context

    def form_valid(self, form: PasswordForm) -> HttpResponse:
        response = super().form_valid(form)  # saves (the one-time mark goes with the old password)
        self.request.session.pop(SESSION_KEY, None)
        messages.success(self.request, "Your password is changed.")
        return response


class OneTimePasswordMiddleware:
    """Sends a session signed in with a one-time password to the password page (see the module's
    docstring). Sits after the session's authentication."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        # The user first: a session whose password changed since is ended there (Django's check).
        if request.user.is_authenticated and session is not None and session.get(SESSION_KEY) and not _open(request):
            if not must_change(request.user):  # changed by other means meanwhile
                session.pop(SESSION_KEY, None)
            elif request.path_info.startswith("/api/"):
                return JsonResponse(error_body(REQUIRED, "password_change_required"), status=403)
            else:
                target = reverse("password_change") + "?" + urlencode({"next": request.get_full_path()[:2000]})
                return HttpResponseRedirect(target)
        return self.get_response(request)


def _mark_session(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and must_change(user):
        session[SESSION_KEY] = True


def connect_signals() -> None:
    user_logged_in.connect(_mark_session, dispatch_uid="annotator-one-time-password")


def _open(request: HttpRequest) -> bool:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.url_name in OPEN
