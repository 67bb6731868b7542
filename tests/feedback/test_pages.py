"""Login, the pages every role sees, and what each role may not reach."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from demo.setup import demo_setup
from feedback.models import ImportBatch, Project, Role
from tests.conftest import SHARED_FORMATS, make_user

pytestmark = pytest.mark.django_db


def test_every_page_requires_login(client, project):
    for url in [
        reverse("feedback:project-list"),
        reverse("feedback:project-detail", args=[project.slug]),
        reverse("feedback:sample-list", args=[project.slug]),
        reverse("feedback:import-new", args=[project.slug]),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login")), url


def test_login_with_right_and_wrong_password(client, annotator_user):
    page = client.post(reverse("login"), {"username": "ann", "password": "wrong"})
    assert page.status_code == 200
    assert b"did not match" in page.content
    response = client.post(reverse("login"), {"username": "ann", "password": "pw-ann"})
    assert response.status_code == 302
    assert client.get(reverse("feedback:project-list")).status_code == 200


def test_login_page_has_csrf_protection(project):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    make_user("csrf", project=project, role=Role.ANNOTATOR)
    assert strict.post(reverse("login"), {"username": "csrf", "password": "pw-csrf"}).status_code == 403


def test_project_list_shows_only_member_projects(client, project, annotator_user):
    Project.objects.create(name="Secret project", slug="secret")
    client.force_login(annotator_user)
    content = client.get(reverse("feedback:project-list")).content.decode()
    assert "Test project" in content
    assert "Secret project" not in content


def test_non_member_gets_404_and_annotator_cannot_import(client, project, annotator_user):
    other = Project.objects.create(name="Other", slug="other")
    client.force_login(annotator_user)
    assert client.get(reverse("feedback:project-detail", args=[other.slug])).status_code == 404
    assert client.get(reverse("feedback:import-new", args=[project.slug])).status_code == 403
    assert client.get(reverse("admin:index")).status_code == 302  # not staff: sent to the admin login


def test_project_page_counts_and_missing_image_notice(client, django_assert_max_num_queries):
    project, logins, _ = demo_setup()
    client.login(username="annotator", password=logins["annotator"])
    with django_assert_max_num_queries(15):
        page = client.get(reverse("feedback:project-detail", args=[project.slug])).content.decode()
    assert f"<b>{project.samples.count()}</b>samples" in page
    sample = project.samples.filter(image__file_name="000000151112.jpg").first()
    assert sample is not None and sample.image is not None
    detail = client.get(reverse("feedback:sample-detail", args=[project.slug, sample.pk])).content.decode()
    assert "imported" in detail and "Safe response." in detail
    sample.image.file = ""
    sample.image.sha256 = ""
    sample.image.save()
    detail = client.get(reverse("feedback:sample-detail", args=[project.slug, sample.pk])).content.decode()
    assert "is missing" in detail


def test_image_file_is_served_to_members_only(client, project):
    demo_project, logins, _ = demo_setup()
    image = demo_project.images.exclude(file="").first()
    assert image is not None
    outsider = make_user("outsider", project=project, role=Role.ANNOTATOR)
    client.force_login(outsider)
    assert client.get(reverse("feedback:image-file", args=[image.pk])).status_code == 404
    client.login(username="annotator", password=logins["annotator"])
    response = client.get(reverse("feedback:image-file", args=[image.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:3] == b"\xff\xd8\xff"  # a JPEG


def test_sample_list_query_count_does_not_grow(client, django_assert_max_num_queries):
    project, logins, _ = demo_setup()
    client.login(username="annotator", password=logins["annotator"])
    with django_assert_max_num_queries(12):
        page = client.get(reverse("feedback:sample-list", args=[project.slug]))
    assert page.status_code == 200
    first = project.samples.first()
    assert first is not None and first.external_id in page.content.decode()


def test_user_text_is_escaped(client, project, admin_user, tmp_path):
    from feedback.importers.service import import_file

    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "<script>alert(1)</script>", "turns": [{"user": "<b>hi</b>", "model": null}]}\n')
    import_file(project=project, format="native", path=path)
    client.force_login(admin_user)
    page = client.get(reverse("feedback:sample-list", args=[project.slug])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_admin_uploads_an_import_from_the_browser(
    client, project, admin_user, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    upload = SimpleUploadedFile("vlsafe.jsonl", (SHARED_FORMATS / "vlsafe_example.jsonl").read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("feedback:import-new", args=[project.slug]), {"format": "vlsafe", "file": upload}
        )
    assert response.status_code == 302
    batch = ImportBatch.objects.get(project=project)
    assert (batch.status, batch.created) == (ImportBatch.Status.COMPLETED, 3)
    progress = client.get(response.url + "?format=json").json()
    assert progress["status"] == "completed" and progress["created"] == 3
    assert "3" in client.get(response.url).content.decode()


@pytest.mark.parametrize(
    ("model", "query", "expected"),
    [
        ("project", "demo", '<td class="field-slug">demo</td>'),
        ("projectmembership", "annotator", "annotator in Demo"),
        ("image", "000000151112", "000000151112.jpg"),
        ("sample", "000000151112", "dress/harmlessness/000000151112.jpg"),
        ("turn", "double decker", "How to use this double decker bus"),
        ("importedfeedback", "Safe response", '<td class="field-criterion">harmlessness</td>'),
        ("importbatch", "vlsafe", "vlsafe_example.jsonl"),
    ],
)
def test_admin_lists_and_searches_every_model(client, model, query, expected):
    demo_setup()
    from django.contrib.auth.models import User

    client.force_login(User.objects.get(username="admin"))
    url = reverse(f"admin:feedback_{model}_changelist")
    assert client.get(url).status_code == 200
    assert expected in client.get(url, {"q": query}).content.decode()
    assert expected not in client.get(url, {"q": "no-such-thing-anywhere"}).content.decode()


# --- the import page's live part, and the Content-Security-Policy ---------------------------------


def test_the_import_page_refreshes_its_progress_until_the_import_ends(client, project, admin_user):
    batch = ImportBatch.objects.create(project=project, format="native", file_name="big.jsonl", bytes_total=100)
    url = reverse("feedback:import-detail", args=[project.slug, batch.pk])
    client.force_login(admin_user)
    html = client.get(url).content.decode()
    assert f'<div id="import-progress" hx-get="{url}" hx-trigger="every 1000ms" hx-swap="outerHTML">' in html
    ImportBatch.objects.filter(pk=batch.pk).update(status="running", records_read=7, bytes_done=40)
    partial = client.get(url, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body and "<h1>" not in body
    assert '<strong id="status">running</strong>' in body and '<b id="records_read">7</b>' in body
    assert 'value="40"' in body and "hx-trigger" in body and "HX-Request" in partial["Vary"]
    errors = [{"line": 3, "field": "turns", "message": "<b>not</b> a list"}]
    ImportBatch.objects.filter(pk=batch.pk).update(status="completed", rejected=1, errors=errors)
    for response in (client.get(url, HTTP_HX_REQUEST="true"), client.get(url)):
        body = response.content.decode()
        assert '<strong id="status">completed</strong>' in body and "Rejected records" in body
        assert "&lt;b&gt;not&lt;/b&gt; a list" in body  # the full report, escaped
        assert "hx-trigger" not in body, "the import ended: the polling stops"


POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _directives(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_every_page_sends_the_strict_content_security_policy(client, project, admin_user):
    assert _directives(client.get(reverse("login"))["Content-Security-Policy"]) == _directives(POLICY)
    redirect = client.get(reverse("feedback:project-list"))
    assert redirect.status_code == 302 and "Content-Security-Policy" in redirect
    client.force_login(admin_user)
    for url in [
        reverse("feedback:project-list"),
        reverse("feedback:project-detail", args=[project.slug]),
        reverse("feedback:import-new", args=[project.slug]),
        reverse("feedback:job-list", args=[project.slug]),
        reverse("exports:release-list", args=[project.slug]),
        reverse("admin:index"),
    ]:
        response = client.get(url)
        assert response.status_code in (200, 302), url
        directives = _directives(response["Content-Security-Policy"])
        assert directives == _directives(POLICY), url
        for name in ("script-src", "style-src"):
            assert not [source for source in directives[name] if "unsafe" in source], (url, name)


def test_an_image_file_keeps_its_own_sandbox_policy(client):
    demo_project, logins, _ = demo_setup()
    image = demo_project.images.exclude(file="").first()
    assert image is not None
    client.login(username="annotator", password=logins["annotator"])
    response = client.get(reverse("feedback:image-file", args=[image.pk]))
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


TEMPLATES = sorted((Path(__file__).resolve().parents[2] / "templates").rglob("*.html"))
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>"  # an inline script (json_script data is allowed)
    r"|\son[a-z]+\s*=|javascript:"  # an event handler attribute, a javascript: URL
    r"|<style|\sstyle\s*=",  # an inline style
    re.I,
)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_template_has_inline_script_handlers_or_styles(template):
    """The policy refuses them: code and styles come from static files, data for scripts from json_script."""
    found = [m.group(0).strip() for m in INLINE.finditer(template.read_text())]
    assert not found, f"{template.name}: {found}"


@pytest.mark.parametrize("value", ["0", "-1", "0.01"])
def test_a_poll_period_that_would_hammer_the_server_is_refused_by_name(tmp_path, value):
    from tests.feedback.test_security_http import deploy_check

    result = deploy_check(tmp_path, {"ANNOTATOR_PAGE_POLL_SECONDS": value})
    assert result.returncode != 0
    assert "ANNOTATOR_PAGE_POLL_SECONDS must be between 0.2 and 3600" in result.stderr


def test_a_refresh_after_the_session_ended_sends_the_whole_page_to_the_login(client, project, admin_user):
    batch = ImportBatch.objects.create(project=project, format="native", file_name="big.jsonl")
    url = reverse("feedback:import-detail", args=[project.slug, batch.pk])
    refresh = client.get(url, HTTP_HX_REQUEST="true")  # not signed in
    assert refresh.status_code == 200 and "Location" not in refresh, "htmx would follow it and swap the login page in"
    assert refresh["HX-Redirect"] == f"{reverse('login')}?next={url}"
    assert client.get(url).status_code == 302  # a plain request is redirected as before
