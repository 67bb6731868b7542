"""A researcher makes a release in the browser, watches a real worker build it, and downloads a
file whose sha256 is the one the release records."""

import hashlib

import pytest

from exports.models import Release
from tests.browser.conftest import wait_until
from tests.conftest import make_user
from tests.exports.release_helpers import reviewed_samples
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_a_researcher_makes_follows_and_downloads_a_release(live_server, page, project, tmp_path):
    make_user("rita", project=project, role="researcher")
    reviewed_samples(project, 20, turns=2)
    worker = WorkerProcess("exports", log_path=tmp_path / "worker.log")
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "rita")
        page.fill("#id_password", "pw-rita")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/projects/{project.slug}/")
        page.click("#releases-link")
        page.click("#new-release")
        page.fill("#id_name", "Browser release")
        assert page.locator("input[name=formats][value=dress]").is_checked()
        page.check("input[name=formats][value=rich]")
        assert page.locator("input[name=decisions][value=accepted]").is_checked()
        assert not page.locator("input[name=decisions][value=rejected]").is_checked()
        page.click("#create-release")
        page.wait_for_url(f"{live_server.url}/projects/{project.slug}/releases/*/")
        release = Release.objects.get(project=project)
        assert release.created_by is not None
        assert release.formats == ["dress", "rich"] and release.created_by.username == "rita"

        # The page follows the build and shows the files once it completes, without a reload.
        page.evaluate("window.__sameDocument = true")
        wait_until(page, "document.getElementById('state').textContent === 'completed'", timeout=90_000)
        page.wait_for_selector("#files a", timeout=30_000)
        assert page.locator("#samples_released").inner_text() == "20"
        assert page.locator("#manifest").is_visible()
        assert page.evaluate("window.__sameDocument") is True

        record = release.files.get(path="helpfulness_nlf.jsonl")
        with page.expect_download() as info:
            page.click("#files a:text-is('helpfulness_nlf.jsonl')")
        downloaded = info.value.path()
        assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == record.sha256

        page.goto(f"{live_server.url}/projects/{project.slug}/releases/")
        row = page.locator(f"tr[data-release='{release.pk}']")
        assert "completed" in row.inner_text() and "Browser release" in row.inner_text()
    finally:
        worker.stop()
