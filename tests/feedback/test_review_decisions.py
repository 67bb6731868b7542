"""The server decides accept vs edit and computes every diff the review page shows: an edit that
changes nothing in the draft is stored (and answered) as accepted, whoever sends it; the autosave's
answer carries the live diff, the same segments the saved revision's history shows; a conflict's
answer carries the theirs → yours diff; the page's configuration names states, decisions, the scale
and the shortcuts from Python."""

from __future__ import annotations

import json

import pytest

from feedback.review.diff import word_diff
from feedback.review.models import Assignment, Decision, Revision
from feedback.review.shortcuts import SHORTCUTS
from tests.conftest import token_client
from tests.feedback.test_review_api import ReviewSampleFactory, assignment_url, make_assignment, save

pytestmark = pytest.mark.django_db


@pytest.fixture
def leased(project, annotator_user):
    assignment = make_assignment(ReviewSampleFactory.create(project=project, external_id="s1", turns=2), annotator_user)
    turn = assignment.sample.turns.order_by("index").first()
    assert turn is not None
    draft = turn.drafts.filter(status="ok").latest("created_at")
    return assignment, turn, draft


def draft_body(draft, **changes) -> dict:
    body = {
        "base_version": 0,
        "decision": "edited",
        "critique": draft.critique,
        "refinement": draft.refinement,
        "scores": dict(draft.scores),
    }
    return {**body, **changes}


def test_an_api_edit_equal_to_the_draft_is_stored_and_answered_as_accepted(leased, annotator_user):
    assignment, turn, draft = leased
    client = token_client(annotator_user)
    response = save(client, assignment.pk, turn.pk, **draft_body(draft))
    assert response.status_code == 201
    assert response.json()["revision"]["decision"] == Decision.ACCEPTED
    assert Revision.objects.get(assignment=assignment, turn=turn).decision == Decision.ACCEPTED


def test_scores_sent_as_digits_equal_to_the_draft_are_no_change(leased, annotator_user):
    assignment, turn, draft = leased
    scores = {name: str(value) for name, value in draft.scores.items()}
    response = save(token_client(annotator_user), assignment.pk, turn.pk, **draft_body(draft, scores=scores))
    assert response.json()["revision"]["decision"] == Decision.ACCEPTED


@pytest.mark.parametrize(
    "change",
    [
        {"critique": "Another critique."},
        {"refinement": "A red bus."},
        {"scores": {"helpfulness": 1, "honesty": 6, "harmlessness": 7}},
        {"critique": "Good. "},  # a trailing space is a change: texts are compared as typed
    ],
)
def test_an_api_edit_that_changes_the_draft_stays_edited(leased, annotator_user, change):
    assignment, turn, draft = leased
    response = save(token_client(annotator_user), assignment.pk, turn.pk, **draft_body(draft, **change))
    assert response.status_code == 201
    assert response.json()["revision"]["decision"] == Decision.EDITED
    assert Revision.objects.get(assignment=assignment, turn=turn).decision == Decision.EDITED


def test_a_rejection_of_an_unchanged_draft_stays_rejected(leased, annotator_user):
    assignment, turn, draft = leased
    body = draft_body(draft, decision="rejected", reason="Off topic.")
    response = save(token_client(annotator_user), assignment.pk, turn.pk, **body)
    assert response.json()["revision"]["decision"] == Decision.REJECTED


def test_an_edit_back_to_the_draft_after_a_change_is_accepted(leased, annotator_user):
    assignment, turn, draft = leased
    client = token_client(annotator_user)
    first = save(client, assignment.pk, turn.pk, **draft_body(draft, critique="Changed."))
    assert first.json()["revision"]["decision"] == Decision.EDITED
    second = save(client, assignment.pk, turn.pk, **draft_body(draft, base_version=1))
    assert second.json()["revision"]["decision"] == Decision.ACCEPTED
    history = client.get(f"/api/projects/test/turns/{turn.pk}/revisions/").json()
    assert history[1]["critique_diff"] == [["del", "Changed."], ["ins", draft.critique]]


def test_the_autosave_answers_with_the_live_diff_that_the_saved_revisions_history_shows(leased, annotator_user):
    assignment, turn, draft = leased
    client = token_client(annotator_user)
    typed = {
        "critique": draft.critique + " It should say the bus is <b>red</b> & tall.",
        "refinement": "A red bus.",
        "scores": {**draft.scores, "helpfulness": 2},
        "reason": "",
    }
    answer = client.put(
        assignment_url(assignment.pk, f"turns/{turn.pk}/working-copy/"),
        {"fields": typed, "base_version": 0},
        format="json",
    )
    assert answer.status_code == 200
    live = answer.json()["diff"]
    assert live["critique"] == [list(s) for s in word_diff(draft.critique, typed["critique"])]
    assert ["ins", " It should say the bus is <b>red</b> & tall."] in live["critique"]
    assert live["scores"] == [["helpfulness", draft.scores["helpfulness"], 2]]

    saved = save(client, assignment.pk, turn.pk, **draft_body(draft, **{k: typed[k] for k in typed if k != "reason"}))
    assert saved.json()["revision"]["decision"] == Decision.EDITED
    history = client.get(f"/api/projects/test/turns/{turn.pk}/revisions/").json()
    assert history[0]["critique_diff"] == live["critique"]
    assert history[0]["refinement_diff"] == live["refinement"]
    assert history[0]["score_changes"] == live["scores"]


def test_a_conflict_answers_with_the_diff_of_theirs_to_yours(leased, annotator_user, admin_user):
    assignment, turn, draft = leased
    save(token_client(admin_user), assignment.pk, turn.pk, **draft_body(draft, critique="Theirs was short."))
    response = save(
        token_client(annotator_user), assignment.pk, turn.pk, **draft_body(draft, critique="Mine was short.")
    )
    assert response.status_code == 409
    body = response.json()
    assert body["conflict"] is True
    assert body["diff"]["critique"] == [["del", "Theirs"], ["ins", "Mine"], ["same", " was short."]]


def test_the_page_config_takes_states_decisions_scale_levels_and_shortcuts_from_python(client, leased, annotator_user):
    assignment, _, _ = leased
    client.force_login(annotator_user)
    html = client.get(f"/projects/test/review/{assignment.pk}/").content.decode()
    start = html.index('<script id="review-config" type="application/json">') + len(
        '<script id="review-config" type="application/json">'
    )
    config = json.loads(html[start : html.index("</script>", start)])
    assert config["states"] == {s.name: s.value for s in Assignment.State}
    assert config["decisionLabels"] == dict(Decision.choices)
    assert config["decisions"] == {"ACCEPTED": "accepted", "EDITED": "edited", "REJECTED": "rejected"}
    assert set(config["editableStates"]) == {"leased", "submitted", "expired"}
    project = assignment.project
    assert config["scale"] == {"min": project.score_min, "max": project.score_max}
    assert config["levels"] == {str(n): project.level_descriptions.get(str(n), "") for n in project.score_range}
    assert [s["action"] for s in config["shortcuts"]] == [s.action for s in SHORTCUTS]
    assert config["turns"][0]["diff"] is None  # opens with the draft: nothing to diff, nothing computed
    # The level descriptions are text on the page, beside the scores, not only tooltips.
    for n, description in project.level_descriptions.items():
        if description:
            assert f"<dt>{n}</dt><dd>{description}</dd>" in html
    # Every shortcut is in the help panel, the menu-clashing Alt keys with their Ctrl+Alt twins.
    assert "<kbd>Ctrl</kbd>+<kbd>Alt</kbd>+<kbd>F</kbd> or <kbd>Alt</kbd>+<kbd>F</kbd>" in html
    assert 'id="single-keys"' in html
    assert 'role="alert"' in html


def test_the_page_opens_with_the_servers_diff_of_unsaved_typing(client, leased, annotator_user):
    assignment, turn, draft = leased
    api = token_client(annotator_user)
    fields = {"critique": "Rewritten entirely.", "scores": dict(draft.scores)}
    api.put(
        assignment_url(assignment.pk, f"turns/{turn.pk}/working-copy/"),
        {"fields": fields, "base_version": 0},
        format="json",
    )
    client.force_login(annotator_user)
    html = client.get(f"/projects/test/review/{assignment.pk}/").content.decode()
    start = html.index('<script id="review-config" type="application/json">')
    config = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert config["turns"][0]["diff"]["critique"] == [list(s) for s in word_diff(draft.critique, "Rewritten entirely.")]
    assert config["turns"][1]["diff"] is None


def test_the_page_reads_a_first_revisions_stored_diff_instead_of_diffing_again(client, leased, annotator_user):
    assignment, turn, draft = leased
    api = token_client(annotator_user)
    save(api, assignment.pk, turn.pk, **draft_body(draft, critique="Changed.", scores={**draft.scores, "honesty": 1}))
    stored = {"critique": [["ins", "as stored"]], "refinement": []}
    Revision.objects.filter(assignment=assignment, turn=turn).update(diff=stored)
    client.force_login(annotator_user)
    html = client.get(f"/projects/test/review/{assignment.pk}/").content.decode()
    start = html.index('<script id="review-config" type="application/json">')
    config = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert config["turns"][0]["diff"] == {**stored, "scores": [["honesty", draft.scores["honesty"], 1]]}
