"""An S3-compatible server on loopback for the tests (moto's server mode, which `.ci/run` starts):
the `s3_storages` fixture moves the media, uploads and releases stores to a bucket of its own.
Skipped when the server is unreachable, failing under ANNOTATOR_REQUIRE_SERVICES=1."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit

import pytest

from .conftest import need_service

S3_ENDPOINT = os.environ.get("ANNOTATOR_TEST_S3_ENDPOINT", "http://127.0.0.1:5000")


def s3_environment(bucket: str) -> dict[str, str]:
    """The environment of a process whose three stores are in ``bucket`` (fake credentials: the
    test server takes any; a real store would refuse them)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ANNOTATOR_STORAGE": "s3",
        "ANNOTATOR_S3_BUCKET": bucket,
        "ANNOTATOR_S3_ENDPOINT_URL": S3_ENDPOINT,
        "ANNOTATOR_S3_REGION": "us-east-1",
    }


def need_s3() -> None:
    parts = urlsplit(S3_ENDPOINT)
    need_service("S3 server (moto_server)", parts.hostname or "127.0.0.1", parts.port or 80)


@pytest.fixture
def s3_storages(settings, monkeypatch) -> dict[str, str]:
    """The three stores in a fresh bucket of the test S3 server; the environment that says so
    (for the workers and servers a test starts)."""
    import boto3

    from annotator.settings import STORAGE_KINDS, storage_settings

    need_s3()
    env = s3_environment(f"test-{uuid.uuid4().hex[:20]}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=S3_ENDPOINT, region_name="us-east-1")
    client.create_bucket(Bucket=env["ANNOTATOR_S3_BUCKET"])
    settings.STORAGES = {
        **settings.STORAGES,
        **{alias: storage_settings(kind, root) for kind, (alias, root) in STORAGE_KINDS.items()},
    }
    return env
