"""An admin launches a job in the browser, watches its live progress as a real worker drafts
through the simulator, pauses, resumes and cancels it, and reads a draft on the sample page."""

import pytest

from feedback.drafting.models import Draft
from feedback.jobs.models import Job, JobItem
from tests.browser.conftest import wait_until
from tests.conftest import make_user
from tests.factories import SampleFactory
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_launch_follow_pause_resume_and_cancel_a_job(live_server, page, project, settings, llm_simulator, tmp_path):
    settings.LLM_BASE_URL = llm_simulator.url
    llm_simulator.configure(latency_ms=150)
    make_user("boss", project=project, role="admin")
    SampleFactory.create_numbered(300, project=project, target_criterion="honesty")
    # The worker resolves the job's connection from its own settings: the simulator's URL goes in its environment.
    env = {"ANNOTATOR_JOB_WATCH_INTERVAL": "1", "ANNOTATOR_LLM_BASE_URL": llm_simulator.url}
    worker = WorkerProcess("default,llm", log_path=tmp_path / "worker.log", env=env)
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "pw-boss")
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/projects/{project.slug}/")
        page.click("text=Launch a job…")
        page.select_option("#id_criterion", "honesty")
        page.fill("#id_budget", "5")
        page.click("button:has-text('Launch')")
        page.wait_for_url(f"{live_server.url}/projects/{project.slug}/jobs/*/")
        job = Job.objects.get(project=project)
        assert job.selection["criterion"] == "honesty" and job.budget == 5

        # The counters move without a reload: htmx swaps in the server-rendered progress.
        page.evaluate("window.__sameDocument = true")
        wait_until(page, "Number(document.getElementById('done').textContent) >= 3", timeout=60_000)
        assert page.locator("#state").inner_text() == "running"
        assert page.evaluate("window.__sameDocument") is True

        page.click("#pause")
        wait_until(page, "document.getElementById('state').textContent === 'paused'")
        page.click("#resume")
        wait_until(page, "document.getElementById('state').textContent === 'running'")
        done_before = Draft.objects.filter(job=job).count()
        wait_until(page, f"Number(document.getElementById('done').textContent) > {done_before}", timeout=60_000)
        page.click("#cancel")
        wait_until(page, "document.getElementById('state').textContent === 'cancelled'", timeout=30_000)
        # The last refresh shows the final count, then the polling stops.
        done = JobItem.objects.filter(job=job, state=JobItem.State.DONE).count()
        assert page.locator("#done").inner_text() == str(done)
        assert page.locator("#job-progress").get_attribute("hx-trigger") is None
        page.goto(f"{live_server.url}/projects/{project.slug}/jobs/{job.pk}/")
        assert page.locator("#state").inner_text() == "cancelled"
        assert page.locator(".badge", has_text="simulated").is_visible()
        assert page.locator("#cancel").is_disabled() and page.locator("#resume").is_disabled()
        job.refresh_from_db()
        assert job.state == Job.State.CANCELLED
        assert 0 < Draft.objects.filter(job=job).count() < 300

        draft = Draft.objects.filter(job=job).select_related("turn").first()
        assert draft is not None
        page.goto(f"{live_server.url}/projects/{project.slug}/samples/{draft.turn.sample_id}/")
        assert page.locator(".draft", has_text=draft.critique[:40]).is_visible()
        assert page.locator(".draft .badge", has_text="simulated").is_visible()
    finally:
        worker.stop()
