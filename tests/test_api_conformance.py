"""The API says what it does: the fuzzer runs against the live ``/api/schema/`` of a real server on a
seeded project and fails on any answer the schema does not declare (status, content type, body
shape, headers) and on any 5xx.

Job creation is fuzzed too, against the project's LLM simulator only (the default connection points
at it). The token endpoint is left out: its throttle and lockout answer 429 on purpose, and a fuzzed
password is a failed login."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from feedback.jobs.models import Job
from feedback.models import Sample
from feedback.review.claims import sample_claim
from tests.exports.export_helpers import build
from tests.exports.release_helpers import reviewed_samples
from tests.feedback.review_helpers import make_drafted_samples

ST = Path(sys.executable).with_name("schemathesis")
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db(transaction=True)
def test_every_answer_matches_the_schema(
    live_server, project, admin_user, researcher_user, tmp_path, llm_simulator, settings
):
    settings.LLM_BASE_URL = llm_simulator.url  # jobs the fuzzer creates call the simulator, nothing else
    reviewed_samples(project, 3)
    build(project, ["dress", "rich"], user=researcher_user, name="First cut")
    make_drafted_samples(project, 3, prefix="open")
    without_image = make_drafted_samples(project, 1, prefix="imageless")[0]
    Sample.objects.filter(pk=without_image.pk).update(image=None)  # the image is declared nullable
    assert sample_claim(project=project, reviewer=admin_user) is not None
    token = Token.objects.create(user=admin_user).key

    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.slug" = "{project.slug}"\n')  # the seeded project, not 404s only
    command = [
        str(ST),
        "--config-file",
        str(config),
        "run",
        f"{live_server.url}/api/schema/",
        "--header",
        f"Authorization: Token {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--phases",
        "fuzzing",
        "--workers",
        "1",
        "--seed",
        "1",
        "--exclude-path",
        "/api/auth/token/",
        "--no-color",
        "--generation-database",
        "none",
    ]
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"})
    print(run.stdout, run.stderr)  # the fuzzer's report: each failure with its curl to reproduce
    assert run.returncode == 0, run.stdout[-3000:]
    assert Job.objects.filter(project=project).exists(), "the fuzzer never got a job created"
