"""Review bounds on the page, in a real Chromium: a critique or a flag note past its bound is refused
with a message that names the field, nothing is saved, and the text stays where it was typed."""

from __future__ import annotations

import pytest

from feedback.limits import TEXT_MAX_CHARS
from feedback.review.models import Assignment, Revision
from tests.conftest import make_user
from tests.feedback.test_review_api import ReviewSampleFactory, make_assignment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def leased(project) -> tuple[Assignment, str]:
    password = "pw-limits-reviewer-1"
    user = make_user("limits", project=project, role="annotator")
    user.set_password(password)
    user.save()
    assignment = make_assignment(ReviewSampleFactory.create(project=project, external_id="s1", turns=1), user)
    return assignment, password


def open_review(page, base: str, assignment: Assignment, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", assignment.reviewer.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/projects/{assignment.project.slug}/review/{assignment.pk}/")


def test_a_too_long_critique_and_flag_note_are_refused_naming_the_field(live_server, page, leased):
    assignment, password = leased
    open_review(page, live_server.url, assignment, password)
    turn = assignment.sample.turns.get()
    card = page.locator(f"#turn-{turn.pk}")
    limit = TEXT_MAX_CHARS["critique"]
    critique = card.locator("textarea[data-field=critique]")
    critique.fill("x" * (limit + 1))
    for fieldset in card.locator("fieldset.score").all():
        fieldset.locator("label").first.click()
    card.locator("button[data-action=save]").click()
    errors = card.locator("[data-role=errors]")
    errors.filter(has_text="critique:").wait_for()
    assert errors.inner_text() == f"critique: At most {limit:,} characters (got {limit + 1:,})."
    assert critique.input_value() == "x" * (limit + 1)
    assert not Revision.objects.exists()

    note_limit = TEXT_MAX_CHARS["flag_note"]
    page.click("#flag-open")
    page.locator("#flag-form textarea[name=note]").fill("n" * (note_limit + 1))
    page.click("#flag-form button[value=flag]")
    page.locator("#banner").filter(has_text="note:").wait_for()
    assert page.locator("#banner").inner_text() == f"note: At most {note_limit:,} characters (got {note_limit + 1:,})."
    assignment.refresh_from_db()
    assert (assignment.state, assignment.flag) == ("leased", "")
