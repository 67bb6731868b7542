"""The REST API: token authentication, roles, samples with their missing-image flag, imports."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from demo.setup import demo_setup
from feedback.importers.service import import_file
from feedback.models import ImportBatch, Project
from tests.conftest import SHARED_FORMATS, token_client

pytestmark = pytest.mark.django_db


def test_api_requires_a_token():
    response = APIClient().get("/api/projects/")
    assert response.status_code == 401


def test_token_is_obtained_with_the_password(annotator_user):
    response = APIClient().post("/api/auth/token/", {"username": "ann", "password": "pw-ann"})
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=annotator_user).key


def test_projects_list_only_member_projects_with_counts(project, annotator_user):
    Project.objects.create(name="Hidden", slug="hidden")
    data = token_client(annotator_user).get("/api/projects/").json()
    assert [p["slug"] for p in data["results"]] == ["test"]
    assert data["results"][0]["sample_count"] == 0


def test_samples_say_when_the_image_is_missing(project, annotator_user, django_assert_max_num_queries):
    import_file(project=project, format="vlsafe", path=SHARED_FORMATS / "vlsafe_example.jsonl")
    client = token_client(annotator_user)
    with django_assert_max_num_queries(10):
        data = client.get("/api/projects/test/samples/").json()
    assert data["count"] == 3
    first = data["results"][0]
    assert first["image"]["missing"] is True
    assert first["turns"][0]["model_response"] is None
    assert client.get("/api/projects/test/samples/?missing_image=1").json()["count"] == 3


def test_sample_list_queries_do_not_grow_with_samples(django_assert_max_num_queries):
    project, _, _ = demo_setup()
    from django.contrib.auth.models import User

    client = token_client(User.objects.get(username="researcher"))
    with django_assert_max_num_queries(10):
        data = client.get(f"/api/projects/{project.slug}/samples/").json()
    assert data["count"] == project.samples.count()
    assert any(s["image"] and s["image"]["objects"] for s in data["results"])


def test_annotator_cannot_import_and_outsider_sees_nothing(project, annotator_user):
    client = token_client(annotator_user)
    assert client.get("/api/projects/test/imports/").status_code == 403
    Project.objects.create(name="Other", slug="other")
    assert client.get("/api/projects/other/").status_code == 404


def test_admin_import_is_queued_and_reported(project, admin_user, eager_tasks, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("harmlessness_nlf.jsonl", (SHARED_FORMATS / "dress_nlf_example.jsonl").read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(admin_user).post(
            "/api/projects/test/imports/", {"format": "dress", "file": upload}, format="multipart"
        )
    assert response.status_code == 202
    batch_id = response.json()["id"]
    detail = token_client(admin_user).get(f"/api/projects/test/imports/{batch_id}/").json()
    assert detail["status"] == ImportBatch.Status.COMPLETED
    assert detail["created"] == 1


def test_import_request_with_unknown_format_is_refused(project, admin_user):
    upload = SimpleUploadedFile("x.jsonl", b"{}\n")
    response = token_client(admin_user).post(
        "/api/projects/test/imports/", {"format": "csv", "file": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "format" in response.json()["errors"]


def test_project_detail_gives_the_counts(project, annotator_user, django_assert_max_num_queries):
    import_file(project=project, format="vlsafe", path=SHARED_FORMATS / "vlsafe_example.jsonl")
    client = token_client(annotator_user)
    with django_assert_max_num_queries(8):
        data = client.get("/api/projects/test/").json()
    assert (data["sample_count"], data["image_count"]) == (3, 3)
    assert data["counts"]["awaiting_response"] == 3
    assert data["counts"]["images_missing"] == 3
