"""Releases made through the page and the API, built by a real Celery worker on the ``exports``
queue, and downloaded through both doors: each file's sha256 matches the manifest."""

from __future__ import annotations

import pytest
from django.test import Client

from exports.models import Release
from tests.conftest import token_client
from tests.exports.release_helpers import api_urls, page_urls, reviewed_samples, sha256_of, streamed
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_until_built(worker: WorkerProcess, release: Release, timeout: float = 90) -> Release:
    def finished():
        release.refresh_from_db()
        return release.finished

    if not worker.wait_for(finished, timeout=timeout):
        pytest.fail(f"release {release.pk} is still {release.state}\n{worker.output()}")
    assert release.state == Release.State.COMPLETED, release.error
    return release


def test_a_release_made_in_the_form_is_built_by_a_worker_and_downloads_match(project, researcher_user, tmp_path):
    reviewed_samples(project, 12, turns=2)
    client = Client()
    client.force_login(researcher_user)
    response = client.post(
        page_urls(Release(project=project, pk=1))["new"],
        {
            "name": "Worker-built",
            "formats": ["dress", "rich"],
            "decisions": ["accepted", "edited"],
            "include_imported": "on",
            "include_simulated": "on",
            "train": "1",
            "validation": "0",
            "test": "0",
        },
    )
    assert response.status_code == 302
    release = Release.objects.get()
    assert release.state == Release.State.QUEUED

    worker = WorkerProcess("exports", log_path=tmp_path / "worker.log")
    try:
        wait_until_built(worker, release)
    finally:
        worker.stop()

    assert (release.samples_total, release.samples_done, release.samples_released) == (12, 12, 12)
    progress = client.get(page_urls(release)["detail"] + "?format=json").json()
    assert progress["state"] == "completed" and progress["percent"] == 100
    manifest_files = {f["path"]: f["sha256"] for f in release.manifest["files"]}
    assert {"helpfulness_nlf.jsonl", "rich.jsonl"} & set(manifest_files), manifest_files
    for path, digest in manifest_files.items():
        content = streamed(client.get(page_urls(release, path)["file"]))
        assert sha256_of(content) == digest, path
    manifest = streamed(client.get(page_urls(release, "manifest.json")["file"]))
    assert sha256_of(manifest) == release.files.get(path="manifest.json").sha256


def test_a_release_made_through_the_api_is_built_by_a_worker(project, admin_user, tmp_path):
    reviewed_samples(project, 6)
    api = token_client(admin_user)
    response = api.post(
        f"/api/projects/{project.slug}/releases/",
        {"formats": ["dress"], "split": {"train": 0.5, "test": 0.5, "seed": "s"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    release = Release.objects.get(pk=response.json()["id"])

    worker = WorkerProcess("exports", log_path=tmp_path / "worker.log")
    try:
        wait_until_built(worker, release)
    finally:
        worker.stop()

    detail = api.get(api_urls(release)["detail"]).json()
    assert detail["state"] == "completed"
    digests = {f["path"]: f["sha256"] for f in detail["manifest"]["files"]}
    assert digests
    for f in detail["files"]:
        content = streamed(api.get(f["download"]))
        assert sha256_of(content) == f["sha256"]
        if f["path"] in digests:
            assert digests[f["path"]] == f["sha256"]
