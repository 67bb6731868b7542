"""Attempts at long work (an import, a release build): who runs it and whether it is still alive.

An attempt takes a fresh token when it starts, by a conditional update that only one caller can
win; every later write of the attempt names its token, so the writes of an attempt that lost its
work (it was cancelled, or its lease ran out and another attempt took over) change nothing. The
attempt renews its lease (``heartbeat_at``) as it goes. It is dead when the lease has run out,
or at once when it ran on this machine and its process is gone.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone


class StaleAttempt(Exception):
    """This attempt no longer holds its work: it stops and writes nothing more."""


def new_token() -> str:
    return uuid.uuid4().hex


def owner_here() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lease() -> timedelta:
    return timedelta(seconds=settings.WORK_LEASE)


def expired(now: datetime) -> Q:
    """Rows whose attempt's lease ran out (or never began)."""
    return Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=now - lease())


def process_gone(owner: str) -> bool:
    """Whether ``owner`` ("host:pid") ran on this machine in a process that has ended."""
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child not yet waited for is a zombie: it runs nothing
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def now() -> datetime:
    return timezone.now()
