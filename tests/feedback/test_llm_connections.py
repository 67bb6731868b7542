"""Named LLM connections and the job door, over real HTTP (the live server), with real workers
and the simulator: who may send a key where, which addresses are refused at creation and again
in the worker, what of an upstream error is shown, bounded job requests, failed dispatches, and a
non-JSON answer treated as an unparseable one."""

from __future__ import annotations

import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2 as httpx
import pytest
from django.core.management import CommandError, call_command
from django.utils.html import escape

from feedback.drafting import connections
from feedback.drafting.client import LLMError, chat
from feedback.drafting.models import CallStatus, Draft, RateLimitBucket
from feedback.drafting.service import CallSettings, drafter_settings
from feedback.jobs.models import Job, JobItem
from feedback.jobs.selection import MAX_SAMPLE_IDS
from feedback.sending import JOB_DISPATCH, send
from tests.conftest import make_user
from tests.factories import SampleFactory
from tests.worker import WorkerProcess

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "sk-test-CONNECTION-SECRET-777"
MARKER = "internal-admin.corp.example"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sim_default(settings, llm_simulator):
    """The built-in connections point at the simulator, whose key is SECRET."""
    settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = llm_simulator.url
    settings.LLM_API_KEY = SECRET
    settings.LLM_TIMEOUT = 2.0
    settings.JOB_WATCH_INTERVAL = 1.0
    llm_simulator.configure(require_key=SECRET)
    return llm_simulator


def worker_env(sim_url: str, **extra: str) -> dict[str, str]:
    return {
        "ANNOTATOR_LLM_BASE_URL": sim_url,
        "ANNOTATOR_LLM_API_KEY": SECRET,
        "ANNOTATOR_LLM_TIMEOUT": "2",
        "ANNOTATOR_LLM_BACKOFF_BASE": "0.05",
        "ANNOTATOR_LLM_BACKOFF_MAX": "0.2",
        "ANNOTATOR_JOB_WATCH_INTERVAL": "1",
        "ANNOTATOR_JOB_LEASE": "8",
        **extra,
    }


def log_in(base: str, username: str) -> httpx.Client:
    """A browser-like session on the live server: the login form, then the CSRF header for posts."""
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    page = client.get("/login/")
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found is not None, "the login form has its CSRF token"
    token = found.group(1)
    done = client.post(
        "/login/", data={"username": username, "password": f"pw-{username}", "csrfmiddlewaretoken": token}
    )
    assert done.status_code == 302, done.text[:500]
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    client.headers["Referer"] = base + "/"
    return client


def launch(client: httpx.Client, body: dict) -> httpx.Response:
    return client.post("/api/projects/test/jobs/", json=body)


def settle(worker: WorkerProcess, job: Job, timeout: float = 90) -> Job:
    def done() -> bool:
        job.refresh_from_db()
        return job.state in Job.FINAL_STATES

    assert worker.wait_for(done, timeout=timeout), f"job {job.pk} is still {job.state}\n{worker.output()}"
    return job


# --- who may send the key where -------------------------------------------------------------------


def test_a_project_admin_cannot_point_a_job_at_a_url(live_server, project, admin_user, sim_default):
    """The platform's key went to any URL a project admin typed; now only to its connection's."""
    api = log_in(live_server.url, admin_user.username)
    for role in ("drafter", "responder"):
        body = {"kind": "respond", role: {"base_url": "http://127.0.0.1:9/v1"}}
        response = launch(api, body)
        assert response.status_code == 400, response.text
        assert list(response.json()["errors"]) == [f"{role}.base_url"]
        assert "only superusers" in response.json()["errors"][f"{role}.base_url"][0]
    # Their own connection, by name, is fine; one that does not exist or a model it does not offer is not.
    assert launch(api, {"kind": "draft", "drafter": {"connection": "default"}}).status_code == 202
    unknown = launch(api, {"kind": "draft", "drafter": {"connection": "attacker"}})
    assert unknown.status_code == 400 and "drafter.connection" in unknown.json()["errors"], unknown.text
    assert Job.objects.count() == 1
    form = api.get("/projects/test/jobs/new/").text
    assert 'name="connection"' in form and 'name="endpoint"' not in form
    assert SECRET not in form
    assert llm_simulator_requests(sim_default) == 0


def llm_simulator_requests(sim) -> int:
    return sim.stats()["requests"]


def test_models_are_limited_to_what_the_connection_offers(live_server, project, admin_user, settings, sim_default):
    settings.LLM_CONNECTIONS = {"lab": {"base_url": sim_default.url, "models": ["annotator-simulator"]}}
    api = log_in(live_server.url, admin_user.username)
    refused = launch(api, {"kind": "draft", "drafter": {"connection": "lab", "model": "gpt-private"}})
    assert refused.status_code == 400
    assert "not offered by connection 'lab'" in refused.json()["errors"]["drafter.model"][0]
    accepted = launch(api, {"kind": "draft", "drafter": {"connection": "lab"}})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["llm_settings"]["drafter"]["connection"] == "lab"
    assert accepted.json()["llm_settings"]["drafter"]["model"] == "annotator-simulator"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://localhost:{port}/v1", "loopback"),  # a name that resolves to 127.0.0.1
        ("http://10.20.30.40/v1", "private"),
        ("http://169.254.169.254/latest", "link-local"),
        ("http://[::1]:{port}/v1", "loopback"),
    ],
)
def test_a_superuser_url_to_a_non_public_address_is_refused(live_server, project, sim_default, url, address):
    make_user("root", is_superuser=True, is_staff=True)
    api = log_in(live_server.url, "root")
    response = launch(api, {"kind": "draft", "drafter": {"base_url": url.format(port=sim_default.port)}})
    assert response.status_code == 400, response.text
    message = response.json()["errors"]["drafter.base_url"][0]
    assert f"a {address} address" in message
    assert not Job.objects.exists()
    assert sim_default.stats()["requests"] == 0


@pytest.mark.worker
def test_a_free_form_url_gets_no_key_and_a_connection_gets_its_own(
    live_server, project, admin_user, sim_default, tmp_path
):
    """A superuser's URL of no connection (here on the default connection's own server, the one
    non-public origin a connection names) is called without any key; the connection with its key."""
    make_user("root", is_superuser=True, is_staff=True)
    SampleFactory.create_numbered(3, project=project)
    root = log_in(live_server.url, "root")
    bare = root.post(
        "/api/projects/test/jobs/",
        json={"kind": "draft", "drafter": {"base_url": f"http://127.0.0.1:{sim_default.port}"}},
    )
    assert bare.status_code == 202, bare.text
    assert bare.json()["llm_settings"]["drafter"]["connection"] == ""
    worker = WorkerProcess("default,llm", log_path=tmp_path / "worker.log", env=worker_env(sim_default.url))
    try:
        free = settle(worker, Job.objects.get(pk=bare.json()["id"]))
        assert sim_default.stats()["unauthorized"] == 3, "three calls, none with the key"
        errors = set(JobItem.objects.filter(job=free).values_list("error", flat=True))
        assert errors == {"HTTP 401 invalid_request_error: Incorrect API key provided."}
        keyed = launch(log_in(live_server.url, admin_user.username), {"kind": "draft", "selection": {"status": "all"}})
        assert keyed.status_code == 202
        job = settle(worker, Job.objects.get(pk=keyed.json()["id"]))
    finally:
        worker.stop()
    assert job.state == Job.State.COMPLETED
    assert Draft.objects.filter(job=job, status=CallStatus.OK).count() == 3
    assert sim_default.stats()["unauthorized"] == 3


@pytest.mark.worker
def test_the_worker_checks_the_address_again_before_the_call(project, sim_default, tmp_path):
    """A job stored with a URL on an internal address (made before these checks, or a name that
    resolves elsewhere now) is refused by the worker, and nothing is sent."""
    SampleFactory.create_numbered(2, project=project)
    url = f"http://localhost:{sim_default.port}/v1"
    drafter = {**drafter_settings(project).as_dict(), "base_url": url}
    legacy = {k: v for k, v in drafter.items() if k != "connection"}
    jobs = [
        Job.objects.create(project=project, kind="draft", llm_settings={"drafter": {**drafter, "connection": ""}}),
        Job.objects.create(project=project, kind="draft", llm_settings={"drafter": legacy}),
    ]
    for job in jobs:
        send(JOB_DISPATCH, job.pk)
    worker = WorkerProcess("default,llm", log_path=tmp_path / "worker.log", env=worker_env(sim_default.url))
    try:
        for job in jobs:
            settle(worker, job)
    finally:
        worker.stop()
    assert sim_default.stats()["requests"] == 0
    for job in jobs:
        items = JobItem.objects.filter(job=job)
        assert [i.state for i in items] == ["failed", "failed"]
        assert all(i.attempts == 1 for i in items), "not retried"
        assert all("refused: the host 'localhost' resolves to" in i.error for i in items)
        assert all("loopback" in i.error for i in items)


# --- what of an upstream error is shown -----------------------------------------------------------


class _ErrorPage(BaseHTTPRequestHandler):
    """An internal service that answers every request with a 502 and some JSON of its own."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(502)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def error_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ErrorPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _call(url: str, key: str = "") -> LLMError:
    with pytest.raises(LLMError) as caught:
        chat(
            base_url=url,
            api_key=key,
            model="annotator-simulator",
            messages=[{"role": "user", "content": "hello"}],
            temperature=0,
            max_tokens=20,
            timeout=5,
        )
    return caught.value


def test_upstream_errors_are_summarised_never_reflected(error_server, llm_simulator):
    url = f"http://127.0.0.1:{error_server.server_port}/v1"
    error_server.body = json.dumps({"detail": f"{MARKER}: db at 10.0.0.7:5432 refused", "trace": "x" * 400}).encode()
    assert _call(url).message == "HTTP 502 (JSON body not in the OpenAI error shape)"
    error_server.body = json.dumps({"error": f"{MARKER} says no"}).encode()
    assert _call(url).message == "HTTP 502 (JSON body not in the OpenAI error shape)"
    long = "The upstream model is overloaded; " + "please retry later. " * 30
    error_server.body = json.dumps({"error": {"message": long, "type": "server_error"}}).encode()
    summary = _call(url).message
    assert summary == f"HTTP 502 server_error: {long[:120]}…"
    error_server.body = json.dumps({"error": {"message": f"bad key {SECRET}", "type": "<script>"}}).encode()
    assert _call(url, SECRET).message == "HTTP 502: bad key [key]"
    llm_simulator.configure(fault_html_error=1.0)
    page = _call(llm_simulator.url)
    assert page.message == "HTTP 502 (non-JSON body)"
    assert page.retryable is True
    assert MARKER not in page.message


# --- a non-JSON 200 answer ------------------------------------------------------------------------


@pytest.mark.worker
def test_a_non_json_answer_is_an_unparseable_answer_not_retried(
    live_server, project, admin_user, sim_default, tmp_path
):
    sim_default.configure(fault_html=1.0)
    SampleFactory.create_numbered(2, project=project)
    api = log_in(live_server.url, admin_user.username)
    response = launch(api, {"kind": "draft"})
    assert response.status_code == 202
    worker = WorkerProcess("default,llm", log_path=tmp_path / "worker.log", env=worker_env(sim_default.url))
    try:
        job = settle(worker, Job.objects.get(pk=response.json()["id"]))
    finally:
        worker.stop()
    assert job.state == Job.State.COMPLETED
    assert sim_default.stats()["requests"] == 4, "one call and one re-ask per turn, no retries"
    for item in JobItem.objects.filter(job=job):
        assert (item.state, item.attempts) == ("failed", 1)
        assert item.error.startswith("unusable answer after one re-ask: the answer is not a chat completion")
        assert "AttributeError" not in item.error
    drafts = Draft.objects.filter(job=job)
    assert {d.status for d in drafts} == {CallStatus.FAILED} and {d.calls for d in drafts} == {2}
    assert all("<html>" in d.raw_output for d in drafts), "the raw answer is kept"
    page = api.get(f"/projects/test/jobs/{job.pk}/").text
    assert "the answer is not a chat completion" in page
    assert MARKER not in page and MARKER not in api.get(f"/api/projects/test/jobs/{job.pk}/").text


# --- bounded job requests and failed dispatches ---------------------------------------------------


def test_job_requests_are_bounded_naming_the_field(live_server, project, admin_user, sim_default):
    api = log_in(live_server.url, admin_user.username)
    too_many = [f"x{i}" for i in range(MAX_SAMPLE_IDS + 1)]
    cases = [
        ({"kind": "draft", "selection": {"sample_ids": too_many}}, "sample_ids"),
        ({"kind": "draft", "selection": {"limit": 10**30}}, "limit"),
        ({"kind": "draft", "selection": {"import_batch": 10**30}}, "import_batch"),
        ({"kind": "draft", "drafter": {"max_tokens": 10**12}}, "drafter.max_tokens"),
        ({"kind": "draft", "drafter": {"model": "m" * 201}}, "drafter.model"),
    ]
    for body, field in cases:
        response = launch(api, body)
        assert response.status_code == 400, (field, response.text[:300])
        assert field in response.json()["errors"], (field, response.json())
    assert not Job.objects.exists()
    with pytest.raises(CommandError, match="limit: must be from 1 to"):
        call_command("run_job", "--project", "test", "--limit", str(10**30), "--no-wait", stdout=io.StringIO())
    with pytest.raises(CommandError, match="base_url: the host 'localhost' resolves to"):
        call_command(
            "run_job", "--project", "test", "--endpoint", "http://localhost:1/v1", "--no-wait", stdout=io.StringIO()
        )
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', api.get("/projects/test/jobs/new/").text)
    assert token is not None
    form = api.post(
        "/projects/test/jobs/new/",
        data={
            "kind": "draft",
            "status": "never",
            "rounds": "1",
            "structured": "json_schema",
            "limit": str(10**30),
            "csrfmiddlewaretoken": token.group(1),
        },
    )
    assert form.status_code == 200 and "limit: must be from 1 to" in form.text
    assert not Job.objects.exists()


@pytest.mark.worker
def test_a_long_id_list_selects_and_a_failed_dispatch_fails_the_job(
    live_server, project, admin_user, sim_default, tmp_path
):
    SampleFactory.create_numbered(3, project=project)
    api = log_in(live_server.url, admin_user.username)
    ids = ["s0", *(f"absent{i}" for i in range(MAX_SAMPLE_IDS - 2)), "s2"]
    response = launch(api, {"kind": "draft", "selection": {"sample_ids": ids}})
    assert response.status_code == 202, response.text[:300]
    # A job the checks would refuse now, stored as it was before them: its dispatch cannot run.
    broken = Job.objects.create(
        project=project,
        kind="draft",
        selection={"criterion": "", "status": "never", "import_batch": None, "sample_ids": [], "limit": 10**30},
        llm_settings={"drafter": drafter_settings(project).as_dict()},
    )
    send(JOB_DISPATCH, broken.pk)
    worker = WorkerProcess("default,llm", log_path=tmp_path / "worker.log", env=worker_env(sim_default.url))
    try:
        job = settle(worker, Job.objects.get(pk=response.json()["id"]), timeout=120)
        settle(worker, broken)
    finally:
        worker.stop()
    assert job.state == Job.State.COMPLETED and job.total == 2
    assert sorted(Draft.objects.filter(job=job).values_list("turn__sample__external_id", flat=True)) == ["s0", "s2"]
    assert broken.state == Job.State.FAILED
    assert broken.stop_reason.startswith("Could not start: ")
    assert api.get(f"/api/projects/test/jobs/{broken.pk}/").json()["stop_reason"] == broken.stop_reason
    assert escape(broken.stop_reason) in api.get(f"/projects/test/jobs/{broken.pk}/").text


# --- the connections themselves -------------------------------------------------------------------


def test_connections_from_the_settings_and_their_keys(settings, monkeypatch):
    monkeypatch.setenv("LAB_KEY", "sk-lab-1")
    settings.LLM_CONNECTIONS = {
        "lab": {"base_url": "https://lab.example.test/v1/", "api_key_env": "LAB_KEY", "models": ["a", "b"], "rpm": 5}
    }
    found = connections.registry()
    assert sorted(found) == ["default", "lab", "responder"]
    lab = found["lab"]
    assert (lab.base_url, lab.models, lab.default_model, lab.requests_per_minute) == (
        "https://lab.example.test/v1",
        ("a", "b"),
        "a",
        5,
    )
    assert connections.key_for("lab", "https://lab.example.test/v1") == "sk-lab-1"
    assert connections.key_for("lab", "https://elsewhere.example.test/v1") == ""
    assert connections.key_for("", "https://lab.example.test/v1") == ""
    assert CallSettings(base_url="https://lab.example.test/v1", model="a", connection="lab").api_key == "sk-lab-1"
    for bad, field in [
        ({"x": {"base_url": "ftp://x"}}, "x.base_url"),
        ({"x": {"base_url": "https://x.test", "models": "a"}}, "x.models"),
        ({"x": {"base_url": "https://x.test", "rpm": -1}}, "x.rpm"),
        ({"x": {"base_url": "https://x.test", "key": "sk-inline"}}, "x.key"),
        ({"Bad Name": {"base_url": "https://x.test"}}, "'Bad Name'"),
    ]:
        settings.LLM_CONNECTIONS = bad
        with pytest.raises(Exception, match=re.escape(field)):
            connections.registry()


def test_the_responder_borrows_the_drafting_key_only_on_its_server(settings):
    settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.RESPONDER_API_KEY = "http://127.0.0.1:8001/v1", SECRET, ""
    settings.RESPONDER_BASE_URL = "http://127.0.0.1:8001/v1"
    assert connections.registry()["responder"].api_key() == SECRET
    settings.RESPONDER_BASE_URL = "https://vision.example.test/v1"
    assert connections.registry()["responder"].api_key() == ""


def test_a_connection_rate_limit_applies_to_its_calls(project, settings, sim_default):
    """rpm of the connection, not the global one (none here): its bucket is keyed by the URL."""
    from feedback.drafting.service import CallGate, draft_turn

    settings.LLM_REQUESTS_PER_MINUTE = 0
    settings.RATE_LIMIT_BACKEND = "database"
    settings.LLM_CONNECTIONS = {
        "paced": {"base_url": sim_default.url, "api_key_env": "ANNOTATOR_LLM_API_KEY", "rpm": 600}
    }
    turn = SampleFactory.create_numbered(1, project=project)[0].turns.get()
    draft_turn(turn=turn, sample=turn.sample, project=project, cs=drafter_settings(project), gate=CallGate())
    assert not RateLimitBucket.objects.exists()
    cs = drafter_settings(project, connection="paced", model="annotator-simulator")
    draft = draft_turn(turn=turn, sample=turn.sample, project=project, cs=cs, gate=CallGate())
    assert draft.status == CallStatus.OK
    assert list(RateLimitBucket.objects.values_list("key", flat=True)) == [sim_default.url + ":rpm"]
