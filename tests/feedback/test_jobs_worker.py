"""Jobs run by real Celery workers on the configured broker, against the LLM simulator over real
HTTP: every selected turn drafted exactly once, with faults, through a SIGKILL, paused, resumed,
cancelled and held to a budget, and the API key nowhere to be found."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.apps import apps
from django.db.models import Sum
from django.test import Client

from feedback.drafting.models import CallStatus, Draft
from feedback.jobs import service
from feedback.jobs.models import Job, JobItem
from feedback.models import Sample, Turn
from tests.conftest import make_user
from tests.factories import SampleFactory
from tests.feedback.job_helpers import assert_each_item_settled_once, successful_drafts_per_turn
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def job_env(settings, llm_simulator):
    """The same short timings for the test process (which creates jobs) and the worker."""
    values = {
        "ANNOTATOR_LLM_BASE_URL": llm_simulator.url,
        "ANNOTATOR_LLM_TIMEOUT": "1",
        "ANNOTATOR_LLM_BACKOFF_BASE": "0.05",
        "ANNOTATOR_LLM_BACKOFF_MAX": "0.5",
        "ANNOTATOR_LLM_MAX_ATTEMPTS": "5",
        "ANNOTATOR_JOB_LEASE": "8",
        "ANNOTATOR_JOB_WATCH_INTERVAL": "1",
        "ANNOTATOR_JOB_WINDOW": "16",
        "ANNOTATOR_RATE_LIMIT_MAX_WAIT": "1",
    }
    settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = llm_simulator.url
    settings.LLM_TIMEOUT = 1.0
    settings.JOB_WATCH_INTERVAL = 1.0
    settings.JOB_LEASE = 8.0
    return values


def start_worker(tmp_path, env, name="worker", **options) -> WorkerProcess:
    return WorkerProcess("default,llm", log_path=tmp_path / f"{name}.log", env=env, **options)


def wait_until_settled(worker: WorkerProcess, job: Job, timeout: float, states=Job.FINAL_STATES) -> None:
    def settled():
        job.refresh_from_db()
        return job.state in states

    if not worker.wait_for(settled, timeout=timeout):
        open_items = JobItem.objects.filter(job=job).exclude(state__in=JobItem.FINAL)
        details = list(open_items.values_list("pk", "state", "token", "attempts", "throttled", "error")[:20])
        pytest.fail(f"job {job.pk} is still {job.state}; open items {details}\n{worker.output()}")


def test_a_job_drafts_every_selected_turn_exactly_once(project, admin_user, job_env, llm_simulator, tmp_path):
    SampleFactory.create_numbered(30, project=project, target_criterion="helpfulness", turns=2)
    SampleFactory.create_numbered(5, project=project, target_criterion="honesty", prefix="other")
    SampleFactory.create_numbered(
        5, project=project, target_criterion="helpfulness", turns__awaiting_last=True, prefix="prompt"
    )
    job = service.job_create(project=project, kind="draft", selection={"criterion": "helpfulness"}, user=admin_user)

    worker = start_worker(tmp_path, job_env, pool="prefork", concurrency=3)
    try:
        wait_until_settled(worker, job, timeout=120)
    finally:
        worker.stop()

    selected = Turn.objects.filter(
        sample__target_criterion="helpfulness", model_response__isnull=False, sample__project=project
    )
    assert job.state == Job.State.COMPLETED
    assert job.total == selected.count() == 60
    per_turn = successful_drafts_per_turn(job)
    assert set(per_turn) == set(selected.values_list("pk", flat=True))
    assert set(per_turn.values()) == {1}
    assert llm_simulator.stats()["completed"] == 60, "each turn asked for once, no duplicate calls"
    drafts = Draft.objects.filter(job=job)
    totals = drafts.aggregate(tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), cost=Sum("cost"))
    assert (job.tokens_in, job.tokens_out) == (totals["tokens_in"], totals["tokens_out"])
    assert job.cost == totals["cost"] > 0
    assert all(d.simulated and d.status == CallStatus.OK for d in drafts)
    assert not Draft.objects.filter(turn__sample__target_criterion="honesty").exists()


def test_with_faults_every_turn_ends_drafted_or_failed_with_its_reason(
    project, admin_user, job_env, llm_simulator, tmp_path
):
    llm_simulator.configure(
        fault_429=0.20, fault_5xx=0.05, fault_hang=0.05, hang_seconds=3, fault_malformed=0.05, retry_after=1, seed=7
    )
    SampleFactory.create_numbered(120, project=project)
    job = service.job_create(project=project, kind="draft", selection={}, user=admin_user)

    worker = start_worker(tmp_path, job_env, pool="prefork", concurrency=4)
    try:
        wait_until_settled(worker, job, timeout=240)
    finally:
        worker.stop()

    assert job.state == Job.State.COMPLETED
    assert JobItem.objects.filter(job=job).count() == 120
    assert_each_item_settled_once(job)
    faults = llm_simulator.stats()["faults"]
    assert faults["429"] > 0 and faults["5xx"] > 0 and faults["hang"] > 0 and faults["malformed"] > 0
    assert JobItem.objects.filter(job=job, throttled__gt=0).exists()
    done = JobItem.objects.filter(job=job, state=JobItem.State.DONE).count()
    assert done >= 100, "with five attempts, most turns get through these fault rates"
    repaired_or_reasked = Draft.objects.filter(job=job, status__in=[CallStatus.REPAIRED, CallStatus.REASKED])
    assert repaired_or_reasked.exists(), "malformed answers were repaired or re-asked"


def test_a_worker_killed_mid_job_then_restarted_leaves_each_turn_drafted_once(
    project, admin_user, job_env, llm_simulator, tmp_path
):
    llm_simulator.configure(latency_ms=20, latency_ms_max=60)
    SampleFactory.create_numbered(1000, project=project)
    job = service.job_create(project=project, kind="draft", selection={}, user=admin_user)

    first = start_worker(tmp_path, job_env, name="first", pool="prefork", concurrency=4)
    assert first.wait_for(lambda: Draft.objects.filter(job=job).count() >= 250, timeout=180), first.output()
    first.kill()
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING, (job.state, job.stop_reason, first.output())
    assert JobItem.objects.filter(job=job, state=JobItem.State.DONE).count() < 1000
    lost = JobItem.objects.filter(job=job, state__in=JobItem.IN_FLIGHT).count()

    second = start_worker(tmp_path, job_env, name="second", pool="prefork", concurrency=4)
    try:
        wait_until_settled(second, job, timeout=300)
    finally:
        second.stop()

    states = dict(JobItem.objects.filter(job=job).values_list("state").annotate(n=Sum(1)))
    assert lost > 0, "the kill caught items in flight"
    assert job.state == Job.State.COMPLETED, (job.state, states)
    assert states == {JobItem.State.DONE: 1000}, states
    per_turn = successful_drafts_per_turn(job)
    assert len(per_turn) == 1000 and set(per_turn.values()) == {1}, [t for t, n in per_turn.items() if n > 1]


def test_pause_resume_and_cancel(project, admin_user, job_env, llm_simulator, tmp_path):
    llm_simulator.configure(latency_ms=100)
    SampleFactory.create_numbered(400, project=project)
    job = service.job_create(project=project, kind="draft", selection={}, user=admin_user)
    worker = start_worker(tmp_path, job_env, pool="prefork", concurrency=2)
    try:
        assert worker.wait_for(lambda: Draft.objects.filter(job=job).count() >= 10, timeout=60), worker.output()
        service.job_pause(job=job)
        # Calls already in flight finish; then nothing moves.
        assert worker.wait_for(
            lambda: not JobItem.objects.filter(job=job, state__in=JobItem.IN_FLIGHT).exists(), timeout=30
        ), worker.output()
        paused_at = Draft.objects.filter(job=job).count()
        requests = llm_simulator.stats()["requests"]
        time.sleep(2)
        assert Draft.objects.filter(job=job).count() == paused_at
        assert llm_simulator.stats()["requests"] == requests
        job.refresh_from_db()
        assert job.state == Job.State.PAUSED and paused_at < 400

        service.job_resume(job=job)
        assert worker.wait_for(lambda: Draft.objects.filter(job=job).count() >= paused_at + 10, timeout=60)

        service.job_cancel(job=job)
        wait_until_settled(worker, job, timeout=30)
        assert job.state == Job.State.CANCELLED
        done = Draft.objects.filter(job=job).count()
        requests = llm_simulator.stats()["requests"]
        time.sleep(2)
        assert Draft.objects.filter(job=job).count() == done and llm_simulator.stats()["requests"] == requests
    finally:
        worker.stop()
    states = dict(JobItem.objects.filter(job=job).values_list("state").annotate(n=Sum(1)))
    assert set(states) == {JobItem.State.DONE, JobItem.State.CANCELLED}
    assert states[JobItem.State.DONE] == done < 400
    assert_each_item_settled_once_or_cancelled(job)


def assert_each_item_settled_once_or_cancelled(job: Job) -> None:
    per_turn = successful_drafts_per_turn(job)
    assert set(per_turn.values()) == {1}
    for item in JobItem.objects.filter(job=job):
        assert (item.state == JobItem.State.DONE) == (per_turn[item.turn_id] == 1)


def test_the_budget_cap_holds(project, admin_user, job_env, llm_simulator, tmp_path, settings):
    settings.LLM_MAX_TOKENS = 300
    SampleFactory.create_numbered(80, project=project)
    budget = Decimal("0.02")
    job = service.job_create(project=project, kind="draft", selection={}, user=admin_user, budget=budget)
    worker = start_worker(tmp_path, job_env, pool="prefork", concurrency=3)
    try:
        wait_until_settled(worker, job, timeout=90, states=(Job.State.PAUSED, *Job.FINAL_STATES))
        assert job.state == Job.State.PAUSED, "the budget ran out before the job"
        assert "budget" in job.stop_reason
        # Calls under way when the budget ran out finish and are stored (each reserved its worst-case
        # cost first); messages still on the broker hand their items back without a call.
        assert worker.wait_for(
            lambda: not JobItem.objects.filter(job=job, state__in=JobItem.IN_FLIGHT).exists(), timeout=30
        )
        job.refresh_from_db()
        spent = Draft.objects.filter(job=job).aggregate(total=Sum("cost"))["total"]
        assert job.cost == spent <= budget
        assert 0 < Draft.objects.filter(job=job).count() < 80

        service.job_resume(job=job, budget="1.00")
        wait_until_settled(worker, job, timeout=90)
    finally:
        worker.stop()
    assert job.state == Job.State.COMPLETED
    assert Draft.objects.filter(job=job).count() == 80 and job.cost <= Decimal("1.00")


def test_the_api_key_never_appears_in_the_database_logs_or_pages(
    project, admin_user, job_env, llm_simulator, tmp_path, settings
):
    key = "sk-live-NEVER-SHOW-4242"
    settings.LLM_API_KEY = key
    llm_simulator.configure(require_key=key, fault_5xx=0.2, seed=3)
    SampleFactory.create_numbered(12, project=project, turns__awaiting_last=True, turns=2)
    job = service.job_create(project=project, kind="respond", selection={}, rounds=2, user=admin_user)
    env = {**job_env, "ANNOTATOR_LLM_API_KEY": key, "LOG_LEVEL": "DEBUG"}
    worker = start_worker(tmp_path, env, loglevel="DEBUG")
    try:
        wait_until_settled(worker, job, timeout=120)
    finally:
        worker.stop()

    assert job.state == Job.State.COMPLETED
    errors = list(JobItem.objects.filter(job=job).exclude(error="").values_list("error", flat=True))
    assert Draft.objects.filter(job=job).exclude(status=CallStatus.FAILED).count() >= 12, errors
    assert llm_simulator.stats()["unauthorized"] == 0
    log = (tmp_path / "worker.log").read_text(errors="replace")
    assert "HTTP Request" in log or "llm_item_run" in log, "the log is the worker's"
    assert key not in log
    for model in apps.get_app_config("feedback").get_models():
        for row in model._default_manager.all().values():
            assert key not in repr(row), f"the key is stored in {model.__name__}"

    admin = make_user("root", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(admin)
    sample = Sample.objects.filter(project=project).first()
    assert sample is not None
    urls = [
        f"/projects/{project.slug}/",
        f"/projects/{project.slug}/jobs/",
        f"/projects/{project.slug}/jobs/new/",
        f"/projects/{project.slug}/jobs/{job.pk}/",
        f"/projects/{project.slug}/jobs/{job.pk}/?format=json",
        f"/projects/{project.slug}/samples/{sample.pk}/",
        f"/api/projects/{project.slug}/jobs/{job.pk}/",
        f"/admin/feedback/job/{job.pk}/change/",
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert key not in response.content.decode(), url
