"""Trials run by a real Celery worker on the configured broker, against the LLM simulator over real
HTTP: every variant drafts every turn of the set once, the review queue and the project's drafts
untouched; with faults and a worker killed mid-trial, still once."""

from __future__ import annotations

import pytest

from feedback.drafting import prompts, versions
from feedback.drafting.models import Draft
from feedback.review.models import Assignment, QueueItem, Revision
from feedback.trials import service
from feedback.trials.models import Trial, TrialDraft
from quality.trials import trial_figures
from tests.feedback.test_jobs_worker import job_env, start_worker  # noqa: F401
from tests.quality.quality_helpers import Review, SamplePlan, TurnPlan, build, reviewers
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

V1 = prompts.FEEDBACK_V1


@pytest.fixture
def env(job_env, settings):  # noqa: F811 (the fixture imported above)
    """The jobs' short timings and window, for the test process and the worker alike."""
    settings.JOB_WINDOW = 16
    return job_env


VARIANTS = [{"prompt_version": "v1"}, {"prompt_version": "v2", "temperature": 0.9}]


def reviewed(project, count: int) -> None:
    (ann,) = reviewers(project, "ann")
    draft = {"helpfulness": 5, "honesty": 6, "harmlessness": 7}
    plan = [TurnPlan(draft, decision="edited", final={"helpfulness": 4, "honesty": 6, "harmlessness": 7})]
    build(project, [SamplePlan([Review(ann, plan)]) for _ in range(count)])
    versions.prompt_version_create(project=project, system=V1.system, user=V1.user + "\nBe brief.", note="brief")


def wait_until_done(worker: WorkerProcess, trial: Trial, timeout: float) -> None:
    def done():
        trial.refresh_from_db()
        return trial.state == Trial.State.COMPLETED

    if not worker.wait_for(done, timeout=timeout):
        open_rows = TrialDraft.objects.filter(variant__trial=trial, state__in=TrialDraft.OPEN)
        details = list(open_rows.values_list("pk", "state", "attempts", "error")[:20])
        pytest.fail(f"trial {trial.pk} is still {trial.state}; open {details}\n{worker.output()}")


def test_a_two_variant_trial_on_50_reviewed_samples_drafts_each_turn_once_per_variant(
    project, admin_user, env, llm_simulator, tmp_path
):
    reviewed(project, 50)
    before = (
        Draft.objects.count(),
        Assignment.objects.count(),
        Revision.objects.count(),
        list(QueueItem.objects.order_by("pk").values_list("pk", "open", "reviews_done", "holding")),
    )
    trial = service.trial_create(project=project, user=admin_user, set={"kind": "reviewed", "n": 50}, variants=VARIANTS)
    worker = start_worker(tmp_path, env, pool="prefork", concurrency=3)
    try:
        wait_until_done(worker, trial, timeout=180)
    finally:
        worker.stop()

    rows = TrialDraft.objects.filter(variant__trial=trial)
    assert rows.count() == 100 and set(rows.values_list("state", flat=True)) == {TrialDraft.State.DONE}
    assert llm_simulator.stats()["completed"] == 100, "each variant asked once per turn"
    assert (
        Draft.objects.count(),
        Assignment.objects.count(),
        Revision.objects.count(),
        list(QueueItem.objects.order_by("pk").values_list("pk", "open", "reviews_done", "holding")),
    ) == before
    figures = trial_figures(trial)
    assert [(v["prompt_version"], v["done"], v["gold"]) for v in figures["variants"]] == [
        ("v1", 50, 50),
        ("v2", 50, 50),
    ]
    assert all(v["agreement"]["kappa"]["n"] == 150 for v in figures["variants"])


def test_with_faults_and_a_worker_killed_mid_trial_every_turn_is_drafted_once_per_variant(
    project, admin_user, env, llm_simulator, tmp_path
):
    reviewed(project, 30)
    llm_simulator.configure(fault_5xx=0.15, fault_429=0.1, retry_after=0.2, latency_ms=40, seed=7)
    trial = service.trial_create(project=project, user=admin_user, set={"kind": "reviewed", "n": 30}, variants=VARIANTS)
    first = start_worker(tmp_path, env, name="first", pool="prefork", concurrency=3)
    try:
        finished = TrialDraft.objects.filter(variant__trial=trial, state=TrialDraft.State.DONE)
        assert first.wait_for(lambda: finished.count() >= 10, timeout=90), first.output()
    finally:
        first.kill()
    second = start_worker(tmp_path, env, name="second", pool="prefork", concurrency=3)
    try:
        wait_until_done(second, trial, timeout=240)
    finally:
        second.stop()

    rows = TrialDraft.objects.filter(variant__trial=trial)
    assert rows.count() == 60
    states = dict(rows.values_list("pk", "state"))
    failed = rows.filter(state=TrialDraft.State.FAILED)
    assert all(row.error for row in failed), "a failed draft says why"
    assert set(states.values()) <= {TrialDraft.State.DONE, TrialDraft.State.FAILED}
    assert rows.filter(state=TrialDraft.State.DONE).count() >= 50
    assert not Draft.objects.filter(created_at__gte=trial.created_at).exists(), "no project draft"
