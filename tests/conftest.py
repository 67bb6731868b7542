"""Shared fixtures. Tests that need a real service skip with a message when it is unreachable,
and fail instead when ANNOTATOR_REQUIRE_SERVICES=1 (CI sets it)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from feedback.models import Project, Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

SHARED_FORMATS = Path(__file__).resolve().parents[1] / "demo" / "fixtures" / "formats"


def services_required() -> bool:
    return os.environ.get("ANNOTATOR_REQUIRE_SERVICES", "").lower() in {"1", "true", "yes"}


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, under CI, fail) when a service cannot be reached."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} at {host}:{port} is unreachable ({exc})"
        if services_required():
            pytest.fail(f"{message}; ANNOTATOR_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.RELEASES_ROOT = tmp_path / "releases"
    return settings.MEDIA_ROOT


@pytest.fixture
def project(db) -> Project:
    return ProjectFactory.create(name="Test project", slug="test")


def token_client(user):
    """An API client that authenticates as ``user`` with its token."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def make_user(username: str, *, project: Project | None = None, role: str | None = None, **extra: Any) -> User:
    """A user of password ``pw-<username>``, in ``role``'s group and, with a project, its member in that role."""
    user = UserFactory.create(username=username, roles=[role] if role else [], **extra)
    if role and project is not None:
        MembershipFactory.create(project=project, user=user, role=role)
    return user


@pytest.fixture
def admin_user(project) -> User:
    return make_user("ada", project=project, role=Role.ADMIN)


@pytest.fixture
def annotator_user(project) -> User:
    return make_user("ann", project=project, role=Role.ANNOTATOR)


@pytest.fixture
def researcher_user(project) -> User:
    return make_user("rex", project=project, role=Role.RESEARCHER)


@pytest.fixture
def eager_tasks():
    """Tasks run in-process when enqueued: for tests of a page or endpoint, not of the worker."""
    from annotator.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


# The `llm_simulator` and `s3_storages` (a bucket of the test S3 server) fixtures, for every test module.
from tests.s3 import s3_storages  # noqa: E402,F401
from tests.simulator import llm_simulator_fixture  # noqa: E402,F401
