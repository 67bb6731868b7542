"""One job item run in this process against the simulator over HTTP: the retry policy, the
budget reservation and the client's handling of what servers say. No broker: the messages a run
would send stay unsent, and the test runs the item again with its new token."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from feedback.drafting.client import retry_after_seconds, scrub
from feedback.drafting.models import CallStatus, Draft
from feedback.jobs import service
from feedback.jobs.models import Job, JobItem
from tests.factories import SampleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_job(project, settings, llm_simulator):
    settings.LLM_BASE_URL = llm_simulator.url
    settings.LLM_TIMEOUT = 1.0
    settings.LLM_MAX_ATTEMPTS = 4
    SampleFactory.create_numbered(3, project=project)
    job = service.job_create(project=project, kind="draft", selection={})
    service.job_dispatch(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.total == 3
    return job


def first_item(job: Job) -> JobItem:
    item = JobItem.objects.filter(job=job).first()
    assert item is not None
    return item


def run_again(item: JobItem) -> JobItem:
    item.refresh_from_db()
    assert item.state == JobItem.State.QUEUED, item.state
    service.item_run(item_id=item.pk, token=item.token)
    item.refresh_from_db()
    return item


def test_a_429_never_uses_up_the_retry_budget(running_job, llm_simulator, settings):
    llm_simulator.configure(fault_429=1.0, retry_after=7)
    item = first_item(running_job)
    for throttles in range(1, settings.LLM_MAX_ATTEMPTS + 3):
        before = timezone.now()
        item = run_again(item)
        assert (item.state, item.attempts, item.throttled) == (JobItem.State.QUEUED, 0, throttles)
        # Retry-After (7 s) is honoured: the item is due no sooner, and its lease runs from then.
        assert item.lease_until is not None and item.lease_until >= before + timedelta(seconds=7 + settings.JOB_LEASE)
        assert "throttled" in item.error
    llm_simulator.configure(fault_429=0.0)
    item = run_again(item)
    assert item.state == JobItem.State.DONE and item.error == ""
    assert Draft.objects.filter(job=running_job, turn=item.turn, status=CallStatus.OK).count() == 1


def test_server_errors_are_retried_then_the_item_fails_with_its_reason(running_job, llm_simulator, settings):
    llm_simulator.configure(fault_5xx=1.0)
    item = first_item(running_job)
    for attempt in range(1, settings.LLM_MAX_ATTEMPTS):
        item = run_again(item)
        assert (item.state, item.attempts) == (JobItem.State.QUEUED, attempt)
        assert item.error.startswith(f"attempt {attempt}: HTTP 50")
    item = run_again(item)
    assert item.state == JobItem.State.FAILED
    assert item.error.startswith(f"gave up after {settings.LLM_MAX_ATTEMPTS} attempts: HTTP 50")
    failed = Draft.objects.get(job=running_job, turn=item.turn)
    assert failed.status == CallStatus.FAILED and failed.error == item.error
    # Retrying the job's failures gives the turn a fresh budget, and it is drafted.
    llm_simulator.configure(fault_5xx=0.0)
    assert service.job_retry_failed(job=running_job) == 1
    item.refresh_from_db()
    assert (item.state, item.attempts, item.error) == (JobItem.State.QUEUED, 0, "")
    item = run_again(item)
    assert item.state == JobItem.State.DONE
    assert Draft.objects.filter(job=running_job, turn=item.turn).count() == 2  # the failure stays as history


def test_a_client_error_fails_at_once(running_job, llm_simulator, settings):
    settings.LLM_API_KEY = "sk-wrong-key-123456"
    llm_simulator.configure(require_key="sk-right-key-654321")
    item = run_again(first_item(running_job))
    assert item.state == JobItem.State.FAILED and item.error.startswith("HTTP 401")
    assert "sk-wrong-key-123456" not in item.error


def test_a_stale_message_does_nothing(running_job, llm_simulator):
    item = first_item(running_job)
    service.item_run(item_id=item.pk, token="not-its-token")
    item.refresh_from_db()
    assert item.state == JobItem.State.QUEUED and llm_simulator.stats()["requests"] == 0


def test_the_budget_pauses_the_job_before_a_call_could_pass_it(running_job, llm_simulator):
    Job.objects.filter(pk=running_job.pk).update(budget=Decimal("0.0000001"))
    item = run_again(first_item(running_job))
    running_job.refresh_from_db()
    assert item.state == JobItem.State.PENDING and item.token == ""
    assert running_job.state == Job.State.PAUSED and "budget" in running_job.stop_reason
    assert llm_simulator.stats()["requests"] == 0
    assert running_job.cost == 0 and running_job.reserved_cost == 0


def test_an_item_of_a_paused_job_goes_back_to_pending_without_a_call(running_job, llm_simulator):
    service.job_pause(job=running_job)
    item = run_again(first_item(running_job))
    assert item.state == JobItem.State.PENDING and llm_simulator.stats()["requests"] == 0


def test_the_watcher_sends_again_an_item_whose_lease_ran_out(running_job):
    item = first_item(running_job)
    old_token = item.token
    JobItem.objects.filter(pk=item.pk).update(state=JobItem.State.RUNNING, lease_until=timezone.now() - timedelta(1))
    service.job_watch(job_id=running_job.pk)
    item.refresh_from_db()
    assert item.state == JobItem.State.QUEUED and item.token != old_token
    assert item.lease_until is not None and item.lease_until > timezone.now()
    # A second watcher right away finds the job freshly watched and does nothing.
    JobItem.objects.filter(pk=item.pk).update(lease_until=timezone.now() - timedelta(1))
    service.job_watch(job_id=running_job.pk)
    assert JobItem.objects.get(pk=item.pk).token == item.token


def test_retry_after_in_its_three_forms():
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    later = (timezone.now() + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = retry_after_seconds({"retry-after": later})
    assert seconds is not None and 25 <= seconds <= 31
    assert retry_after_seconds({}) is None


def test_the_key_is_scrubbed_from_server_messages_whole_or_masked():
    key = "sk-live-NEVER-SHOW-4242"
    assert key not in scrub(f"bad key {key}", key)
    assert "sk-l" not in scrub("Incorrect API key provided: sk-live***4242.", key)
    assert scrub("nothing to hide", key) == "nothing to hide"
