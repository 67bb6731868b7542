"""Projects through the three doors (pages, API, commands): who creates and edits them, the bounds
on every setting (each refusal names its field), rubric changes refused where they would orphan
scores, guidelines rendered safely, and archiving that hides without deleting."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from feedback.models import ImportedFeedback, Project, ProjectMembership, Role, Sample
from feedback.projects import guidelines, service
from feedback.review.claims import lease_duration
from feedback.review.models import Revision
from tests.conftest import make_user, token_client
from tests.factories import MembershipFactory, UserFactory
from tests.feedback.review_helpers import claim_one, decide_all, make_drafted_samples

pytestmark = pytest.mark.django_db


def member(name: str, project: Project, role: str):
    """A member of ``project`` in ``role`` only (no global group: not a platform admin)."""
    user = UserFactory.create(username=name)
    MembershipFactory.create(project=project, user=user, role=role)
    return user


@pytest.fixture
def boss(db):
    """A member of the global admin group: may create projects."""
    return make_user("boss", role=Role.ADMIN)


@pytest.fixture
def lead(project):
    """The project's own admin (a membership, not the global group)."""
    return member("lead", project, Role.ADMIN)


# --- creating ------------------------------------------------------------------------------------


def test_platform_admins_create_projects_and_become_their_admin(boss, project):
    project.guidelines = "# Be kind"
    project.criteria = ["helpfulness", "honesty"]
    project.save()
    response = token_client(boss).post(
        "/api/projects/", {"slug": "second", "name": "Second", "from_project": "test"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["slug"], body["criteria"], body["guidelines"], body["archived"]) == (
        "second",
        ["helpfulness", "honesty"],
        "# Be kind",
        False,
    )
    unknown = token_client(boss).post(
        "/api/projects/", {"slug": "third", "name": "Third", "from_project": "nowhere"}, format="json"
    )
    assert unknown.status_code == 400 and list(unknown.json()["errors"]) == ["from_project"]
    made = Project.objects.get(slug="second")
    assert list(made.memberships.values_list("user__username", "role")) == [("boss", Role.ADMIN)]
    assert made.samples.count() == 0


def test_only_platform_admins_create_projects_on_every_door(client, project, lead):
    annotator = member("ann", project, Role.ANNOTATOR)
    for user in (lead, annotator):  # a project's own admin does not create projects
        response = token_client(user).post("/api/projects/", {"slug": "x", "name": "X"}, format="json")
        assert response.status_code == 403 and response.json()["code"] == "not_allowed"
        client.force_login(user)
        assert client.get("/projects/new/").status_code == 403
        assert client.post("/projects/new/", {"slug": "x", "name": "X"}).status_code == 403
    assert not Project.objects.filter(slug="x").exists()


def test_the_new_project_page_creates_and_leads_to_the_settings(client, boss, project):
    client.force_login(boss)
    assert b'id="new-project"' in client.get("/").content
    response = client.post("/projects/new/", {"slug": "fresh", "name": "Fresh", "from_project": "test"})
    assert response.status_code == 302 and response["Location"] == "/projects/fresh/settings/"
    assert Project.objects.get(slug="fresh").memberships.get().user == boss
    again = client.post("/projects/new/", {"slug": "fresh", "name": "Other"})
    assert again.status_code == 200 and b'id="error-slug"' in again.content and b"is taken" in again.content
    reserved = client.post("/projects/new/", {"slug": "new", "name": "New"})
    assert b'id="error-slug"' in reserved.content and b"reserved" in reserved.content


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "a" * (service.SLUG_MAX + 1)}, "slug"),
        ({"slug": "no spaces"}, "slug"),
        ({"name": "n" * (service.NAME_MAX + 1)}, "name"),
        ({"description": "d" * (service.DESCRIPTION_MAX + 1)}, "description"),
        ({"guidelines": "g" * (service.GUIDELINES_MAX + 1)}, "guidelines"),
        ({"criteria": [f"c{i}" for i in range(service.CRITERIA_MAX + 1)]}, "criteria"),
        ({"criteria": ["x" * (service.CRITERION_MAX + 1)]}, "criteria"),
        ({"criteria": ["Has Spaces"]}, "criteria"),
        ({"criteria": ["a", "a"]}, "criteria"),
        ({"criteria": []}, "criteria"),
        ({"score_min": 5, "score_max": 5}, "score_max"),
        ({"score_max": service.SCORE_BOUNDS[1] + 1}, "score_max"),
        ({"level_descriptions": {"9": "outside 1-7"}}, "level_descriptions"),
        ({"score_min": 29, "level_descriptions": {"abc": "not a score"}}, "level_descriptions"),
        ({"level_descriptions": {"3": "l" * (service.LEVEL_DESCRIPTION_MAX + 1)}}, "level_descriptions"),
        ({"llm_connection": "nowhere"}, "llm_connection"),
        ({"prompt_version": "v99"}, "prompt_version"),
        ({"llm_temperature": 3}, "llm_temperature"),
        ({"reviews_required": 21}, "reviews_required"),
        ({"review_lease_seconds": 60}, "review_lease_seconds"),
        ({"adjudication_threshold": 0}, "adjudication_threshold"),
        ({"adjudication_threshold": service.ADJUDICATION_THRESHOLD_BOUNDS[1] + 1}, "adjudication_threshold"),
        ({"gold_every": -1}, "gold_every"),
        ({"gold_every": service.GOLD_EVERY_BOUNDS[1] + 1}, "gold_every"),
        ({"review_order": "criterion", "review_criterion": "beauty"}, "review_criterion"),
    ],
)
def test_every_setting_is_bounded_and_the_refusal_names_it(boss, body, field):
    response = token_client(boss).post("/api/projects/", {"slug": "ok", "name": "OK", **body}, format="json")
    assert response.status_code == 400, response.json()
    named = response.json()["errors"]
    assert any(key == field or key.startswith(f"{field}.") for key in named), named  # criteria.0, say
    assert not Project.objects.filter(slug="ok").exists()
    # The service, behind the page and the command, names the same field.
    with pytest.raises(service.InvalidInput) as refused:
        service.project_create(slug=body.pop("slug", "ok"), name=body.pop("name", "OK"), **body)
    assert field in refused.value.errors


# --- editing -------------------------------------------------------------------------------------


def test_only_the_projects_admins_edit_it_researchers_read_outsiders_get_404(project, lead, client):
    researcher = member("rex", project, Role.RESEARCHER)
    annotator = member("ann", project, Role.ANNOTATOR)
    outsider = member("olga", Project.objects.create(name="Other", slug="other"), Role.ADMIN)
    change = {"description": "changed"}
    for user, api_status, page_get, page_post in (
        (annotator, 403, 403, 403),
        (researcher, 403, 200, 403),
        (outsider, 404, 404, 404),
    ):
        assert token_client(user).patch("/api/projects/test/", change, format="json").status_code == api_status
        client.force_login(user)
        assert client.get("/projects/test/settings/").status_code == page_get
        assert client.post("/projects/test/settings/", {"description": "changed"}).status_code == page_post
        assert client.post("/projects/test/archive/", {"archived": "1"}).status_code == page_post
    client.force_login(researcher)
    read_only = client.get("/projects/test/settings/").content
    assert b'id="save-settings"' not in read_only and b"disabled" in read_only
    assert token_client(researcher).get("/api/projects/test/").json()["description"] == ""
    response = token_client(lead).patch("/api/projects/test/", change, format="json")
    assert response.status_code == 200 and response.json()["description"] == "changed"


def settings_form(project: Project, **changes) -> dict:
    values = {
        "name": project.name,
        "description": project.description,
        "guidelines": project.guidelines,
        "criteria": "\n".join(project.criteria),
        "score_min": project.score_min,
        "score_max": project.score_max,
        "level_descriptions": "\n".join(f"{k}: {v}" for k, v in project.level_descriptions.items()),
        "llm_connection": project.llm_connection,
        "llm_model": project.llm_model,
        "llm_temperature": project.llm_temperature,
        "prompt_version": project.prompt_version,
        "review_order": project.review_order,
        "review_criterion": project.review_criterion,
        "review_seed": project.review_seed,
        "reviews_required": project.reviews_required,
        "review_lease_seconds": project.review_lease_seconds or "",
        "adjudication_threshold": project.adjudication_threshold,
        "gold_every": project.gold_every,
    }
    return {**values, **changes}


def test_the_settings_page_edits_the_rubric_queue_and_llm(client, project, lead):
    client.force_login(lead)
    form = settings_form(
        project,
        criteria="honesty\nhelpfulness\nharmlessness\nclarity",
        score_max=9,
        level_descriptions="1: Bad.\n9: Perfect.",
        reviews_required=2,
        review_lease_seconds=600,
        adjudication_threshold=3,
        guidelines="# Read the image first",
    )
    response = client.post("/projects/test/settings/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert project.criteria == ["honesty", "helpfulness", "harmlessness", "clarity"]
    assert (project.score_max, project.level_descriptions) == (9, {"1": "Bad.", "9": "Perfect."})
    assert (project.reviews_required, project.review_lease_seconds) == (2, 600)
    assert project.adjudication_threshold == 3
    assert lease_duration(project) == timedelta(seconds=600)
    bad = client.post("/projects/test/settings/", settings_form(project, criteria="a\n" * 21))
    assert bad.status_code == 400 and b'id="error-criteria"' in bad.content


def test_a_rubric_change_that_would_orphan_scores_is_refused_with_the_reason(client, project, lead):
    sample = make_drafted_samples(project, 1)[0]  # a draft scores helpfulness 4, honesty 6, harmlessness 7
    api = token_client(lead)
    response = api.patch("/api/projects/test/", {"criteria": ["helpfulness", "harmlessness"]}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict" and list(body["errors"]) == ["criteria"]
    assert "'honesty' is used by 1 draft" in body["errors"]["criteria"][0]
    # Renaming a criterion in use drops its old name: refused the same way.
    renamed = api.patch("/api/projects/test/", {"criteria": ["helpful", "honesty", "harmlessness"]}, format="json")
    assert renamed.status_code == 409 and "'helpfulness' is used by 1 draft" in renamed.json()["detail"]
    assert "1 sample" in renamed.json()["detail"]  # the sample targets helpfulness
    narrower = api.patch("/api/projects/test/", {"score_max": 6, "level_descriptions": {}}, format="json")
    assert narrower.status_code == 409 and list(narrower.json()["errors"]) == ["score_max"]
    # Adding and reordering are fine; a wider scale too.
    fine = api.patch(
        "/api/projects/test/",
        {"criteria": ["harmlessness", "helpfulness", "honesty", "clarity"], "score_max": 10},
        format="json",
    )
    assert fine.status_code == 200, fine.json()
    # ... and an unused criterion can be renamed or removed.
    assert (
        api.patch("/api/projects/test/", {"criteria": ["harmlessness", "helpfulness", "honesty"]}, format="json")
    ).status_code == 200
    # Reviews and imported feedback count too.
    decide_all(claim_one(project, member("ann", project, Role.ANNOTATOR)))
    assert Revision.objects.filter(scores__has_key="honesty").exists()
    turn = sample.turns.get()
    ImportedFeedback.objects.create(turn=turn, criterion="harmlessness", score=2)
    raised = api.patch("/api/projects/test/", {"score_min": 3, "level_descriptions": {}}, format="json")
    assert raised.status_code == 409 and "1 imported feedback record" in raised.json()["detail"]
    project.refresh_from_db()
    assert (project.criteria, project.score_min, project.score_max) == (
        ["harmlessness", "helpfulness", "honesty"],
        1,
        10,
    )
    # The page shows the same reason on the field.
    client.force_login(lead)
    page = client.post("/projects/test/settings/", settings_form(project, criteria="helpfulness"))
    assert page.status_code == 400 and b'id="error-criteria"' in page.content and b"is used by" in page.content


def test_guidelines_are_rendered_as_sanitised_html():
    html = guidelines.render(
        "# Title\n\n**bold** [ok](https://example.org) [bad](javascript:alert(1))\n\n"
        '<script>alert(1)</script><img src="https://evil.example/x.png" onerror="alert(1)">'
        '<p style="color:red" onclick="alert(1)">styled</p><iframe src="https://evil.example"></iframe>'
    )
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert 'href="https://example.org"' in html and 'rel="noopener noreferrer nofollow"' in html
    for unsafe in ("<script", "javascript:", "<img", "onerror", "onclick", "style=", "<iframe"):
        assert unsafe not in html, unsafe


def test_the_preview_renders_without_saving_and_the_project_page_shows_it(client, project, lead):
    client.force_login(lead)
    text = "## Steps\n\n1. Look\n2. <script>alert(1)</script>Judge"
    response = client.post("/projects/test/settings/preview/", {"guidelines": text})
    assert response.status_code == 200
    assert b"<h2>Steps</h2>" in response.content and b"<script" not in response.content
    too_long = client.post("/projects/test/settings/preview/", {"guidelines": "x" * (service.GUIDELINES_MAX + 1)})
    assert too_long.status_code == 400 and b"guidelines: at most" in too_long.content
    without_script = client.post("/projects/test/settings/", settings_form(project, guidelines=text, action="preview"))
    assert b"<h2>Steps</h2>" in without_script.content
    project.refresh_from_db()
    assert project.guidelines == ""  # a preview saves nothing
    project.guidelines = text
    project.save()
    page = client.get("/projects/test/").content
    assert b'<div class="guidelines" id="guidelines"><h2>Steps</h2>' in page and b"<script>alert" not in page
    annotator = member("ann", project, Role.ANNOTATOR)
    client.force_login(annotator)
    assert client.post("/projects/test/settings/preview/", {"guidelines": "x"}).status_code == 403


# --- archiving -----------------------------------------------------------------------------------


def test_archiving_hides_the_project_from_the_lists_and_deletes_nothing(client, project, lead):
    make_drafted_samples(project, 2)
    api = token_client(lead)
    assert api.patch("/api/projects/test/", {"archived": True}, format="json").json()["archived"] is True
    assert Project.objects.get(slug="test").archived_at is not None
    assert [p["slug"] for p in api.get("/api/projects/").json()["results"]] == []
    assert [p["slug"] for p in api.get("/api/projects/?archived=1").json()["results"]] == ["test"]
    bad = api.get("/api/projects/?archived=yes")
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["archived"]
    assert api.get("/api/projects/test/").json()["counts"]["samples"] == 2  # still there for its members
    assert Sample.objects.filter(project=project).count() == 2
    client.force_login(lead)
    assert b"/projects/test/" not in client.get("/").content
    assert b"/projects/test/" in client.get("/?archived=1").content
    assert client.post("/projects/test/archive/", {"archived": "0"}).status_code == 302
    assert b"/projects/test/" in client.get("/").content
    assert client.post("/projects/test/archive/", {"archived": "1"}).status_code == 302
    assert b'id="archived-notice"' in client.get("/projects/test/settings/").content


# --- the command ---------------------------------------------------------------------------------


def test_create_project_command_takes_a_rubric_guidelines_and_a_model_project(tmp_path, project, capsys):
    project.llm_temperature = 0.7
    project.reviews_required = 3
    project.save()
    rubric = tmp_path / "rubric.json"
    rubric.write_text(json.dumps({"criteria": ["accuracy", "tone"], "score_min": 0, "score_max": 4}))
    notes = tmp_path / "guide.md"
    notes.write_text("# How to review\n", encoding="utf-8")
    make_user("owner")
    call_command(
        "create_project",
        "--slug=team2",
        "--name=Team two",
        "--from-project=test",
        f"--rubric={rubric}",
        f"--guidelines={notes}",
        "--admin=owner",
    )
    made = Project.objects.get(slug="team2")
    assert (made.criteria, made.score_min, made.score_max) == (["accuracy", "tone"], 0, 4)
    assert (made.guidelines, made.llm_temperature, made.reviews_required) == ("# How to review\n", 0.7, 3)
    assert ProjectMembership.objects.get(project=made).role == Role.ADMIN
    assert "Project team2 created" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("rubric", "message"),
    [
        ({"criteria": ["ok"], "colour": "red"}, "rubric: unknown keys colour"),
        ({"criteria": ["x" * 60]}, "criteria: "),
        ({"score_min": 1, "score_max": 200}, "score_max: must be between"),
        ("[1, 2]", "rubric: a JSON object"),
        ("{not json", "rubric: "),
    ],
)
def test_create_project_command_names_the_field_at_fault(tmp_path, rubric, message):
    path = tmp_path / "rubric.json"
    path.write_text(rubric if isinstance(rubric, str) else json.dumps(rubric))
    with pytest.raises(CommandError) as refused:
        call_command("create_project", "--slug=bad", "--name=Bad", f"--rubric={path}")
    assert str(refused.value).startswith(message), str(refused.value)
    assert not Project.objects.filter(slug="bad").exists()


def test_text_with_nul_characters_is_refused_naming_the_field(tmp_path):
    guide = tmp_path / "guide.md"
    guide.write_bytes(b"# Rules\x00hidden")
    with pytest.raises(CommandError, match=r"^guidelines: must not hold NUL"):
        call_command("create_project", "--slug=nul", "--name=Nul", f"--guidelines={guide}")
    rubric = tmp_path / "rubric.json"
    rubric.write_text(json.dumps({"level_descriptions": {"1": "bad\u0000"}}))
    with pytest.raises(CommandError, match=r"^level_descriptions: the description of 1"):
        call_command("create_project", "--slug=nul", "--name=Nul", f"--rubric={rubric}")
    assert not Project.objects.filter(slug="nul").exists()


def test_create_project_command_refuses_a_taken_slug_and_oversize_guidelines(tmp_path, project):
    with pytest.raises(CommandError, match=r"^slug: 'test' is taken"):
        call_command("create_project", "--slug=test", "--name=Again")
    big = tmp_path / "big.md"
    big.write_text("g" * (service.GUIDELINES_MAX + 1))
    with pytest.raises(CommandError, match=r"^guidelines: at most"):
        call_command("create_project", "--slug=big", "--name=Big", f"--guidelines={big}")
    with pytest.raises(CommandError, match=r"^project: no project"):
        call_command("create_project", "--slug=copy", "--name=Copy", "--from-project=nowhere")


def test_a_projects_lease_time_sets_the_lease_of_its_claims(project):
    project.review_lease_seconds = 300
    project.save()
    make_drafted_samples(project, 1)
    before = timezone.now()
    assignment = claim_one(project, member("ann", project, Role.ANNOTATOR))
    assert before + timedelta(seconds=300) <= assignment.expires_at <= timezone.now() + timedelta(seconds=300)
