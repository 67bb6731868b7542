"""Batch-mode jobs run by real Celery workers on the configured broker, against the simulator's
Batch API over real HTTP: every turn drafted exactly once through a worker killed while its
batches were being polled, failed lines asked again live, and cancel cancelling the remote
batches."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from feedback.drafting.models import CallStatus, Draft
from feedback.jobs import service
from feedback.jobs.models import BatchPart, Job, JobItem
from tests.factories import SampleFactory
from tests.feedback.job_helpers import assert_each_item_settled_once, successful_drafts_per_turn
from tests.feedback.test_jobs_worker import start_worker, wait_until_settled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def batch_env(settings, llm_simulator):
    """Short timings for the worker and this process: polls every half second, 60 requests a part."""
    values = {
        "ANNOTATOR_LLM_BASE_URL": llm_simulator.url,
        "ANNOTATOR_LLM_TIMEOUT": "2",
        "ANNOTATOR_LLM_BACKOFF_BASE": "0.05",
        "ANNOTATOR_LLM_BACKOFF_MAX": "0.5",
        "ANNOTATOR_JOB_LEASE": "8",
        "ANNOTATOR_JOB_WATCH_INTERVAL": "1",
        "ANNOTATOR_JOB_BATCH_POLL_INTERVAL": "0.5",
        "ANNOTATOR_JOB_BATCH_MAX_REQUESTS": "60",
        "ANNOTATOR_JOB_BATCH_LEASE": "5",
        "ANNOTATOR_JOB_BATCH_TIMEOUT": "10",
    }
    settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = llm_simulator.url
    settings.JOB_WATCH_INTERVAL = 1.0
    settings.JOB_BATCH_POLL_INTERVAL = 0.5
    settings.JOB_BATCH_MAX_REQUESTS = 60
    return values


def polled(job: Job, parts: int):
    def check() -> bool:
        submitted = BatchPart.objects.filter(job=job, state=BatchPart.State.SUBMITTED, remote_status="in_progress")
        return submitted.count() == parts

    return check


def test_a_batch_job_drafts_every_turn_once_through_a_worker_killed_while_polling(
    project, admin_user, batch_env, llm_simulator, tmp_path
):
    llm_simulator.configure(batch_delay_s=6, batch_fail_rate=0.05, seed=11)
    SampleFactory.create_numbered(200, project=project)
    job = service.job_create(project=project, kind="draft", selection={}, user=admin_user, mode="batch")

    first = start_worker(tmp_path, batch_env, name="first", pool="prefork", concurrency=2)
    assert first.wait_for(polled(job, parts=4), timeout=60), first.output()
    first.kill()
    assert not Draft.objects.filter(job=job).exists(), "killed while the batches were still running"
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING

    second = start_worker(tmp_path, batch_env, name="second", pool="prefork", concurrency=2)
    try:
        wait_until_settled(second, job, timeout=120)
    finally:
        second.stop()

    assert job.state == Job.State.COMPLETED, job.stop_reason
    states = dict(JobItem.objects.filter(job=job).values_list("state").annotate(n=Sum(1)))
    assert states == {JobItem.State.DONE: 200}, states
    per_turn = successful_drafts_per_turn(job)
    assert len(per_turn) == 200 and set(per_turn.values()) == {1}
    assert_each_item_settled_once(job)
    stats = llm_simulator.stats()
    assert stats["batch"]["batches"] == 4, "no batch made twice"
    assert stats["batch"]["lines"] + stats["batch"]["failed_lines"] == 200, "each request sent in a batch once"
    failed = stats["batch"]["failed_lines"]
    assert failed > 0 and stats["completed"] == failed, "each failed line asked live once"
    parts = BatchPart.objects.filter(job=job)
    assert set(parts.values_list("state", flat=True)) == {BatchPart.State.DONE}
    assert parts.aggregate(n=Sum("to_live"))["n"] == failed
    assert Draft.objects.filter(job=job, status=CallStatus.OK).count() == 200
    assert job.cost == Draft.objects.filter(job=job).aggregate(c=Sum("cost"))["c"] > 0


def test_cancel_cancels_the_remote_batches(project, admin_user, batch_env, llm_simulator, tmp_path):
    llm_simulator.configure(batch_delay_s=120)
    SampleFactory.create_numbered(100, project=project)
    job = service.job_create(project=project, kind="draft", selection={}, user=admin_user, mode="batch")
    worker = start_worker(tmp_path, batch_env, pool="prefork", concurrency=2)
    try:
        assert worker.wait_for(polled(job, parts=2), timeout=60), worker.output()
        service.job_cancel(job=job)
        wait_until_settled(worker, job, timeout=60)
        assert worker.wait_for(
            lambda: not BatchPart.objects.filter(job=job).exclude(state=BatchPart.State.CANCELLED).exists(),
            timeout=30,
        ), worker.output()
    finally:
        worker.stop()
    assert job.state == Job.State.CANCELLED
    assert llm_simulator.stats()["batch"]["cancelled"] == 2
    assert llm_simulator.stats()["batch"]["batches_by_status"] == {"cancelled": 2}
    assert set(JobItem.objects.filter(job=job).values_list("state", flat=True)) == {JobItem.State.CANCELLED}
    assert not Draft.objects.filter(job=job).exists()
