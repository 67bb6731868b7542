"""An admin, in a real Chromium under the strict policy: makes a new prompt version with the live
preview, runs a two-variant trial of it against v1 on reviewed samples (a real worker drafts through
the simulator), reads both variants' figures and their drafts side by side, and promotes the winner."""

from __future__ import annotations

import pytest

from feedback.models import Project
from feedback.trials.models import Trial, TrialDraft
from tests.browser.conftest import wait_until
from tests.browser.test_csp_in_browser import Watch, log_in
from tests.conftest import make_user
from tests.quality.quality_helpers import Review, SamplePlan, TurnPlan, build, reviewers
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

NEW_FIRST_LINE = "Judge the answer below as a strict reviewer."


def test_new_version_with_preview_two_variant_trial_promote_winner(
    live_server, page, project, settings, llm_simulator, tmp_path
):
    settings.LLM_BASE_URL = llm_simulator.url
    llm_simulator.configure(latency_ms=30)
    make_user("boss", project=project, role="admin")
    (ann,) = reviewers(project, "ann")
    edited = {"helpfulness": 4, "honesty": 6, "harmlessness": 7}
    plan = [TurnPlan({"helpfulness": 5, "honesty": 6, "harmlessness": 7}, decision="edited", final=edited)]
    build(project, [SamplePlan([Review(ann, plan)]) for _ in range(8)])
    base, slug = live_server.url, project.slug
    env = {"ANNOTATOR_JOB_WATCH_INTERVAL": "1", "ANNOTATOR_LLM_BASE_URL": llm_simulator.url}
    worker = WorkerProcess("default,llm", log_path=tmp_path / "worker.log", env=env)
    watch = Watch(page)
    try:
        log_in(page, base, "boss", "pw-boss")

        # A new prompt version, with its preview following the typing.
        page.goto(f"{base}/projects/{slug}/prompts/new/")
        assert "Review the response under review." in page.locator("#preview-user").inner_text()
        swaps = page.evaluate("window.__swaps")
        user = page.locator("#id_user")
        user.fill(user.input_value().replace("Review the response under review.", NEW_FIRST_LINE))
        wait_until(page, f"window.__swaps > {swaps}")
        assert page.locator("#preview-user").inner_text().startswith(NEW_FIRST_LINE)
        page.fill("#id_note", "Stricter.")
        page.click("#save-version")
        page.wait_for_url(f"{base}/projects/{slug}/prompts/2/")

        # A trial of v1 against v2 on the reviewed samples.
        page.goto(f"{base}/projects/{slug}/")
        page.click("#trials-link")
        page.wait_for_url(f"{base}/projects/{slug}/trials/")
        page.select_option("#id_set_kind", "reviewed")
        page.fill("#id_n", "8")
        page.select_option("#id_v0_prompt_version", "v1")
        page.select_option("#id_v1_prompt_version", "v2")
        page.fill("#id_v1_temperature", "0.9")
        page.click("#start-trial")
        page.wait_for_url(f"{base}/projects/{slug}/trials/*/")
        trial = Trial.objects.get(project=project)

        # The figures fill in without a reload while the worker drafts, then the polling stops.
        page.evaluate("window.__sameDocument = true")
        wait_until(page, "document.getElementById('trial-state').textContent === 'completed'", timeout=90_000)
        assert page.evaluate("window.__sameDocument") is True
        assert page.locator("#trial-figures").get_attribute("hx-trigger") is None
        assert TrialDraft.objects.filter(variant__trial=trial, state=TrialDraft.State.DONE).count() == 16
        for label in ("A", "B"):
            row = page.locator(f"#variant-figures tr[data-variant='{label}']")
            assert row.locator(".gold").inner_text() == "8"
            assert row.locator("[data-fig='kappa']").count() == 1
            assert float(row.locator(".cost").inner_text()) > 0

        # Side by side: a reload shows each variant's draft of the first sample, marked against the final.
        page.reload()
        assert page.locator(".variant-draft[data-variant='A']").count() == 1
        assert page.locator(".variant-draft[data-variant='B']").count() == 1
        assert page.locator(".variant-draft ins, .variant-draft del").count() > 0

        page.click("button.promote[data-variant='B']")
        page.wait_for_url(f"{base}/projects/{slug}/trials/{trial.pk}/")
        assert page.locator("#promoted").inner_text() == "B"
        project = Project.objects.get(pk=project.pk)
        assert (project.prompt_version, project.llm_temperature) == ("v2", 0.9)

        assert page.evaluate("window.__cspViolations") == [] and watch.console == [] and watch.errors == []
        for url in (f"{base}/projects/{slug}/trials/", f"{base}/projects/{slug}/trials/{trial.pk}/"):
            assert watch.visit(url) == [], url
    finally:
        worker.stop()
