"""An admin makes a new prompt version in a real Chromium: the preview follows the typing and the
chosen sample through htmx (no model is called), a bad placeholder is named in the preview, the
version is saved, diffed with v1 and made the default, all under the strict policy."""

from __future__ import annotations

import pytest

from demo.setup import demo_setup
from feedback.drafting.models import PromptVersion
from feedback.models import Project, Sample
from tests.browser.conftest import wait_until
from tests.browser.test_csp_in_browser import Watch, log_in

pytestmark = pytest.mark.django_db(transaction=True)

NEW_FIRST_LINE = "Judge the answer below as a strict reviewer."


def preview_text(page) -> str:
    return page.evaluate("(document.getElementById('preview-user') || {}).textContent || ''")


def test_an_admin_makes_a_new_version_with_the_live_preview(live_server, page):
    project, logins, _ = demo_setup()
    base, slug = live_server.url, project.slug
    watch = Watch(page)
    log_in(page, base, "admin", logins["admin"])
    assert watch.visit(f"{base}/projects/{slug}/") == []
    page.click("#prompts-link")
    page.wait_for_url(f"{base}/projects/{slug}/prompts/")
    assert page.locator("#versions tbody tr").count() == 1
    page.click("#new-version")
    page.wait_for_url(f"{base}/projects/{slug}/prompts/new/")
    assert "Review the response under review." in preview_text(page)  # v1 on the first sample, rendered at once

    swaps = page.evaluate("window.__swaps")
    user = page.locator("#id_user")
    user.fill(user.input_value().replace("Review the response under review.", NEW_FIRST_LINE))
    wait_until(page, f"window.__swaps > {swaps}")
    assert preview_text(page).startswith(NEW_FIRST_LINE)

    options = page.locator("#id_sample option")
    assert options.count() >= 2
    second = options.nth(1).get_attribute("value")
    assert second is not None
    sample = Sample.objects.get(pk=int(second))
    turn = sample.turns.exclude(model_response=None).order_by("index").first()
    assert turn is not None
    question = turn.user_message
    swaps = page.evaluate("window.__swaps")
    page.select_option("#id_sample", second)
    wait_until(page, f"window.__swaps > {swaps}")
    assert question.splitlines()[0] in preview_text(page)

    swaps = page.evaluate("window.__swaps")
    user.fill(user.input_value() + "\n{mood}")
    wait_until(page, f"window.__swaps > {swaps}")
    assert "{mood}" in page.locator("#preview-error").inner_text()
    user.fill(user.input_value().replace("\n{mood}", ""))
    page.fill("#id_note", "A stricter opening.")
    page.click("#save-version")
    page.wait_for_url(f"{base}/projects/{slug}/prompts/2/")
    v2 = PromptVersion.objects.get(project=project, number=2)
    assert v2.author is not None and v2.author.username == "admin"
    assert v2.user.startswith(NEW_FIRST_LINE) and v2.note == "A stricter opening."
    assert page.locator("#sha256").inner_text() == v2.sha256

    page.click("#diff-previous")
    page.wait_for_url(f"{base}/projects/{slug}/prompts/diff/?a=1&b=2")
    inserted = " ".join(page.locator("#user-diff ins").all_inner_texts())
    deleted = " ".join(page.locator("#user-diff del").all_inner_texts())
    assert "strict" in inserted and "Review" in deleted
    page.goto(f"{base}/projects/{slug}/prompts/2/")
    page.click("#make-default")
    page.wait_for_url(f"{base}/projects/{slug}/prompts/")
    assert Project.objects.get(pk=project.pk).prompt_version == "v2"
    assert page.locator("tr[data-version='2'] #default-badge").count() == 1

    assert page.evaluate("window.__cspViolations") == [] and watch.console == [] and watch.errors == []
    for url in (
        f"{base}/projects/{slug}/prompts/",
        f"{base}/projects/{slug}/prompts/2/",
        f"{base}/projects/{slug}/prompts/diff/?a=1&b=2",
        f"{base}/projects/{slug}/prompts/new/?from=2",
    ):
        assert watch.visit(url) == [], url
