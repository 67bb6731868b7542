"""One rule per case on both doors (pages and API), and one error body for every API refusal."""

from __future__ import annotations

import io

import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.management import CommandError, call_command
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from feedback.errors import NON_FIELD, Conflict, InvalidInput, NotAllowed, NotFound
from feedback.middleware import ServiceErrorMiddleware
from feedback.models import Project, Role
from feedback.permissions import project_access
from feedback.rest.errors import flat_errors
from tests.conftest import make_user, token_client

pytestmark = pytest.mark.django_db
ONE_SHAPE = {"detail", "code", "errors"}

# (page, API endpoint, the roles allowed): each pair is one action behind the same rule.
DOORS = [
    ("/projects/test/", "/api/projects/test/", None),
    ("/projects/test/samples/", "/api/projects/test/samples/", None),
    ("/projects/test/jobs/", "/api/projects/test/jobs/", Role.ADMIN),
    ("/projects/test/imports/new/", "/api/projects/test/imports/", Role.ADMIN),
    ("/projects/test/releases/", "/api/projects/test/releases/", Role.RESEARCHER),
    ("/projects/test/review/leases/", "/api/projects/test/review/leases/", Role.ADMIN),
    ("/projects/test/members/", "/api/projects/test/members/", Role.RESEARCHER),
]


@pytest.mark.parametrize(("page", "api", "role_needed"), DOORS)
def test_pages_and_api_answer_alike_non_members_404_and_members_without_the_role_403(
    client, project, page, api, role_needed
):
    outsider = make_user("olga", project=Project.objects.create(name="Other", slug="other"), role=Role.RESEARCHER)
    annotator = make_user("ann", project=project, role=Role.ANNOTATOR)
    for user, expected in ((outsider, 404), (annotator, 403 if role_needed else 200)):
        client.force_login(user)
        on_page = client.get(page).status_code
        in_api = token_client(user).get(api)
        assert (on_page, in_api.status_code) == (expected, expected), (user.username, page, api)
        if expected != 200:
            body = in_api.json()
            assert set(body) == ONE_SHAPE and body["errors"] == {}, body
            assert body["code"] == ("not_found" if expected == 404 else "not_allowed")
    assert (
        client.get("/projects/nowhere/").status_code
        == token_client(annotator).get("/api/projects/nowhere/").status_code
        == 404
    )


def test_project_access_tells_the_roles_and_the_admin(project, admin_user, annotator_user):
    access = project_access(admin_user, "test", Role.RESEARCHER)  # admins hold every role
    assert access.project == project and access.is_admin and access.has(Role.RESEARCHER)
    assert not project_access(annotator_user, "test").is_admin
    with pytest.raises(NotAllowed):
        project_access(annotator_user, "test", Role.ADMIN)
    with pytest.raises(NotFound):
        project_access(annotator_user, "nowhere")


def test_drf_validation_errors_take_the_one_shape_with_dotted_fields(project, admin_user):
    body = {"kind": "draft", "selection": {"limit": 0, "sample_ids": ["a", ""]}, "drafter": {"temperature": 9}}
    response = token_client(admin_user).post("/api/projects/test/jobs/", body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert set(data) == ONE_SHAPE and data["code"] == "invalid"
    assert set(data["errors"]) == {"selection.limit", "selection.sample_ids.1", "drafter.temperature"}, data
    for field in data["errors"]:
        assert f"{field}: " in data["detail"]


def test_flat_errors_and_invalid_input_name_fields_the_same_way():
    assert flat_errors({"a": {"b": ["x"]}, "c": [{"d": ["y"]}, {}], NON_FIELD: ["z"]}) == {
        "a.b": ["x"],
        "c.0.d": ["y"],
        NON_FIELD: ["z"],
    }
    one = InvalidInput("budget", "not a number")
    assert (str(one), one.errors) == ("budget: not a number", {"budget": ["not a number"]})
    nested = InvalidInput.of({"model": ["required"], NON_FIELD: ["bad"]}).nested("drafter")
    assert nested.errors == {"drafter.model": ["required"], "drafter": ["bad"]}
    assert str(InvalidInput(None, "The file is empty.")) == "The file is empty."


def no_view(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the middleware is tested on its own: no view runs")


@pytest.mark.parametrize(
    ("exc", "status"), [(InvalidInput("budget", "not a number"), 302), (Conflict("a paused job cannot be paused"), 302)]
)
def test_a_page_refusal_no_view_handled_is_a_message_and_a_redirect_back(exc, status):
    request = RequestFactory().post(
        "/projects/test/jobs/1/pause/", HTTP_REFERER="http://testserver/projects/test/jobs/1/"
    )
    # The messages middleware sets _messages on the request; the stubs do not declare it.
    request._messages = CookieStorage(request)  # type: ignore[attr-defined]
    response = ServiceErrorMiddleware(no_view).process_exception(request, exc)
    assert response is not None
    assert response.status_code == status and response["Location"] == "http://testserver/projects/test/jobs/1/"
    assert [str(m) for m in get_messages(request)] == [str(exc)]
    elsewhere = RequestFactory().post("/x/", HTTP_REFERER="https://evil.example/")
    elsewhere._messages = CookieStorage(elsewhere)  # type: ignore[attr-defined]  # as above
    redirect = ServiceErrorMiddleware(no_view).process_exception(elsewhere, exc)
    assert redirect is not None and redirect["Location"] == "/x/"


def test_a_get_refusal_is_a_4xx_page_and_other_errors_pass_through(client, admin_user):
    request = RequestFactory().get("/x/")
    request.user = admin_user
    page = ServiceErrorMiddleware(no_view).process_exception(request, Conflict("Not now."))
    assert page is not None and page.status_code == 409 and b"Not now." in page.content
    assert ServiceErrorMiddleware(no_view).process_exception(request, ValueError("a bug")) is None
    assert ServiceErrorMiddleware(no_view).process_exception(request, NotFound("gone")) is None  # Django's 404


def test_commands_print_the_field_and_exit_non_zero(project):
    with pytest.raises(CommandError, match=r"^project: no project"):
        call_command("export_dataset", "--project", "nowhere", stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"filters\.decisions: "):
        call_command(
            "export_dataset", "--project", "test", "--format", "dress", "--decisions", "maybe", stdout=io.StringIO()
        )
    with pytest.raises(CommandError, match=r"^budget: "):
        call_command("run_job", "--project", "test", "--budget", "lots", "--no-wait", stdout=io.StringIO())


def test_an_upload_past_its_cap_is_413_in_the_one_shape(project, admin_user, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.UPLOAD_MAX_BYTES = 5000
    upload = SimpleUploadedFile("big.jsonl", b"x" * 6000)
    refused = token_client(admin_user).post("/api/projects/test/imports/", {"format": "native", "file": upload})
    assert refused.status_code == 413
    body = refused.json()
    assert set(body) == ONE_SHAPE and body["code"] == "too_large" and list(body["errors"]) == ["file"], body
