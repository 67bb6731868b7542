"""Fixtures of the release tests: quick password hashing, and a built release of reviewed samples."""

from __future__ import annotations

import pytest

from exports.models import Release
from tests.exports.export_helpers import build
from tests.exports.release_helpers import reviewed_samples


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def built(project, researcher_user) -> Release:
    """A completed dress + rich release of three accepted samples, made by the researcher."""
    reviewed_samples(project, 3)
    return build(project, ["dress", "rich"], user=researcher_user, name="First cut")
