"""Batch mode run step by step in this process against the simulator's Batch API over HTTP: parts
under the limits, the same requests and stored drafts as the live path, failed and unusable lines
asked again live, the batch price, steps resumed after a lost worker, cancel and the budget. No
broker: a message a step would send stays unsent, and the test runs what it would have run."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.drafting.pricing import cost_of
from feedback.errors import InvalidInput
from feedback.jobs import batch, service
from feedback.jobs.models import BatchPart, Job, JobItem
from tests.conftest import token_client
from tests.factories import SampleFactory
from tests.feedback.job_helpers import assert_each_item_settled_once, successful_drafts_per_turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_settings(settings, llm_simulator):
    settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = llm_simulator.url
    settings.LLM_TIMEOUT = 2.0
    settings.JOB_BATCH_POLL_INTERVAL = 0.2
    settings.JOB_BATCH_TIMEOUT = 10.0
    llm_simulator.configure(batch_delay_s=0.5)  # a first look finds every batch in progress
    return settings


def batch_job(project, **extra) -> Job:
    job = service.job_create(project=project, kind="draft", selection={}, mode="batch", **extra)
    service.job_dispatch(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING
    return job


def tick(job: Job) -> None:
    batch.job_batch_tick(job_id=job.pk, chain=False)
    job.refresh_from_db()


def wait_remote(llm_simulator, count: int = 1, timeout: float = 20) -> None:
    """Until ``count`` of the simulator's batches have ended."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        by_status = llm_simulator.stats()["batch"]["batches_by_status"]
        if sum(by_status.get(s, 0) for s in ("completed", "failed", "cancelled", "expired")) >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"the simulator's batches did not end: {llm_simulator.stats()['batch']}")


def run_live(job: Job) -> int:
    """Run the items the batch path handed to the live path (their messages stayed unsent)."""
    ran = 0
    for item in JobItem.objects.filter(job=job, state=JobItem.State.QUEUED).exclude(token__startswith="batch-"):
        service.item_run(item_id=item.pk, token=item.token)
        ran += 1
    return ran


def test_a_batch_job_stores_what_the_live_path_stores_at_the_batch_price(project, batch_settings, llm_simulator):
    SampleFactory.create_numbered(12, project=project, turns=2)
    job = batch_job(project)
    assert job.mode == Job.Mode.BATCH
    assert not JobItem.objects.filter(job=job).exclude(state=JobItem.State.PENDING).exists(), "nothing sent live"
    tick(job)
    part = BatchPart.objects.get(job=job)
    assert (part.state, part.requests) == (BatchPart.State.SUBMITTED, 24)
    assert part.input_file_id and part.remote_id
    assert JobItem.objects.filter(job=job, part=part, token=f"batch-{part.pk}").count() == 24
    wait_remote(llm_simulator)
    tick(job)

    part.refresh_from_db()
    assert (part.state, part.stored, part.to_live) == (BatchPart.State.DONE, 24, 0)
    assert job.state == Job.State.COMPLETED
    assert llm_simulator.stats()["requests"] == 0, "no live call"
    assert llm_simulator.stats()["batch"]["lines"] == 24
    assert llm_simulator.stats()["batch"]["files_held"] == 0, "input, output and error files removed"
    per_turn = successful_drafts_per_turn(job)
    assert len(per_turn) == 24 and set(per_turn.values()) == {1}
    drafts = list(Draft.objects.filter(job=job))
    for draft in drafts:
        assert draft.status == CallStatus.OK and draft.simulated and draft.calls == 1
        assert draft.cost == cost_of(draft.model, draft.tokens_in, draft.tokens_out) / 2 > 0
    totals = Draft.objects.filter(job=job).aggregate(cost=Sum("cost"), tokens_in=Sum("tokens_in"))
    assert (job.cost, job.tokens_in) == (totals["cost"], totals["tokens_in"])

    # The same turns drafted live ask the same requests: the simulator answers them word for word.
    live = service.job_create(project=project, kind="draft", selection={"status": "all"})
    service.job_dispatch(job_id=live.pk)
    for item in JobItem.objects.filter(job=live):
        item.refresh_from_db()
        service.item_run(item_id=item.pk, token=item.token)
    live_drafts = {d.turn_id: d for d in Draft.objects.filter(job=live)}
    assert len(live_drafts) == 24
    for draft in drafts:
        twin = live_drafts[draft.turn_id]
        assert (draft.raw_output, draft.critique, draft.scores, draft.overall) == (
            twin.raw_output,
            twin.critique,
            twin.scores,
            twin.overall,
        )
        assert (draft.prompt_version, draft.prompt_hash, draft.params) == (
            twin.prompt_version,
            twin.prompt_hash,
            twin.params,
        )
        assert draft.tokens_in == twin.tokens_in and draft.cost * 2 == twin.cost


def test_parts_keep_under_the_requests_and_bytes_limits(project, batch_settings, llm_simulator):
    batch_settings.JOB_BATCH_MAX_REQUESTS = 5
    SampleFactory.create_numbered(13, project=project)
    job = batch_job(project)
    tick(job)
    parts = list(BatchPart.objects.filter(job=job).order_by("number"))
    assert [p.requests for p in parts] == [5, 5, 3]
    assert {p.state for p in parts} == {BatchPart.State.SUBMITTED}
    one_line = max(p.bytes / p.requests for p in parts)
    wait_remote(llm_simulator, count=len(parts))
    tick(job)
    assert job.state == Job.State.COMPLETED and len(successful_drafts_per_turn(job)) == 13

    batch_settings.JOB_BATCH_MAX_BYTES = int(one_line * 2.5)
    other = SampleFactory.create_numbered(6, project=project, prefix="o")
    assert other
    job2 = service.job_create(project=project, kind="draft", selection={"status": "never"}, mode="batch")
    service.job_dispatch(job_id=job2.pk)
    tick(job2)
    sizes = list(BatchPart.objects.filter(job=job2).values_list("requests", "bytes"))
    assert sum(n for n, _ in sizes) == 6
    assert all(size <= batch_settings.JOB_BATCH_MAX_BYTES for _, size in sizes), sizes
    assert max(n for n, _ in sizes) == 2

    wait_remote(llm_simulator, count=len(parts) + len(sizes))
    tick(job2)
    assert job2.state == Job.State.COMPLETED and len(successful_drafts_per_turn(job2)) == 6


def test_failed_lines_are_asked_again_live(project, batch_settings, llm_simulator):
    llm_simulator.configure(batch_fail_rate=0.4, seed=5)
    SampleFactory.create_numbered(20, project=project)
    job = batch_job(project)
    tick(job)
    wait_remote(llm_simulator)
    tick(job)
    part = BatchPart.objects.get(job=job)
    failed = llm_simulator.stats()["batch"]["failed_lines"]
    assert failed > 0 and part.failed == failed
    assert (part.state, part.stored, part.to_live) == (BatchPart.State.DONE, 20 - failed, failed)
    handed = JobItem.objects.filter(job=job, state=JobItem.State.QUEUED)
    assert handed.count() == failed
    assert all("HTTP 500" in e for e in handed.values_list("error", flat=True))
    assert job.state == Job.State.RUNNING
    assert run_live(job) == failed
    job.refresh_from_db()
    assert job.state == Job.State.COMPLETED
    assert llm_simulator.stats()["completed"] == failed, "each failed line asked live once"
    assert_each_item_settled_once(job)
    assert set(successful_drafts_per_turn(job).values()) == {1} and len(successful_drafts_per_turn(job)) == 20


def test_an_unusable_answer_is_kept_as_a_failed_draft_and_asked_again_live(project, batch_settings, llm_simulator):
    llm_simulator.configure(fault_missing_field=1.0)
    SampleFactory.create_numbered(4, project=project)
    job = batch_job(project)
    tick(job)
    wait_remote(llm_simulator)
    tick(job)
    failed = Draft.objects.filter(job=job, status=CallStatus.FAILED)
    assert failed.count() == 4
    assert all("asked again live" in d.error and d.raw_output for d in failed)
    llm_simulator.configure(fault_missing_field=0.0)
    assert run_live(job) == 4
    job.refresh_from_db()
    assert job.state == Job.State.COMPLETED
    assert len(successful_drafts_per_turn(job)) == 4 and set(successful_drafts_per_turn(job).values()) == {1}


def test_a_repaired_answer_is_stored_as_repaired(project, batch_settings, llm_simulator):
    llm_simulator.configure(fault_malformed=1.0, seed=1)
    SampleFactory.create_numbered(6, project=project)
    job = batch_job(project)
    tick(job)
    wait_remote(llm_simulator)
    tick(job)
    statuses = set(Draft.objects.filter(job=job).values_list("status", flat=True))
    assert CallStatus.REPAIRED in statuses


def test_lost_steps_resume_without_a_second_batch_or_draft(project, batch_settings, llm_simulator):
    SampleFactory.create_numbered(8, project=project)
    job = batch_job(project)
    tick(job)
    part = BatchPart.objects.get(job=job)
    remote_id = part.remote_id
    # The worker was lost after the batch was created and before its id was recorded.
    BatchPart.objects.filter(pk=part.pk).update(state=BatchPart.State.UPLOADED, remote_id="")
    tick(job)
    part.refresh_from_db()
    assert (part.state, part.remote_id) == (BatchPart.State.SUBMITTED, remote_id)
    assert llm_simulator.stats()["batch"]["batches"] == 1, "found by its input file, not made twice"
    wait_remote(llm_simulator)
    tick(job)
    assert job.state == Job.State.COMPLETED
    # ... and lost again while reading: read once more, nothing stored twice.
    BatchPart.objects.filter(pk=part.pk).update(state=BatchPart.State.READING)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING)
    part.refresh_from_db()
    assert part.output_file_id
    tick(job)
    part.refresh_from_db()
    assert Draft.objects.filter(job=job).count() == 8
    assert set(successful_drafts_per_turn(job).values()) == {1}


def test_a_part_whose_upload_was_lost_is_written_and_sent_again(project, batch_settings, llm_simulator):
    SampleFactory.create_numbered(5, project=project)
    job = batch_job(project)
    tick(job)
    part = BatchPart.objects.get(job=job)
    BatchPart.objects.filter(pk=part.pk).update(state=BatchPart.State.WRITING, input_file_id="", remote_id="")
    tick(job)
    part.refresh_from_db()
    assert part.state == BatchPart.State.SUBMITTED and part.requests == 5
    wait_remote(llm_simulator, count=2)
    tick(job)
    assert job.state == Job.State.COMPLETED
    assert len(successful_drafts_per_turn(job)) == 5 and set(successful_drafts_per_turn(job).values()) == {1}


def test_a_step_held_by_another_worker_is_left_alone(project, batch_settings, llm_simulator):
    SampleFactory.create_numbered(3, project=project)
    job = batch_job(project)
    tick(job)
    part = BatchPart.objects.get(job=job)
    wait_remote(llm_simulator)
    token = batch._claim(part)
    assert token is not None
    tick(job)
    part.refresh_from_db()
    assert part.state == BatchPart.State.SUBMITTED, "leased elsewhere: not polled"
    BatchPart.objects.filter(pk=part.pk).update(lease_until=None)
    tick(job)
    assert job.state == Job.State.COMPLETED


def test_cancel_cancels_the_remote_batch(project, batch_settings, llm_simulator):
    llm_simulator.configure(batch_delay_s=60)
    SampleFactory.create_numbered(6, project=project)
    job = batch_job(project)
    tick(job)
    part = BatchPart.objects.get(job=job)
    assert part.state == BatchPart.State.SUBMITTED
    service.job_cancel(job=job)
    tick(job)
    part.refresh_from_db()
    assert part.state == BatchPart.State.CANCELLED
    assert part.remote_status in ("cancelling", "cancelled")
    assert llm_simulator.stats()["batch"]["cancelled"] == 1
    assert job.state == Job.State.CANCELLED
    assert set(JobItem.objects.filter(job=job).values_list("state", flat=True)) == {JobItem.State.CANCELLED}
    assert not Draft.objects.filter(job=job).exists()


def test_pause_sends_nothing_new_and_resume_goes_on(project, batch_settings, llm_simulator):
    batch_settings.JOB_BATCH_MAX_REQUESTS = 3
    batch_settings.JOB_BATCH_OPEN_PARTS = 1
    SampleFactory.create_numbered(6, project=project)
    job = batch_job(project)
    tick(job)
    assert BatchPart.objects.filter(job=job).count() == 1
    service.job_pause(job=job)
    wait_remote(llm_simulator)
    tick(job)
    assert BatchPart.objects.filter(job=job).count() == 1, "no new part while paused"
    assert Draft.objects.filter(job=job).count() == 3, "what ran remotely is stored"
    service.job_resume(job=job)
    tick(job)
    wait_remote(llm_simulator, count=2)
    tick(job)
    assert job.state == Job.State.COMPLETED and len(successful_drafts_per_turn(job)) == 6


def test_the_budget_holds_parts_back(project, batch_settings, llm_simulator):
    batch_settings.LLM_MAX_TOKENS = 300
    SampleFactory.create_numbered(40, project=project)
    job = batch_job(project, budget=Decimal("0.002"))
    tick(job)
    part = BatchPart.objects.get(job=job)
    assert 0 < part.requests < 40, "only what the budget covers at its worst"
    assert part.reserved_cost > 0
    wait_remote(llm_simulator)
    tick(job)
    job.refresh_from_db()
    assert job.budget is not None and job.cost <= job.budget
    assert job.cost == Draft.objects.filter(job=job).aggregate(c=Sum("cost"))["c"]
    assert job.state == Job.State.PAUSED and "budget" in job.stop_reason


def test_the_mode_is_checked_at_every_door(project, admin_user, batch_settings):
    with pytest.raises(InvalidInput) as caught:
        service.job_create(project=project, kind="draft", selection={}, mode="bulk")
    assert caught.value.field == "mode"
    api = token_client(admin_user)
    response = api.post(f"/api/projects/{project.slug}/jobs/", {"kind": "draft", "mode": "bulk"}, format="json")
    assert response.status_code == 400 and "mode" in json.dumps(response.json())
    response = api.post(f"/api/projects/{project.slug}/jobs/", {"kind": "draft", "mode": "batch"}, format="json")
    assert response.status_code == 202 and response.json()["mode"] == "batch"
    assert Job.objects.get(pk=response.json()["id"]).mode == Job.Mode.BATCH
    call_command("run_job", "--project", project.slug, "--kind", "draft", "--mode", "batch", "--no-wait")
    assert Job.objects.order_by("-pk").values_list("mode", flat=True).first() == Job.Mode.BATCH
    with pytest.raises(CommandError):
        call_command("run_job", "--project", project.slug, "--mode", "bulk", "--no-wait")


def test_the_job_page_and_api_show_the_batches(project, admin_user, batch_settings, llm_simulator, client):
    batch_settings.JOB_BATCH_MAX_REQUESTS = 2
    SampleFactory.create_numbered(3, project=project)
    job = batch_job(project)
    tick(job)
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.slug}/jobs/{job.pk}/").content.decode()
    assert 'id="batches"' in page and page.count("<td>submitted</td>") == 2
    body = token_client(admin_user).get(f"/api/projects/{project.slug}/jobs/{job.pk}/").json()
    assert body["mode"] == "batch"
    progress = body["progress"]
    assert progress["mode"] == "batch"
    assert [(p["number"], p["requests"], p["state"]) for p in progress["batches"]] == [
        (1, 2, "submitted"),
        (2, 1, "submitted"),
    ]


def test_one_poller_per_job(project, batch_settings, llm_simulator):
    SampleFactory.create_numbered(2, project=project)
    job = batch_job(project)
    batch.job_batch_tick(job_id=job.pk)
    job.refresh_from_db()
    mark = job.batch_ticked_at
    assert mark is not None and BatchPart.objects.filter(job=job).count() == 1
    batch.job_batch_tick(job_id=job.pk)  # a second poller finds the job freshly polled and stops
    job.refresh_from_db()
    assert job.batch_ticked_at == mark and BatchPart.objects.filter(job=job).count() == 1

    # A poller presumed lost, whose mark another one took over, stops at its next renewal.
    beat = batch._Beat(job.pk, mark)
    Job.objects.filter(pk=job.pk).update(batch_ticked_at=mark + timedelta(seconds=1))
    beat.stamp = mark - timedelta(seconds=10)
    with pytest.raises(batch._Superseded):
        beat()


def test_a_respond_job_in_batch_mode_runs_the_dress_loop(project, batch_settings, llm_simulator):
    SampleFactory.create_numbered(4, project=project, turns=1, turns__awaiting_last=True)
    job = service.job_create(project=project, kind="respond", selection={}, rounds=2, mode="batch")
    service.job_dispatch(job_id=job.pk)
    job.refresh_from_db()
    calls = []
    for _ in range(8):  # respond, draft, respond, draft: one part each, each looked at twice
        tick(job)
        calls = list(BatchPart.objects.filter(job=job).order_by("number").values_list("call", flat=True))
        if job.state == Job.State.COMPLETED:
            break
        wait_remote(llm_simulator, count=len(calls))
    assert job.state == Job.State.COMPLETED, (job.state, calls)
    assert calls == ["respond", "draft", "respond", "draft"]
    assert llm_simulator.stats()["requests"] == 0, "no live call"
    per_turn = successful_drafts_per_turn(job)
    assert len(per_turn) == 8 and set(per_turn.values()) == {1}, "two rounds of four samples"
    for sample in project.samples.all():
        turns = list(sample.turns.order_by("index"))
        assert len(turns) == 2 and all(t.model_response for t in turns)
        first_draft = Draft.objects.get(job=job, turn=turns[0])
        assert turns[1].user_message == first_draft.refinement, "the refinement is the next question"
    generations = Generation.objects.filter(job=job)
    assert generations.count() == 8
    assert all(g.cost == cost_of(g.model, g.tokens_in, g.tokens_out) / 2 for g in generations)


def test_cancel_after_the_remote_batch_ended_cancels_nothing_remotely(project, batch_settings, llm_simulator):
    SampleFactory.create_numbered(3, project=project)
    job = batch_job(project)
    tick(job)
    wait_remote(llm_simulator)
    service.job_cancel(job=job)
    tick(job)
    part = BatchPart.objects.get(job=job)
    assert (part.state, part.remote_status, part.error) == (BatchPart.State.CANCELLED, "completed", "")
    assert llm_simulator.stats()["batch"]["cancelled"] == 0
    assert job.state == Job.State.CANCELLED and not Draft.objects.filter(job=job).exists()
