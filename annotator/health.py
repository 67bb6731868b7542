"""``/healthz``: whether this web server can reach its database and its broker.

For load balancers and container health checks: no login, GET or HEAD only, and nothing in the
answer but each check's outcome, its time and, when it failed, the kind of error (never a URL, a
host or a message that could hold either). 200 when every check passes, 503 otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


def database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def broker_check() -> None:
    from annotator.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # The embedded broker is a folder: reachable when the queue folder is there to write into.
        folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
        if not folder.is_dir():
            raise FileNotFoundError("the broker's queue folder is missing")
        return
    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=settings.HEALTH_TIMEOUT)
        client = getattr(conn.default_channel, "client", None)
        if client is not None and hasattr(client, "ping"):
            client.ping()  # Redis: a connection pool connects lazily; ask the server itself


CHECKS: dict[str, Callable[[], None]] = {"database": database_check, "broker": broker_check}


def run_checks() -> tuple[bool, dict[str, dict[str, object]]]:
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # any failure is the answer, named by its kind only
            results[name] = {"ok": False, "error": type(exc).__name__}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return all(r["ok"] for r in results.values()), results


@login_not_required
@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    ok, checks = run_checks()
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)
