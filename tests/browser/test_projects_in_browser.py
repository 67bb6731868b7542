"""A team set up in a real Chromium, without the Django admin: a new project is created, its rubric
and guidelines edited (the preview drawn through htmx), two annotators added, and the project
archived; no page reports a policy violation or a script error."""

from __future__ import annotations

import pytest

from feedback.models import Project, Role
from tests.browser.conftest import wait_until
from tests.browser.test_csp_in_browser import RECORDER, check_header, log_in
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def problems_of(page, response) -> list[str]:
    found = check_header(response.headers.get("content-security-policy", "")) if response else []
    return found + page.evaluate("window.__cspViolations")


def test_a_team_is_set_up_in_the_browser(live_server, page):
    make_user("boss", role=Role.ADMIN)  # the global admin group: may create projects
    make_user("ann1")
    make_user("ann2")
    base = live_server.url
    errors: list[str] = []
    page.add_init_script(RECORDER)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    problems: list[str] = []
    log_in(page, base, "boss", "pw-boss")

    # Create.
    page.click("#new-project")
    page.wait_for_url(f"{base}/projects/new/")
    problems += problems_of(page, None)
    page.fill("#id_name", "Team labels")
    page.fill("#id_slug", "team")
    with page.expect_navigation() as created:
        page.click("#project-new-form button[type=submit]")
    assert page.url == f"{base}/projects/team/settings/"
    problems += problems_of(page, created.value)

    # Edit the rubric and the guidelines, with a preview first.
    page.fill("#id_criteria", "helpfulness\nhonesty\nclarity")
    page.fill("#id_score_max", "5")
    page.fill("#id_level_descriptions", "1: Misses the point.\n5: Nothing to add.")
    page.fill("#id_guidelines", "# Rules\n\nLook at the *image* first.\n\n<script>window.__ran = 1</script>")
    page.evaluate("window.__sameDocument = true")
    page.click("#preview-button")
    wait_until(page, "document.querySelector('#guidelines-preview h1')?.textContent === 'Rules'")
    assert page.evaluate("window.__sameDocument") is True  # htmx drew it in place, no form submission
    assert page.evaluate("window.__ran") is None
    assert page.locator("#guidelines-preview em").inner_text() == "image"
    assert Project.objects.get(slug="team").guidelines == ""
    with page.expect_navigation() as saved:
        page.click("#save-settings")
    problems += problems_of(page, saved.value)
    assert "Settings saved." in page.locator(".messages").inner_text()
    project = Project.objects.get(slug="team")
    assert (project.criteria, project.score_max) == (["helpfulness", "honesty", "clarity"], 5)
    assert project.level_descriptions == {"1": "Misses the point.", "5": "Nothing to add."}

    # Add two annotators.
    page.click("text=Members")
    page.wait_for_url(f"{base}/projects/team/members/")
    for name in ("ann1", "ann2"):
        page.fill("#id_username", name)
        page.select_option("#id_role", "annotator")
        with page.expect_navigation() as added:
            page.click("#add-member")
        problems += problems_of(page, added.value)
        assert f"{name} added as annotator" in page.locator(".messages").inner_text()
    rows = page.locator("#members tbody tr")
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.member)")) == ["ann1", "ann2", "boss"]
    assert dict(project.memberships.values_list("user__username", "role")) == {
        "boss": "admin",
        "ann1": "annotator",
        "ann2": "annotator",
    }

    # The project page shows the guidelines as HTML; archiving (asked first) hides it from the list.
    response = page.goto(f"{base}/projects/team/")
    problems += problems_of(page, response)
    assert page.locator("#guidelines h1").inner_text() == "Rules"
    page.goto(f"{base}/projects/team/settings/")
    with page.expect_navigation():
        page.click("#archive")
    assert page.locator("#archived-notice").is_visible()
    response = page.goto(f"{base}/")
    problems += problems_of(page, response)
    assert page.locator("a[href='/projects/team/']").count() == 0
    assert Project.objects.get(slug="team").archived_at is not None
    assert problems == [] and errors == []
