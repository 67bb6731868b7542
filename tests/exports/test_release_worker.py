"""Releases made through the page and the API, built by a real Celery worker on the ``exports``
queue, and downloaded through both doors: each file's sha256 matches the manifest."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from exports.models import Release
from exports.service import partial_folders, release_create, release_folder
from exports.tasks import release_build_task
from feedback.importers.service import import_file
from tests.conftest import token_client
from tests.exports.release_helpers import api_urls, page_urls, reviewed_samples, sha256_of, streamed
from tests.recovery_helpers import reached, write_native
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


def test_a_worker_killed_mid_build_leaves_the_release_to_the_next_worker_which_builds_it_from_scratch(
    project, admin_user, tmp_path
):
    total = 3000
    import_file(project=project, format="native", path=write_native(tmp_path / "s.jsonl", total, feedback=True))
    release = release_create(project=project, user=admin_user, formats=["rich"], enqueue=False)
    release_build_task.delay(release.pk)
    env = {"ANNOTATOR_RELEASE_CHUNK_SIZE": "50"}

    first = WorkerProcess("exports", log_path=tmp_path / "first.log", env=env)
    try:
        assert first.wait_for(reached(release, "samples_done", total // 5), timeout=90), first.output()
    finally:
        first.kill()
    release.refresh_from_db()
    assert release.state == Release.State.RUNNING and release.samples_done < total
    assert partial_folders(release), "the killed build left no partial folder to recover from"

    second = WorkerProcess("exports", log_path=tmp_path / "second.log", env=env)
    try:
        wait_until_built(second, release, timeout=120)
    finally:
        second.stop()
    assert release.attempts == 2
    assert (release.samples_done, release.samples_released) == (total, total)
    assert partial_folders(release) == []  # the lost attempt's folder was removed
    rows = (release_folder(release) / "rich.jsonl").read_text(encoding="utf-8").splitlines()
    ids = [json.loads(row)["id"] for row in rows]
    assert len(ids) == total == len(set(ids))
    assert release.files.get(path="rich.jsonl").rows == total


def test_a_building_release_is_cancelled_from_its_page_then_deleted(project, admin_user, tmp_path):
    total = 1500
    import_file(project=project, format="native", path=write_native(tmp_path / "s.jsonl", total, feedback=True))
    release = release_create(project=project, user=admin_user, formats=["rich"], enqueue=False)
    release_build_task.delay(release.pk)
    client = Client()
    client.force_login(admin_user)
    worker = WorkerProcess("exports", log_path=tmp_path / "worker.log", env={"ANNOTATOR_RELEASE_CHUNK_SIZE": "20"})
    try:

        def building() -> bool:
            release.refresh_from_db()
            return release.samples_done >= 100

        assert worker.wait_for(building, timeout=90), worker.output()
        assert b'id="cancel"' in client.get(page_urls(release)["detail"]).content
        assert client.post(page_urls(release)["detail"] + "cancel/").status_code == 302

        def stopped() -> bool:
            return not partial_folders(release)

        assert worker.wait_for(stopped, timeout=60), "the build did not notice its cancellation"
    finally:
        worker.stop()
    release.refresh_from_db()
    assert release.state == Release.State.CANCELLED and release.samples_done < total
    assert not release_folder(release).exists()
    assert client.post(page_urls(release)["detail"] + "delete/").status_code == 302
    assert not Release.objects.filter(pk=release.pk).exists()
