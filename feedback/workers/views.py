"""The Workers page: every worker's host, queues, pool and last heartbeat, stale ones flagged (admins)."""

from django.conf import settings
from django.shortcuts import render

from feedback.errors import NotAllowed
from feedback.permissions import is_platform_admin

from .selectors import workers_list

REFUSAL = "Only superusers and members of the admin group see the workers."


def check_admin(user) -> None:
    if not user.is_authenticated or not is_platform_admin(user):
        raise NotAllowed(REFUSAL)


def worker_list(request):
    check_admin(request.user)
    workers = workers_list()
    return render(
        request,
        "feedback/workers.html",
        {
            "workers": workers,
            "stale": sum(1 for w in workers if w.state == "stale"),
            "interval": settings.WORKER_HEARTBEAT_INTERVAL,
            "stale_after": settings.WORKER_STALE_AFTER,
        },
    )
