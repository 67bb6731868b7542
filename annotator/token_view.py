"""The token endpoint: throttled per client address, counted by the login lockout, and handing out
a fresh token when the user's has expired."""

from __future__ import annotations

from django.contrib.auth import user_logged_in
from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from feedback.rest.errors import error_body

from .lockout import lockout_message
from .passwords import REQUIRED, must_change
from .tokens import current_token


class ObtainToken(ObtainAuthToken):
    """``POST username, password`` → ``{"token": …}``: the user's token, a fresh one if it expired."""

    # Per client address, ``ANNOTATOR_TOKEN_RATE``; ObtainAuthToken's own parsers would skip the bounded one.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth-token"
    parser_classes = APIView.parser_classes

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # The lockout backend marks the request it was given: DRF's, not Django's.
            if getattr(request, "axes_locked_out", False):
                return Response({"detail": lockout_message()}, status=status.HTTP_429_TOO_MANY_REQUESTS)
            return Response(serializer.errors, status=status.HTTP_400_BAD_REQUEST)
        user = serializer.validated_data["user"]
        if must_change(user):  # a token would let a one-time password go on working
            return Response(error_body(REQUIRED, "password_change_required"), status=status.HTTP_403_FORBIDDEN)
        # A token is a login: the lockout's failure count for this user and address starts over.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        token = current_token(user)
        return Response({"token": token.key})
