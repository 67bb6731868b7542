"""Login, the pages every role sees, and what each role may not reach."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from feedback.demo import demo_setup
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
    assert project.samples.first().external_id in page.content.decode()


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
