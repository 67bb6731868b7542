"""A real Celery worker in a child process, on the configured broker, against the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from .conftest import need_service

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    """The URL of the database pytest-django made, for the worker to share it."""
    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/{cfg['NAME']}"


def require_broker() -> None:
    url = settings.CELERY_BROKER_URL
    default_ports = {"redis": 6379, "amqp": 5672, "pyamqp": 5672}
    parts = urlsplit(url)
    if parts.scheme in default_ports:
        need_service(f"broker {parts.scheme}", parts.hostname or "127.0.0.1", parts.port or default_ports[parts.scheme])


class WorkerProcess:
    """A worker on the threads pool, as ``bin/run`` starts it (``"prefork"`` is the other deployed
    shape). The worker leads its own process group, so ``kill()`` takes its children with it, as
    the loss of a machine would."""

    def __init__(
        self,
        queues: str = "default",
        log_path: Path | None = None,
        *,
        env: dict[str, str] | None = None,
        pool: str = "threads",
        concurrency: int = 2,
        loglevel: str = "INFO",
    ) -> None:
        require_broker()
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "ANNOTATOR_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "ANNOTATOR_RELEASES_ROOT": str(settings.RELEASES_ROOT),
            "ANNOTATOR_UPLOAD_DIR": str(settings.UPLOAD_DIR),
            "DJANGO_SETTINGS_MODULE": "annotator.settings",
            **(env or {}),
        }
        self.log_path = log_path
        self.log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "annotator",
                "worker",
                "--queues",
                queues,
                "--pool",
                pool,
                "--concurrency",
                str(concurrency),
                "--loglevel",
                loglevel,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                # A node name of its own: two workers of one name share a pidbox queue, which RabbitMQ
                # declares exclusive, so the second would fail to start there.
                "--hostname",
                f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_for(self, predicate, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.process.returncode}: {self.output()}")
            time.sleep(0.2)
        return False

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL to the worker and its pool processes at once: no goodbye, no acks."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if not isinstance(self.log, int):  # a file of ours, not DEVNULL
            self.log.close()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if not isinstance(self.log, int):  # a file of ours, not DEVNULL
            self.log.close()
