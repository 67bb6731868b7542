"""Job pages and the jobs API, on the rows alone (no worker runs here): roles, the launch form,
progress, the admin actions, the sample page's drafts, query counts, run_job and the selection."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import timedelta
from decimal import Decimal

import factory
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from feedback import selectors
from feedback.drafting.models import CallStatus
from feedback.jobs.models import Job, JobItem
from feedback.jobs.selection import Selection, samples_to_respond, turns_to_draft
from feedback.jobs.selectors import RATE_WINDOW
from feedback.jobs.service import JobStateError, job_act, job_create
from feedback.models import ImportBatch, Project, Role, Sample, Turn
from tests.conftest import make_user, token_client
from tests.factories import DraftFactory, TurnFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-test-SECRET-123"
XSS_ID = "<script>alert(1)</script>"
XSS_ERROR = 'HTTP 500: <img src=x onerror="alert(2)">'


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The users of these tests log in with force_login: a slow password hash would only cost time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- helpers ---------------------------------------------------------------------------------------


class JobTurnFactory(TurnFactory):
    """The turns of these tests: one per sample, of an imageless sample with no criterion."""

    class Params:
        question = "What is in the picture?"
        answer = "A bus."

    sample__image = None
    sample__target_criterion = ""
    sample__reference_answer = ""


def new_job(project: Project, user=None, **kwargs) -> Job:
    kwargs.setdefault("kind", "draft")
    kwargs.setdefault("selection", {})
    return job_create(project=project, user=user, **kwargs)


def set_running(job: Job, *, total: int = 0, seconds_ago: float = 30) -> Job:
    Job.objects.filter(pk=job.pk).update(
        state=Job.State.RUNNING, started_at=timezone.now() - timedelta(seconds=seconds_ago), total=total
    )
    job.refresh_from_db()
    return job


def add_items(job: Job, turns: list[Turn], state: str, *, error: str = "", ago: float = 0) -> list[JobItem]:
    at = timezone.now() - timedelta(seconds=ago)
    return JobItem.objects.bulk_create(
        [JobItem(job=job, turn=t, state=state, error=error, updated_at=at) for t in turns]
    )


class JobDraftFactory(DraftFactory):
    """The drafts of these tests: a short critique, no refinement, no scores unless told."""

    critique = "Good."
    refinement = ""
    scores = factory.LazyFunction(dict)


def detail_url(job: Job) -> str:
    return reverse("feedback:job-detail", args=[job.project.slug, job.pk])


def action_url(job: Job, action: str) -> str:
    return reverse("feedback:job-action", args=[job.project.slug, job.pk, action])


def api_url(job: Job | None = None, action: str = "") -> str:
    if job is None:
        return "/api/projects/test/jobs/"
    return f"/api/projects/test/jobs/{job.pk}/" + (f"{action}/" if action else "")


# --- roles -----------------------------------------------------------------------------------------


def _page_requests(job: Job) -> list[tuple[str, str]]:
    return [
        ("get", reverse("feedback:job-list", args=["test"])),
        ("get", reverse("feedback:job-new", args=["test"])),
        ("post", reverse("feedback:job-new", args=["test"])),
        ("get", detail_url(job)),
        ("get", detail_url(job) + "?format=json"),
        ("post", action_url(job, "pause")),
    ]


def _api_requests(job: Job) -> list[tuple[str, str]]:
    return [
        ("get", api_url()),
        ("post", api_url()),
        ("get", api_url(job)),
        ("post", api_url(job, "pause")),
    ]


@pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("researcher", 403), ("outsider", 404)])
def test_jobs_are_for_admins_only(client, project, admin_user, annotator_user, researcher_user, who, status):
    job = new_job(project, admin_user)
    other = Project.objects.create(name="Other", slug="other")
    user = {
        "annotator": annotator_user,
        "researcher": researcher_user,
        "outsider": make_user("olga", project=other, role=Role.ANNOTATOR),
    }[who]
    client.force_login(user)
    for method, url in _page_requests(job):
        assert getattr(client, method)(url).status_code == status, (method, url)
    api = token_client(user)
    for method, url in _api_requests(job):
        body = {"kind": "draft"} if method == "post" else None
        assert getattr(api, method)(url, body, format="json").status_code == status, (method, url)
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED
    assert Job.objects.count() == 1


def test_anonymous_users_are_sent_to_login_or_refused(client, project, admin_user):
    job = new_job(project, admin_user)
    for method, url in _page_requests(job):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response.url.startswith(reverse("login")), (method, url)
    for method, url in _api_requests(job):
        assert getattr(APIClient(), method)(url, {"kind": "draft"}, format="json").status_code == 401, (method, url)
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED


def test_admin_sees_the_job_list(client, project, admin_user):
    job = new_job(project, admin_user)
    client.force_login(admin_user)
    page = client.get(reverse("feedback:job-list", args=["test"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="{detail_url(job)}"' in html
    assert "annotator-simulator" in html
    assert "queued" in html


# --- the launch form -------------------------------------------------------------------------------


def _form_data(**changes) -> dict:
    data = {
        "kind": "draft",
        "criterion": "",
        "status": "never",
        "import_batch": "",
        "sample_ids": "",
        "limit": "",
        "rounds": "1",
        "model": "",
        "endpoint": "",
        "temperature": "",
        "structured": "json_schema",
        "budget": "",
    }
    data.update(changes)
    return data


def test_new_job_form_lists_the_project_criteria(client, project, admin_user, settings):
    settings.LLM_API_KEY = SECRET
    project.criteria = ["accuracy", "tone"]
    project.save()
    client.force_login(admin_user)
    page = client.get(reverse("feedback:job-new", args=["test"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "default (key set)" in html
    assert SECRET not in html
    assert '<option value="accuracy">accuracy</option>' in html
    assert '<option value="tone">tone</option>' in html
    assert "helpfulness" not in html


def test_new_job_form_creates_the_job_without_any_key(client, project, admin_user, settings):
    settings.LLM_API_KEY = SECRET
    settings.RESPONDER_API_KEY = SECRET
    batch = ImportBatch.objects.create(project=project, format="native", file_name="first.jsonl")
    client.force_login(admin_user)
    data = _form_data(
        criterion="honesty",
        import_batch=str(batch.pk),
        sample_ids="s1, s2 s3",
        limit="5",
        temperature="0.5",
        structured="json_object",
        budget="1.5",
    )
    response = client.post(reverse("feedback:job-new", args=["test"]), data)
    job = Job.objects.get()
    assert response.status_code == 302
    assert response.url == detail_url(job)
    assert (job.kind, job.state, job.rounds, job.created_by) == ("draft", "queued", 1, admin_user)
    assert job.budget == Decimal("1.5")
    assert job.selection == {
        "criterion": "honesty",
        "status": "never",
        "import_batch": batch.pk,
        "sample_ids": ["s1", "s2", "s3"],
        "limit": 5,
    }
    drafter = job.llm_settings["drafter"]
    assert drafter["temperature"] == 0.5
    assert drafter["structured"] == "json_object"
    assert drafter["base_url"] == settings.LLM_BASE_URL
    assert drafter["model"] == settings.LLM_MODEL
    assert drafter["send_image"] is False
    assert "responder" not in job.llm_settings
    assert SECRET not in json.dumps(job.llm_settings)
    assert "key" not in json.dumps(job.llm_settings).lower()
    page = client.get(response.url).content.decode()
    assert f"Job #{job.pk} launched" in page
    assert SECRET not in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"rounds": "3"}, None, "rounds: a draft job has one round"),
        ({"import_batch": "OTHER"}, "import_batch", "Select a valid choice"),
        ({"criterion": "nonsense"}, "criterion", "Select a valid choice"),
        ({"temperature": "3"}, "temperature", "less than or equal to 2"),
        ({"connection": "nowhere"}, "connection", "Select a valid choice"),
    ],
)
def test_new_job_form_shows_what_is_wrong(client, project, admin_user, changes, field, message):
    other = Project.objects.create(name="Other", slug="other")
    foreign = ImportBatch.objects.create(project=other, format="native", file_name="theirs.jsonl")
    changes = {k: (str(foreign.pk) if v == "OTHER" else v) for k, v in changes.items()}
    client.force_login(admin_user)
    page = client.post(reverse("feedback:job-new", args=["test"]), _form_data(**changes))
    assert page.status_code == 200
    errors = page.context["form"].errors
    key = field or "__all__"
    assert any(message in e for e in errors[key]), errors
    assert message.replace("'", "&#x27;") in page.content.decode()
    assert not Job.objects.exists()


def test_csrf_is_enforced_on_the_form_and_the_actions(project, admin_user):
    job = set_running(new_job(project, admin_user))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(reverse("feedback:job-new", args=["test"]), _form_data()).status_code == 403
    assert strict.post(action_url(job, "pause")).status_code == 403
    assert Job.objects.count() == 1
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING
    # With the token the page hands out, the same post goes through.
    page = strict.get(detail_url(job))
    token = page.cookies["csrftoken"].value
    assert strict.post(action_url(job, "pause"), {"csrfmiddlewaretoken": token}).status_code == 302
    job.refresh_from_db()
    assert job.state == Job.State.PAUSED


# --- the job page and its progress -----------------------------------------------------------------


def _busy_job(project, admin_user) -> Job:
    """A running job of 12 turns: 3 done, 2 failed, 1 cancelled, 1 running after an error, 1 queued,
    4 pending; tokens and cost spent. It started two minutes ago, past the rate's window, so the rate
    is measured over the whole window whatever the time the test takes."""
    turns = JobTurnFactory.create_numbered(12, sample__project=project)
    job = set_running(new_job(project, admin_user), total=12, seconds_ago=2 * RATE_WINDOW)
    add_items(job, turns[0:3], "done")
    add_items(job, turns[3:4], "failed", error="HTTP 400: the oldest failure", ago=20)
    add_items(job, turns[4:5], "failed", error="unusable answer after one re-ask: overall: missing", ago=10)
    add_items(job, turns[5:6], "cancelled")
    add_items(job, turns[6:7], "running", error="attempt 1: HTTP 503: overloaded", ago=5)
    add_items(job, turns[7:8], "queued")
    add_items(job, turns[8:12], "pending")
    Job.objects.filter(pk=job.pk).update(tokens_in=1234, tokens_out=56, cost=Decimal("0.0123"))
    job.refresh_from_db()
    return job


def test_progress_json_counts_items_rate_eta_and_latest_errors(client, project, admin_user):
    job = _busy_job(project, admin_user)
    client.force_login(admin_user)
    progress = client.get(detail_url(job) + "?format=json").json()
    assert progress["state"] == "running"
    assert progress["total"] == 12
    assert (progress["done"], progress["failed"], progress["cancelled"]) == (3, 2, 1)
    assert (progress["in_flight"], progress["retrying"]) == (2, 1)
    assert progress["remaining"] == 12 - 6
    assert progress["rate_per_second"] == 0.05  # 3 done in the last 60 seconds
    assert progress["eta_seconds"] == 120  # 6 remaining at 0.05 a second
    assert (progress["tokens_in"], progress["tokens_out"], progress["cost"]) == (1234, 56, "0.0123")
    assert progress["budget"] is None
    errors = progress["latest_errors"]
    assert [e["error"] for e in errors] == [
        "attempt 1: HTTP 503: overloaded",
        "unusable answer after one re-ask: overall: missing",
        "HTTP 400: the oldest failure",
    ]
    assert [e["state"] for e in errors] == ["running", "failed", "failed"]
    assert errors[1]["sample"] == "s4" and errors[1]["turn"] == 0
    assert errors[1]["sample_id"] == Sample.objects.get(external_id="s4").pk
    assert all(e["at"] for e in errors)


def test_progress_of_finished_and_paused_jobs(client, project, admin_user):
    turns = JobTurnFactory.create_numbered(4, sample__project=project)
    job = set_running(new_job(project, admin_user), total=4, seconds_ago=20)
    add_items(job, turns[:2], "done", ago=100)
    add_items(job, turns[2:], "pending")
    Job.objects.filter(pk=job.pk).update(state=Job.State.PAUSED)
    client.force_login(admin_user)
    paused = client.get(detail_url(job) + "?format=json").json()
    assert (paused["state"], paused["remaining"], paused["eta_seconds"]) == ("paused", 2, None)
    JobItem.objects.filter(job=job, state="pending").update(state="done")
    assert job.started_at is not None
    Job.objects.filter(pk=job.pk).update(state=Job.State.COMPLETED, finished_at=job.started_at + timedelta(seconds=8))
    done = client.get(detail_url(job) + "?format=json").json()
    assert (done["state"], done["done"], done["remaining"], done["eta_seconds"]) == ("completed", 4, 0, None)
    assert done["rate_per_second"] == 0.5  # 4 items over the 8 seconds the job ran


def test_job_page_shows_state_counts_and_errors(client, project, admin_user):
    job = _busy_job(project, admin_user)
    client.force_login(admin_user)
    page = client.get(detail_url(job))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<strong id="state">running</strong>' in html
    assert '<b id="done">3</b>' in html
    assert '<b id="failed">2</b>' in html
    assert '<b id="remaining">6</b>' in html
    assert '<b id="tokens">1234 / 56</b>' in html
    assert '<b id="cost">$0.0123</b>' in html
    assert "unusable answer after one re-ask: overall: missing" in html
    assert '<button id="pause" >' in html or '<button id="pause">' in html
    assert '<button id="resume" disabled>' in html


def test_user_text_is_escaped_on_the_job_page(client, project, admin_user):
    turns = JobTurnFactory.create_numbered(1, sample__project=project, prefix="x")
    Sample.objects.filter(pk=turns[0].sample_id).update(external_id=XSS_ID)
    job = set_running(new_job(project, admin_user, selection={"sample_ids": [XSS_ID]}), total=1)
    add_items(job, turns, "failed", error=XSS_ERROR)
    client.force_login(admin_user)
    html = client.get(detail_url(job)).content.decode()
    assert XSS_ID not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<img src=x onerror="alert(2)">' not in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    partial = client.get(detail_url(job), HTTP_HX_REQUEST="true").content.decode()
    assert XSS_ID not in partial and "&lt;script&gt;alert(1)&lt;/script&gt;" in partial
    assert '<img src=x onerror="alert(2)">' not in partial
    progress = client.get(detail_url(job) + "?format=json").json()
    assert progress["latest_errors"][0]["sample"] == XSS_ID  # JSON carries the text as it is


def test_a_round_cost_is_shown_as_a_plain_number(client, project, admin_user):
    job = set_running(new_job(project, admin_user))
    Job.objects.filter(pk=job.pk).update(cost=Decimal("30"))
    client.force_login(admin_user)
    assert client.get(detail_url(job) + "?format=json").json()["cost"] == "30"


def test_job_page_and_json_queries_do_not_grow_with_items(client, project, admin_user, django_assert_max_num_queries):
    client.force_login(admin_user)
    # Session, user, project (twice), role, job, counts, latest errors; the page also asks for a simulated draft.
    page_bound, json_bound = 9, 7
    for count, prefix in ((5, "small"), (200, "big")):
        turns = JobTurnFactory.create_numbered(count, sample__project=project, prefix=prefix)
        job = set_running(new_job(project, admin_user), total=count)
        third = count // 3
        add_items(job, turns[:third], "done")
        add_items(job, turns[third : 2 * third], "failed", error="HTTP 400: bad")
        add_items(job, turns[2 * third :], "pending")
        JobDraftFactory.create(turn=turns[0], job=job, simulated=True)
        with django_assert_max_num_queries(page_bound):
            page = client.get(detail_url(job))
        assert page.status_code == 200
        assert f'<b id="failed">{third}</b>' in page.content.decode()
        assert ">simulated</span>" in page.content.decode()
        with django_assert_max_num_queries(page_bound):
            partial = client.get(detail_url(job), HTTP_HX_REQUEST="true")
        assert f'<b id="failed">{third}</b>' in partial.content.decode()
        with django_assert_max_num_queries(json_bound):
            progress = client.get(detail_url(job) + "?format=json").json()
        assert progress["failed"] == third
        assert len(progress["latest_errors"]) == min(third, 8)


# --- the live part: a partial that htmx polls -----------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_a_running_job_page_polls_its_progress_partial(client, project, admin_user, settings):
    settings.PAGE_POLL_SECONDS = 2.5
    job = _busy_job(project, admin_user)
    client.force_login(admin_user)
    html = client.get(detail_url(job)).content.decode()
    assert f'<div id="job-progress" hx-get="{detail_url(job)}" hx-trigger="every 2500ms" hx-swap="outerHTML">' in html
    assert "<h1>" in html and "Selection" in html

    partial = client.get(detail_url(job), **HTMX)
    assert partial.status_code == 200
    body = partial.content.decode()
    assert "<html" not in body and "<h1>" not in body and "Selection" not in body  # the live part alone
    assert 'hx-trigger="every 2500ms"' in body
    assert '<strong id="state">running</strong>' in body
    assert '<b id="done">3</b>' in body and '<b id="remaining">6</b>' in body
    assert "unusable answer after one re-ask: overall: missing" in body
    assert '<button id="resume" disabled>' in body
    assert "HX-Request" in partial["Vary"], "one URL gives two bodies: caches must tell them apart"


def test_a_settled_job_renders_a_partial_that_stops_polling(client, project, admin_user):
    turns = JobTurnFactory.create_numbered(2, sample__project=project)
    job = set_running(new_job(project, admin_user), total=2)
    add_items(job, turns, "done")
    client.force_login(admin_user)
    assert "hx-trigger" in client.get(detail_url(job), **HTMX).content.decode()
    for state in (Job.State.PAUSED, Job.State.COMPLETED, Job.State.CANCELLED, Job.State.FAILED):
        Job.objects.filter(pk=job.pk).update(state=state)
        for response in (client.get(detail_url(job), **HTMX), client.get(detail_url(job))):
            body = response.content.decode()
            assert f'<strong id="state">{state}</strong>' in body
            assert "hx-trigger" not in body and "hx-get" not in body, state
    assert '<button id="retry" disabled>' in body and '<button id="cancel" disabled>' in body


def test_the_job_page_runs_no_inline_script(client, project, admin_user):
    job = _busy_job(project, admin_user)
    client.force_login(admin_user)
    html = client.get(detail_url(job)).content.decode()
    assert "<script>" not in html and "onsubmit" not in html and 'style="' not in html
    assert "/static/feedback/vendor/htmx-2.0.11.min.js" in html


# --- actions from the page -------------------------------------------------------------------------


def _post_action(client, job: Job, action: str, data=None) -> str:
    response = client.post(action_url(job, action), data or {}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == detail_url(job)
    return response.content.decode()


def test_pause_and_resume_a_running_job(client, project, admin_user):
    turns = JobTurnFactory.create_numbered(3, sample__project=project)
    job = set_running(new_job(project, admin_user), total=3)
    add_items(job, turns, "pending")
    client.force_login(admin_user)
    _post_action(client, job, "pause")
    job.refresh_from_db()
    assert (job.state, job.stop_reason) == ("paused", "Paused.")
    _post_action(client, job, "resume", {"budget": "2.5"})
    job.refresh_from_db()
    assert (job.state, job.stop_reason, job.budget) == ("running", "", Decimal("2.5"))
    # Resuming fills the window: the pending items are handed to the broker (sent after commit).
    assert sorted(JobItem.objects.filter(job=job).values_list("state", flat=True)) == ["queued"] * 3
    assert all(JobItem.objects.filter(job=job).values_list("token", flat=True))


def test_cancel_cancels_what_has_not_started(client, project, admin_user):
    turns = JobTurnFactory.create_numbered(4, sample__project=project)
    job = set_running(new_job(project, admin_user), total=4)
    add_items(job, turns[:1], "done")
    add_items(job, turns[1:2], "running")
    add_items(job, turns[2:3], "queued")
    add_items(job, turns[3:4], "pending")
    client.force_login(admin_user)
    _post_action(client, job, "cancel")
    job.refresh_from_db()
    assert job.state == "cancelling"  # the running call finishes first
    states = dict(JobItem.objects.filter(job=job).values_list("turn_id", "state"))
    assert [states[t.pk] for t in turns] == ["done", "running", "cancelled", "cancelled"]


def test_cancel_with_nothing_in_flight_is_final(client, project, admin_user):
    turns = JobTurnFactory.create_numbered(2, sample__project=project)
    job = set_running(new_job(project, admin_user), total=2)
    add_items(job, turns, "pending")
    client.force_login(admin_user)
    _post_action(client, job, "cancel")
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert job.finished_at is not None
    assert set(JobItem.objects.filter(job=job).values_list("state", flat=True)) == {"cancelled"}
    queued = new_job(project, admin_user)  # never dispatched
    _post_action(client, queued, "cancel")
    queued.refresh_from_db()
    assert queued.state == "cancelled"


def test_retry_puts_failed_items_back_and_reopens_the_job(client, project, admin_user):
    turns = JobTurnFactory.create_numbered(3, sample__project=project)
    job = set_running(new_job(project, admin_user), total=3)
    add_items(job, turns[:1], "done")
    add_items(job, turns[1:], "failed", error="gave up after 5 attempts: HTTP 503")
    JobItem.objects.filter(job=job, state="failed").update(attempts=5)
    Job.objects.filter(pk=job.pk).update(state=Job.State.COMPLETED, finished_at=timezone.now())
    client.force_login(admin_user)
    page = _post_action(client, job, "retry")
    assert "2 failed item(s) queued again." in page
    job.refresh_from_db()
    assert (job.state, job.finished_at) == ("running", None)
    retried = JobItem.objects.filter(job=job, turn__in=turns[1:])
    # Back to pending, then straight into the window: queued with a fresh token.
    assert set(retried.values_list("state", "error", "attempts")) == {("queued", "", 0)}
    assert JobItem.objects.get(job=job, turn=turns[0]).state == "done"


@pytest.mark.parametrize(
    ("state", "action", "message"),
    [
        ("completed", "pause", "a completed job cannot be paused"),
        ("running", "resume", "a running job cannot be resumed"),
        ("cancelled", "cancel", "a cancelled job cannot be cancelled"),
        ("cancelled", "retry", "a cancelled job&#x27;s failures cannot be retried"),
    ],
)
def test_an_invalid_transition_says_so_and_changes_nothing(client, project, admin_user, state, action, message):
    turns = JobTurnFactory.create_numbered(1, sample__project=project)
    job = set_running(new_job(project, admin_user), total=1)
    add_items(job, turns, "failed", error="HTTP 400: bad")
    Job.objects.filter(pk=job.pk).update(state=state)
    before = Job.objects.filter(pk=job.pk).values().get()
    client.force_login(admin_user)
    page = _post_action(client, job, action)
    assert message in page
    assert Job.objects.filter(pk=job.pk).values().get() == before
    assert JobItem.objects.get(job=job).state == "failed"


def test_an_unknown_action_is_404(client, project, admin_user):
    job = set_running(new_job(project, admin_user))
    client.force_login(admin_user)
    assert client.post(action_url(job, "explode")).status_code == 404
    assert client.get(action_url(job, "pause")).status_code == 405
    job.refresh_from_db()
    assert job.state == "running"


# --- the API ---------------------------------------------------------------------------------------


def test_api_creates_a_job(project, admin_user, settings):
    settings.LLM_API_KEY = SECRET
    body = {
        "kind": "respond",
        "selection": {"criterion": "honesty", "sample_ids": ["s1"], "limit": 3},
        "rounds": 2,
        "budget": "0.75",
        "drafter": {"model": "my-model", "temperature": 0.1},
    }
    response = token_client(admin_user).post(api_url(), body, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    job = Job.objects.get(pk=data["id"])
    assert (data["kind"], data["state"], data["rounds"]) == ("respond", "queued", 2)
    assert (job.kind, job.rounds, job.budget, job.created_by) == ("respond", 2, Decimal("0.75"), admin_user)
    assert job.selection == {
        "criterion": "honesty",
        "status": "never",
        "import_batch": None,
        "sample_ids": ["s1"],
        "limit": 3,
    }
    assert job.llm_settings["drafter"]["model"] == "my-model"
    assert job.llm_settings["drafter"]["temperature"] == 0.1
    assert job.llm_settings["responder"]["model"] == settings.RESPONDER_MODEL
    assert data["llm_settings"] == job.llm_settings
    assert SECRET not in response.content.decode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "summarise"}, "kind"),
        ({"kind": "draft", "rounds": 3}, "rounds"),
        ({"kind": "respond", "rounds": 11}, "rounds"),
        ({"kind": "draft", "selection": {"criterion": "nonsense"}}, "criterion"),
        ({"kind": "draft", "selection": {"import_batch": 999999}}, "import_batch"),
        ({"kind": "draft", "selection": {"status": "sometimes"}}, "selection.status"),
        ({"kind": "draft", "drafter": {"temperature": 3}}, "drafter.temperature"),
        ({"kind": "draft", "drafter": {"base_url": "http://user:pw@llm.example.test/v1"}}, "drafter.base_url"),
        ({"kind": "draft", "drafter": {"connection": "nowhere"}}, "drafter.connection"),
        ({"kind": "draft", "drafter": {"structured": "xml"}}, "drafter.structured"),
        ({"kind": "draft", "budget": "-1"}, "budget"),
    ],
)
def test_api_validation_errors_name_the_field(project, admin_user, body, field):
    response = token_client(admin_user).post(api_url(), body, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "errors"} and body["code"] == "invalid", body
    assert field in body["errors"], body
    assert f"{field}: " in body["detail"], body
    assert not Job.objects.exists()


def test_api_unknown_prompt_version_names_the_field(project, admin_user):
    body = {"kind": "draft", "drafter": {"prompt_version": "v9"}}
    response = token_client(admin_user).post(api_url(), body, format="json")
    assert response.status_code == 400
    assert "drafter.prompt_version" in response.json()["errors"], response.json()


def test_api_detail_and_actions(project, admin_user):
    turns = JobTurnFactory.create_numbered(3, sample__project=project)
    job = set_running(new_job(project, admin_user), total=3)
    add_items(job, turns[:1], "done")
    add_items(job, turns[1:2], "failed", error="HTTP 400: bad")
    add_items(job, turns[2:], "pending")
    api = token_client(admin_user)
    detail = api.get(api_url(job)).json()
    assert (detail["id"], detail["state"]) == (job.pk, "running")
    progress = detail["progress"]
    assert (progress["done"], progress["failed"], progress["remaining"]) == (1, 1, 1)
    assert progress["latest_errors"][0]["error"] == "HTTP 400: bad"

    paused = api.post(api_url(job, "pause"))
    assert paused.status_code == 200
    assert paused.json()["state"] == "paused"
    assert api.post(api_url(job, "pause")).status_code == 409
    conflict = api.post(api_url(job, "pause")).json()
    assert conflict == {"detail": "a paused job cannot be paused", "code": "conflict", "errors": {}}

    resumed = api.post(api_url(job, "resume"), {"budget": "3"}, format="json")
    assert resumed.status_code == 200
    assert (resumed.json()["state"], resumed.json()["budget"]) == ("running", "3.00000000")

    retried = api.post(api_url(job, "retry"))
    assert retried.status_code == 200
    assert retried.json()["progress"]["failed"] == 0

    cancelled = api.post(api_url(job, "cancel"))
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] in ("cancelling", "cancelled")
    assert api.post(api_url(job, "resume")).status_code == 409
    assert api.post(api_url(job, "explode")).status_code == 404
    assert api.get("/api/projects/test/jobs/999999/").status_code == 404
    assert [j["id"] for j in api.get(api_url()).json()] == [job.pk]


def test_a_job_of_another_project_is_404(client, project, admin_user):
    other = Project.objects.create(name="Other", slug="other")
    foreign = new_job(other, admin_user)
    api = token_client(admin_user)
    assert api.get(f"/api/projects/test/jobs/{foreign.pk}/").status_code == 404
    assert api.post(f"/api/projects/test/jobs/{foreign.pk}/pause/").status_code == 404
    client.force_login(admin_user)
    assert client.get(reverse("feedback:job-detail", args=["test", foreign.pk])).status_code == 404
    assert client.post(reverse("feedback:job-action", args=["test", foreign.pk, "pause"])).status_code == 404
    foreign.refresh_from_db()
    assert foreign.state == "queued"


def test_api_resume_with_a_malformed_budget_is_a_bad_request(project, admin_user):
    job = set_running(new_job(project, admin_user))
    Job.objects.filter(pk=job.pk).update(state=Job.State.PAUSED)
    response = token_client(admin_user).post(api_url(job, "resume"), {"budget": "abc"}, format="json")
    job.refresh_from_db()
    assert job.state == "paused"
    assert response.status_code == 400
    assert response.json()["errors"] == {"budget": ["'abc' is not a number"]}
    assert response.json()["detail"] == "budget: 'abc' is not a number"


# --- the sample page -------------------------------------------------------------------------------


def test_sample_page_shows_drafts_scores_and_the_simulated_badge(client, project, annotator_user):
    turn = JobTurnFactory.create_numbered(1, sample__project=project)[0]
    JobDraftFactory.create(
        turn=turn,
        critique="The answer names the bus <but> misses its colour.",
        refinement="Ask which colour the bus is.",
        scores={"helpfulness": 4, "honesty": 6, "harmlessness": 7},
        overall=5,
        simulated=True,
    )
    JobDraftFactory.create(turn=turn, status=CallStatus.FAILED, critique="", overall=None, error=XSS_ERROR)
    client.force_login(annotator_user)
    html = client.get(reverse("feedback:sample-detail", args=["test", turn.sample_id])).content.decode()
    assert "The answer names the bus &lt;but&gt; misses its colour." in html
    assert "Ask which colour the bus is." in html
    scores_line = html.split("<strong>Scores:</strong>", 1)[1].split("</p>", 1)[0]
    for shown in ("helpfulness 4", "honesty 6", "harmlessness 7", "; overall 5"):
        assert shown in scores_line, scores_line
    assert html.count(">simulated</span>") == 1
    assert "Failed: HTTP 500: &lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in html
    assert XSS_ERROR not in html


def test_sample_page_lists_scores_in_the_rubric_order(client, project, annotator_user):
    turn = JobTurnFactory.create_numbered(1, sample__project=project)[0]
    JobDraftFactory.create(turn=turn, scores={"helpfulness": 4, "honesty": 6, "harmlessness": 7}, overall=5)
    client.force_login(annotator_user)
    html = client.get(reverse("feedback:sample-detail", args=["test", turn.sample_id])).content.decode()
    assert "<strong>Scores:</strong> helpfulness 4, honesty 6, harmlessness 7; overall 5</p>" in html


def test_sample_page_has_no_simulated_badge_for_a_real_model(client, project, annotator_user):
    turn = JobTurnFactory.create_numbered(1, sample__project=project)[0]
    JobDraftFactory.create(turn=turn, model="a-real-model", critique="Fine.", scores={"honesty": 5}, simulated=False)
    client.force_login(annotator_user)
    html = client.get(reverse("feedback:sample-detail", args=["test", turn.sample_id])).content.decode()
    assert "a-real-model" in html and "Fine." in html
    assert ">simulated</span>" not in html


# --- run_job ---------------------------------------------------------------------------------------


def test_run_job_launches_and_prints_the_job_number(project):
    out = io.StringIO()
    call_command("run_job", "--project", "test", "--kind", "draft", "--no-wait", "--criterion", "honesty", stdout=out)
    job = Job.objects.get()
    assert out.getvalue().strip() == f"Job #{job.pk} queued: Draft feedback in test."
    assert (job.kind, job.state, job.selection["criterion"]) == ("draft", "queued", "honesty")
    assert job.created_by is None


def test_run_job_refuses_a_bad_criterion_and_an_unknown_project(project):
    with pytest.raises(CommandError, match="criterion: 'nonsense' is not one of"):
        call_command("run_job", "--project", "test", "--criterion", "nonsense", "--no-wait", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no project"):
        call_command("run_job", "--project", "nowhere", "--no-wait", stdout=io.StringIO())
    assert not Job.objects.exists()


# --- the selection ---------------------------------------------------------------------------------


def _ids(turns) -> list[str]:
    return [t.sample.external_id for t in turns.select_related("sample")]


def test_turns_to_draft_honours_every_filter(project):
    first = ImportBatch.objects.create(project=project, format="native", file_name="first.jsonl")
    second = ImportBatch.objects.create(project=project, format="native", file_name="second.jsonl")
    JobTurnFactory.create_numbered(
        2, sample__project=project, prefix="h", sample__target_criterion="honesty", sample__import_batch=first
    )  # h0 h1
    JobTurnFactory.create_numbered(
        2, sample__project=project, prefix="p", sample__target_criterion="helpfulness", sample__import_batch=second
    )  # p0 p1
    JobTurnFactory.create_numbered(
        1, sample__project=project, prefix="a", awaiting=True, sample__target_criterion="honesty"
    )  # awaiting: never drafted
    other = Project.objects.create(name="Other", slug="other")
    JobTurnFactory.create_numbered(1, sample__project=other, prefix="h")

    def chosen(**fields) -> list[str]:
        return _ids(turns_to_draft(project, Selection(**fields)))

    assert chosen() == ["h0", "h1", "p0", "p1"]
    assert chosen(criterion="honesty") == ["h0", "h1"]
    assert chosen(import_batch=second.pk) == ["p0", "p1"]
    assert chosen(sample_ids=["h1", "p0", "zz"]) == ["h1", "p0"]
    assert chosen(limit=3) == ["h0", "h1", "p0"]
    assert chosen(criterion="helpfulness", limit=1) == ["p0"]

    turn = {t.sample.external_id: t for t in Turn.objects.filter(sample__project=project).select_related("sample")}
    JobDraftFactory.create(turn=turn["h0"])  # drafted
    failed = {"status": CallStatus.FAILED, "critique": "", "overall": None, "error": "HTTP 400"}
    JobDraftFactory.create(turn=turn["h1"], **failed)  # only failed
    JobDraftFactory.create(turn=turn["p0"], **failed)
    JobDraftFactory.create(turn=turn["p0"])  # failed, then drafted
    assert chosen(status="all") == ["h0", "h1", "p0", "p1"]
    assert chosen(status="failed") == ["h1"]
    assert chosen(status="never") == ["p1"], "never attempted"
    assert chosen(status="undrafted") == ["h1", "p1"], "no usable draft yet: never attempted, or failed"


def test_samples_to_respond_picks_samples_awaiting_a_response(project):
    JobTurnFactory.create_numbered(2, sample__project=project, prefix="done")
    JobTurnFactory.create_numbered(
        2, sample__project=project, prefix="wait", awaiting=True, sample__target_criterion="honesty"
    )
    JobTurnFactory.create_numbered(
        1, sample__project=project, prefix="other", awaiting=True, sample__target_criterion="helpfulness"
    )
    answered_then_waiting = Sample.objects.get(external_id="done1")
    Turn.objects.create(sample=answered_then_waiting, index=1, user_message="And the colour?", model_response=None)

    def chosen(**fields) -> list[str]:
        return [s.external_id for s in samples_to_respond(project, Selection(**fields))]

    assert chosen() == ["done1", "wait0", "wait1", "other0"]
    assert chosen(criterion="honesty") == ["wait0", "wait1"]
    assert chosen(limit=2) == ["done1", "wait0"]
    assert chosen(status="all") == ["done0", "done1", "wait0", "wait1", "other0"]


@pytest.mark.parametrize("state", Job.State.values)
def test_the_page_offers_exactly_the_actions_the_service_allows(client, project, admin_user, state):
    """One table on the model (Job.allowed_actions) decides both: for each state, a button is enabled
    on the job page if and only if the service performs its action rather than refusing it."""
    client.force_login(admin_user)
    turns = JobTurnFactory.create_numbered(4, sample__project=project, prefix=f"{state}-")
    for action, turn in zip(Job.ACTIONS, turns, strict=True):
        job = set_running(new_job(project, admin_user), total=1)
        add_items(job, [turn], "failed", error="HTTP 400: bad")
        Job.objects.filter(pk=job.pk).update(state=state)
        job.refresh_from_db()
        allowed = action in job.allowed_actions
        html = client.get(detail_url(job)).content.decode()
        enabled = f'<button id="{action}" disabled>' not in html
        assert f'<button id="{action}"' in html
        try:
            job_act(job=job, action=action)
        except JobStateError:
            performed = False
        else:
            performed = True
        assert enabled == performed == allowed, (state, action, enabled, performed)


def test_the_sample_page_reads_a_frozen_view_model_not_attributes_on_the_rows(project):
    turn = JobTurnFactory.create_numbered(1, sample__project=project)[0]
    JobDraftFactory.create(turn=turn, scores={"harmlessness": 7, "extra": 1, "helpfulness": 4}, overall=5)
    page = selectors.sample_page(project, turn.sample_id)
    (view,) = page.turns
    (draft_view,) = view.drafts
    assert view.turn.pk == turn.pk
    assert draft_view.score_list == (("helpfulness", 4), ("harmlessness", 7), ("extra", 1))
    assert not hasattr(draft_view.draft, "score_list")
    with pytest.raises(dataclasses.FrozenInstanceError):
        draft_view.score_list = ()  # type: ignore[misc]
