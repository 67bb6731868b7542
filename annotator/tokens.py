"""API tokens that expire, and die with a password change.

A token older than ``ANNOTATOR_TOKEN_TTL_HOURS`` is refused (401 "Token expired…"); asking
``/api/auth/token/`` again issues a fresh one (0 hours: tokens never expire). Saving a user whose
password hash changed deletes their token: whoever holds the old one must sign in again.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from feedback.models import OneTimePassword

TOKEN_EXPIRED = "Token expired: obtain a new one from /api/auth/token/."  # noqa: S105 (a message)


def token_ttl() -> timedelta | None:
    hours = settings.TOKEN_TTL_HOURS
    return timedelta(hours=hours) if hours > 0 else None


def token_expired(token: Token) -> bool:
    ttl = token_ttl()
    return ttl is not None and token.created + ttl <= timezone.now()


def current_token(user) -> Token:
    """The user's token, made anew when there is none or it has expired."""
    token, created = Token.objects.get_or_create(user=user)
    if not created and token_expired(token):
        token.delete()
        token = Token.objects.create(user=user)
    return token


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than the TTL."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise AuthenticationFailed(TOKEN_EXPIRED)
        return user, token


def token_user(request: HttpRequest):
    """The user an ``Authorization: Token …`` header signs in, or None (no header, or a bad one)."""
    words = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(words) != 2 or words[0].lower() != "token":
        return None
    try:
        return ExpiringTokenAuthentication().authenticate_credentials(words[1])[0]
    except AuthenticationFailed:
        return None


def _note_password_change(sender, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._annotator_password_changed = stored is not None and stored != instance.password


def _drop_token_after_password_change(sender, instance, **kwargs) -> None:
    if getattr(instance, "_annotator_password_changed", False):
        Token.objects.filter(user=instance).delete()
        OneTimePassword.objects.filter(user=instance).delete()  # the user's own now (annotator.passwords)
        instance._annotator_password_changed = False


def connect_signals() -> None:
    user_model = get_user_model()
    pre_save.connect(_note_password_change, sender=user_model, dispatch_uid="annotator-password-change")
    post_save.connect(_drop_token_after_password_change, sender=user_model, dispatch_uid="annotator-token-rotate")
