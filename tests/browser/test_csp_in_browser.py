"""Every page under the strict Content-Security-Policy, in a real Chromium: the header is sent, and
the browser reports no violation (no inline script, handler or style was refused), also after the
polled pages have refreshed their live part through htmx. The polling survives network errors and
error responses, and the confirm dialogs work without inline handlers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from demo.setup import demo_setup
from exports.models import Release
from feedback.jobs.models import Job
from feedback.models import ImportBatch, Sample
from feedback.trials.service import trial_create
from tests.browser.conftest import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# Records what the browser refuses, before any script of the page runs (Playwright injects it
# outside the page's policy). htmx's swaps are counted to know that a polled page has refreshed.
RECORDER = """
window.__cspViolations = [];
window.__swaps = 0;
window.__errors = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} refused ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber} ${e.sample || ""}`
  );
});
document.addEventListener("htmx:afterSwap", () => { window.__swaps += 1; });
document.addEventListener("htmx:sendError", () => window.__errors.push("send"));
document.addEventListener("htmx:responseError", () => window.__errors.push("response"));
"""


class Watch:
    """What one page's loads report: policy violations (events and console), script errors."""

    def __init__(self, page):
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(RECORDER)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def visit(self, url: str, *, polls: bool = False) -> list[str]:
        """Loads the page; returns every problem found (an empty list for a clean page)."""
        self.console.clear()
        self.errors.clear()
        response = self.page.goto(url)
        assert response is not None and response.status == 200, (url, response and response.status)
        self.page.wait_for_load_state("load")
        problems = check_header(response.headers.get("content-security-policy", ""))
        if polls:  # one refresh of the live part at least, through htmx
            wait_until(self.page, "window.__swaps >= 1", timeout=15_000)
        elif "/admin/" not in url:  # the admin's own pages do not load it
            assert self.page.evaluate("typeof window.htmx") == "object", f"{url}: htmx did not load"
        problems += self.page.evaluate("window.__cspViolations")
        problems += self.console + self.errors
        return problems


def check_header(header: str) -> list[str]:
    directives = {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}
    if not directives:
        return ["no Content-Security-Policy header"]
    problems = []
    for name in ("script-src", "style-src"):
        sources = directives.get(name, directives.get("default-src"))
        if sources != ["'self'"]:
            problems.append(f"{name} is {sources}, not only 'self'")
    if any("unsafe" in source for sources in directives.values() for source in sources):
        problems.append(f"an unsafe source: {header}")
    return problems


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_every_page_runs_under_the_strict_policy_without_a_violation(live_server, page):
    project, logins, _ = demo_setup()
    base, slug = live_server.url, project.slug
    watch = Watch(page)
    log_in(page, base, "admin", logins["admin"])
    job = Job.objects.filter(project=project).first()
    assert job is not None
    release = Release.objects.get(project=project)
    assert job.state == Job.State.QUEUED and release.state == Release.State.QUEUED  # no worker: they stay queued
    finished = ImportBatch.objects.filter(project=project, status="completed").first()
    assert finished is not None
    running = ImportBatch.objects.create(project=project, format="native", file_name="big.jsonl", status="running")
    sample = Sample.objects.filter(project=project, image__isnull=False).exclude(image__file="").first()
    assert sample is not None
    trial = trial_create(  # no worker: it stays running, and its page polls
        project=project, set={"kind": "random", "n": 2}, variants=[{}, {"temperature": 1.0}]
    )

    pages = {
        "project list": (f"{base}/", False),
        "project": (f"{base}/projects/{slug}/", False),
        "samples": (f"{base}/projects/{slug}/samples/", False),
        "sample": (f"{base}/projects/{slug}/samples/{sample.pk}/", False),
        "new import": (f"{base}/projects/{slug}/imports/new/", False),
        "finished import": (f"{base}/projects/{slug}/imports/{finished.pk}/", False),
        "running import": (f"{base}/projects/{slug}/imports/{running.pk}/", True),
        "jobs": (f"{base}/projects/{slug}/jobs/", False),
        "new job": (f"{base}/projects/{slug}/jobs/new/", False),
        "job": (f"{base}/projects/{slug}/jobs/{job.pk}/", True),
        "releases": (f"{base}/projects/{slug}/releases/", True),
        "new release": (f"{base}/projects/{slug}/releases/new/", False),
        "release": (f"{base}/projects/{slug}/releases/{release.pk}/", True),
        "review home": (f"{base}/projects/{slug}/review/", False),
        "leases": (f"{base}/projects/{slug}/review/leases/", False),
        "quality": (f"{base}/projects/{slug}/quality/", False),
        "prompts": (f"{base}/projects/{slug}/prompts/", False),
        "prompt": (f"{base}/projects/{slug}/prompts/1/", False),
        "new prompt": (f"{base}/projects/{slug}/prompts/new/", False),
        "trials": (f"{base}/projects/{slug}/trials/", False),
        "running trial": (f"{base}/projects/{slug}/trials/{trial.pk}/", True),
        "new project": (f"{base}/projects/new/", False),
        "project settings": (f"{base}/projects/{slug}/settings/", False),
        "members": (f"{base}/projects/{slug}/members/", False),
        "adjudication queue": (f"{base}/projects/{slug}/adjudication/", False),
        "workers": (f"{base}/workers/", False),
        "admin": (f"{base}/admin/", False),
        "admin samples": (f"{base}/admin/feedback/sample/", False),
        "admin sample": (f"{base}/admin/feedback/sample/{sample.pk}/change/", False),
    }
    found = {name: watch.visit(url, polls=polls) for name, (url, polls) in pages.items()}
    assert {name: problems for name, problems in found.items() if problems} == {}


def test_the_review_page_runs_under_the_strict_policy_without_a_violation(live_server, page):
    project, logins, _ = demo_setup()
    watch = Watch(page)
    log_in(page, live_server.url, "annotator", logins["annotator"])
    page.goto(f"{live_server.url}/projects/{project.slug}/review/")
    page.click("form[action$='/review/start/'] button")
    page.wait_for_url(f"{live_server.url}/projects/{project.slug}/review/*/")
    assert watch.visit(page.url) == []


def test_the_login_and_locked_out_pages_run_under_the_strict_policy(live_server, page, settings):
    settings.AXES_FAILURE_LIMIT = 2
    User.objects.create_user("someone", password="the right one")
    watch = Watch(page)
    assert watch.visit(f"{live_server.url}/login/") == []
    for _ in range(2):
        page.fill("#id_username", "someone")
        page.fill("#id_password", "a wrong one")
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "Login locked"
    assert page.evaluate("window.__cspViolations") == [] and watch.console == [] and watch.errors == []


@pytest.mark.parametrize("which", ["job", "import", "release", "release list"])
def test_a_polled_page_survives_network_errors_and_shows_the_end_without_a_reload(live_server, page, which):
    """The first refreshes fail (no connection, then a 500); the page keeps asking, and shows the
    work's end when it comes, in the same document (no reload)."""
    project, logins, _ = demo_setup()
    base, slug = live_server.url, project.slug
    job = Job.objects.filter(project=project).first()
    assert job is not None
    release = Release.objects.get(project=project)
    batch = ImportBatch.objects.create(project=project, format="native", file_name="big.jsonl", status="running")
    url, finish, shown = {
        "job": (
            f"{base}/projects/{slug}/jobs/{job.pk}/",
            lambda: Job.objects.filter(pk=job.pk).update(state=Job.State.COMPLETED, total=7),
            "document.getElementById('state').textContent === 'completed'",
        ),
        "import": (
            f"{base}/projects/{slug}/imports/{batch.pk}/",
            lambda: ImportBatch.objects.filter(pk=batch.pk).update(status="completed", created=42),
            "document.getElementById('created').textContent === '42'",
        ),
        "release": (
            f"{base}/projects/{slug}/releases/{release.pk}/",
            lambda: Release.objects.filter(pk=release.pk).update(state=Release.State.FAILED, error="Out of disk."),
            "document.getElementById('error') && document.getElementById('state').textContent === 'failed'",
        ),
        "release list": (
            f"{base}/projects/{slug}/releases/",
            lambda: Release.objects.filter(pk=release.pk).update(state=Release.State.FAILED, error="Out of disk."),
            f"document.querySelector('tr[data-release=\"{release.pk}\"]').dataset.state === 'failed'",
        ),
    }[which]
    failures = ["abort", "500"]

    def refresh(route):
        if route.request.headers.get("hx-request") and failures:
            if failures.pop(0) == "abort":
                return route.abort("connectionrefused")
            return route.fulfill(status=500, body="Server Error")
        return route.continue_()

    watch = Watch(page)
    log_in(page, base, "admin", logins["admin"])
    page.route(url.replace(base, "**") + "*", refresh)
    page.goto(url)
    page.evaluate("window.__sameDocument = true")
    wait_until(page, "window.__errors.length >= 2")
    assert not failures
    wait_until(page, "window.__swaps >= 1")  # it kept asking
    finish()
    wait_until(page, shown)
    assert page.evaluate("window.__sameDocument") is True, "shown without a reload"
    live = {"job": "#job-progress", "import": "#import-progress", "release": "#release-progress"}
    live_part = live.get(which, "#release-rows")
    assert page.locator(live_part).get_attribute("hx-trigger") is None, "the polling stopped once the work ended"
    assert page.evaluate("window.__cspViolations") == [] and watch.console == []


def test_the_confirm_dialogs_work_without_inline_handlers(live_server, page):
    project, logins, _ = demo_setup()
    release = Release.objects.get(project=project)
    log_in(page, live_server.url, "admin", logins["admin"])
    page.goto(f"{live_server.url}/projects/{project.slug}/releases/{release.pk}/")
    questions = []

    def answer(dialog, accept: bool) -> None:
        questions.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.evaluate("window.__sameDocument = true")
    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("#cancel")  # the dialog blocks the submit event; a refusal stops it there
    assert page.evaluate("window.__sameDocument") is True
    release.refresh_from_db()
    assert questions == [f"Cancel release #{release.pk}? Its build stops and writes nothing more."]
    assert release.state == Release.State.QUEUED, "dismissed: nothing was sent"

    page.once("dialog", lambda dialog: answer(dialog, True))
    with page.expect_navigation():
        page.click("#cancel")
    page.wait_for_selector("#delete")
    release.refresh_from_db()
    assert release.state == Release.State.CANCELLED
    page.once("dialog", lambda dialog: answer(dialog, True))
    with page.expect_navigation():
        page.click("#delete")
    assert page.url.endswith(f"/projects/{project.slug}/releases/")
    assert not Release.objects.filter(pk=release.pk).exists()
    assert len(questions) == 3 and questions[2].startswith(f"Delete release #{release.pk} and all its files?")


def test_a_polled_page_goes_to_the_login_page_when_the_session_ends(live_server, page):
    project, logins, _ = demo_setup()
    job = Job.objects.filter(project=project).first()
    assert job is not None
    log_in(page, live_server.url, "admin", logins["admin"])
    url = f"{live_server.url}/projects/{project.slug}/jobs/{job.pk}/"
    page.goto(url)
    page.context.clear_cookies()  # the session ends
    login = f"{live_server.url}/login/?next=/projects/{project.slug}/jobs/{job.pk}/"
    page.wait_for_url(lambda address: address == login)
    assert page.locator("#job-progress").count() == 0 and page.locator("#id_username").is_visible()
    page.fill("#id_username", "admin")
    page.fill("#id_password", logins["admin"])
    page.click("button[type=submit]")
    page.wait_for_url(url)  # back where the user was
