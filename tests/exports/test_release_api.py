"""Releases in the REST API (builds called in-process): roles, create with its validation, detail
with files and manifest, downloads, the OpenAPI document, and query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from exports.models import Release
from exports.service import release_build, release_create
from feedback.models import Project, Role
from tests.conftest import make_user, token_client
from tests.exports.export_helpers import build
from tests.exports.release_helpers import api_urls, reviewed_samples, sha256_of, streamed

pytestmark = pytest.mark.django_db

LIST = "/api/projects/test/releases/"


def _requests(release: Release) -> list[tuple[str, str, dict | None]]:
    urls = api_urls(release)
    return [
        ("get", urls["list"], None),
        ("post", urls["list"], {"formats": ["dress"]}),
        ("get", urls["detail"], None),
        ("get", urls["file"], None),
    ]


# --- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("outsider", 404)])
def test_release_endpoints_are_closed_to_annotators_and_outsiders(project, built, annotator_user, who, status):
    other = Project.objects.create(name="Other", slug="other")
    user = annotator_user if who == "annotator" else make_user("olga", project=other, role=Role.RESEARCHER)
    api = token_client(user)
    for method, url, body in _requests(built):
        assert getattr(api, method)(url, body, format="json").status_code == status, (method, url)
    assert Release.objects.count() == 1


def test_release_endpoints_need_a_token(built):
    for method, url, body in _requests(built):
        assert getattr(APIClient(), method)(url, body, format="json").status_code == 401, (method, url)
    assert Release.objects.count() == 1


@pytest.mark.parametrize("who", ["researcher", "admin"])
def test_researchers_and_admins_use_every_endpoint(project, built, researcher_user, admin_user, who):
    user = researcher_user if who == "researcher" else admin_user
    api = token_client(user)
    for method, url, body in _requests(built):
        expected = 201 if method == "post" else 200
        assert getattr(api, method)(url, body, format="json").status_code == expected, (method, url)


# --- create ----------------------------------------------------------------------------------------


def test_create_returns_the_queued_release(project, researcher_user, django_capture_on_commit_callbacks):
    body: dict[str, Any] = {
        "name": "API release",
        "formats": ["dress", "rich"],
        "filters": {
            "decisions": ["accepted"],
            "include_imported": False,
            "criteria": ["honesty"],
            "score_ranges": {"honesty": [5, 7]},
            "reviewers": ["ann"],
            "date_from": "2026-01-01",
            "date_to": "2026-12-31",
            "prompt_versions": ["v1"],
            "include_simulated": False,
        },
        "split": {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": "7"},
        "include_images": False,
    }
    with django_capture_on_commit_callbacks() as callbacks:
        response = token_client(researcher_user).post(LIST, body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    release = Release.objects.get()
    assert len(callbacks) == 1
    assert data["id"] == release.pk
    assert data["url"] == api_urls(release)["detail"]
    assert (data["name"], data["state"], data["created_by"]) == ("API release", "queued", "rex")
    assert data["formats"] == ["dress", "rich"]
    assert data["filters"] == {**body["filters"], "score_ranges": {"honesty": [5, 7]}}
    assert data["split"] == body["split"]
    assert release.filters == data["filters"]


def test_create_with_only_formats_takes_the_defaults(project, admin_user):
    response = token_client(admin_user).post(LIST, {"formats": ["dress"]}, format="json")
    assert response.status_code == 201
    release = Release.objects.get()
    assert release.filters["decisions"] == ["accepted", "edited"]
    assert release.filters["include_imported"] is True
    assert release.split == {"train": 1.0, "validation": 0.0, "test": 0.0, "seed": ""}
    assert release.name == "Test project release"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"formats": ["This field is required."]}),
        ({"formats": []}, {"formats": ["Ensure this field has at least 1 elements."]}),
        ({"formats": ["csv"]}, {"formats": ["Unknown formats: csv"]}),
        ({"formats": ["dress"], "filters": {"decisions": ["maybe"]}}, {"filters.decisions.0": ['"maybe"']}),
        ({"formats": ["dress"], "filters": {"criteria": ["beauty"]}}, {"filters.criteria": ["beauty"]}),
        ({"formats": ["dress"], "filters": {"color": "red"}}, {"filters.color": ["Unknown field."]}),
        (
            {"formats": ["dress"], "filters": {"score_ranges": {"honesty": [7, 5]}}},
            {"filters.score_ranges": ["low"]},
        ),
        (
            {"formats": ["dress"], "filters": {"date_from": "soon"}},
            {"filters.date_from": ["Date has wrong format"]},
        ),
        (
            {"formats": ["dress"], "filters": {"date_from": "2026-02-01", "date_to": "2026-01-01"}},
            {"filters.date_to": ["before the start"]},
        ),
        ({"formats": ["dress"], "split": {"train": 0.5}}, {"split": ["add up to 0.5"]}),
        ({"formats": ["dress"], "split": {"dev": 0.5}}, {"split.dev": ["Unknown field."]}),
        ({"formats": ["dress"], "colour": "red"}, {"colour": ["Unknown field."]}),
    ],
)
def test_a_bad_request_names_the_field_and_creates_nothing(project, researcher_user, body, expected):
    response = token_client(researcher_user).post(LIST, body, format="json")
    assert response.status_code == 400
    data = response.json()

    def contains(got, want) -> bool:
        if isinstance(want, dict):
            return isinstance(got, dict) and all(k in got and contains(got[k], v) for k, v in want.items())
        if isinstance(want, list):
            return all(any(w in str(g) for g in got) for w in want)
        return want in str(got)

    assert set(data) == {"detail", "code", "errors"} and data["code"] == "invalid", data
    assert contains(data["errors"], expected), data  # nested fields dotted: filters.criteria
    assert Release.objects.count() == 0


# --- detail and downloads --------------------------------------------------------------------------


def test_list_and_detail_give_state_files_and_manifest(project, built, researcher_user):
    queued = release_create(project=project, user=researcher_user, formats=["rich"])
    api = token_client(researcher_user)
    listed = api.get(LIST).json()
    assert [r["id"] for r in listed] == [queued.pk, built.pk]
    assert listed[1]["state"] == "completed" and listed[1]["samples_released"] == 3
    data = api.get(api_urls(built)["detail"]).json()
    assert data["manifest"] == built.manifest
    files = {f["path"]: f for f in data["files"]}
    assert set(files) == set(built.files.values_list("path", flat=True))
    for f in built.files.all():
        row = files[f.path]
        assert (row["format"], row["split"], row["rows"], row["byte_size"], row["sha256"]) == (
            f.format,
            f.split,
            f.rows,
            f.byte_size,
            f.sha256,
        )
        assert row["download"] == api_urls(built, f.path)["file"]
    pending = api.get(api_urls(queued)["detail"]).json()
    assert (pending["state"], pending["files"], pending["manifest"]) == ("queued", [], {})


def test_a_download_matches_the_manifest(built, researcher_user):
    api = token_client(researcher_user)
    detail = api.get(api_urls(built)["detail"]).json()
    digests = {f["path"]: f["sha256"] for f in detail["manifest"]["files"]}
    for f in detail["files"]:
        for accept in ("application/octet-stream", "application/json", "*/*"):
            response = api.get(f["download"], HTTP_ACCEPT=accept)
            assert response.status_code == 200, (f["path"], accept)
            content = streamed(response)
            assert sha256_of(content) == f["sha256"]
            assert len(content) == f["byte_size"]
            if f["path"] in digests:
                assert digests[f["path"]] == f["sha256"]


def test_downloads_refuse_unknown_paths_and_unfinished_releases(project, built, researcher_user):
    api = token_client(researcher_user)
    for path in ("../../../etc/passwd", "nope.jsonl", "/etc/passwd"):
        response = api.get(api_urls(built)["detail"] + "files/" + path, HTTP_ACCEPT="application/octet-stream")
        assert response.status_code == 404, path
        assert "detail" in response.json()
    queued = release_create(project=project, user=researcher_user, formats=["dress"])
    assert api.get(api_urls(queued)["file"]).status_code == 404
    built_now = release_build(release_id=queued.pk)
    assert built_now is not None and built_now.state == "completed"
    assert api.get(api_urls(queued)["file"]).status_code == 200


def test_there_is_no_way_to_change_a_release(built, researcher_user):
    api = token_client(researcher_user)
    url = api_urls(built)["detail"]
    for method in ("put", "patch"):
        assert getattr(api, method)(url, {"name": "renamed"}, format="json").status_code == 405, method
    assert api.delete(url).status_code == 403  # only an admin deletes, and only whole
    built.refresh_from_db()
    assert built.name == "First cut"


# --- the OpenAPI document and queries --------------------------------------------------------------


def test_schema_documents_the_release_endpoints(researcher_user, tmp_path):
    response = token_client(researcher_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    releases = paths["/api/projects/{slug}/releases/"]
    assert {"201", "400", "403"} <= set(releases["post"]["responses"])
    assert "200" in releases["get"]["responses"]
    assert "200" in paths["/api/projects/{slug}/releases/{id}/"]["get"]["responses"]
    download = paths["/api/projects/{slug}/releases/{id}/files/{path}"]["get"]
    assert "application/octet-stream" in download["responses"]["200"]["content"]
    schemas = document["components"]["schemas"]
    for name in ("ReleaseRequest", "Filters", "Split", "Release", "ReleaseDetail", "ReleaseFile", "ReleaseStateEnum"):
        assert name in schemas, name
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/projects/{slug}/releases/{id}/files/{path}:" in (tmp_path / "schema.yml").read_text()


def _queries(api, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert api.get(url).status_code == 200
    return len(context)


def test_list_and_detail_run_a_fixed_number_of_queries(project, researcher_user):
    reviewed_samples(project, 3)
    api = token_client(researcher_user)
    first = build(project, ["dress"], user=researcher_user)
    one_list, one_detail = _queries(api, LIST), _queries(api, api_urls(first)["detail"])
    bigger = build(project, ["dress", "rich"], user=researcher_user)
    for i in range(3):
        build(project, ["dress"], user=make_user(f"u{i}", project=project, role=Role.ADMIN))
    assert bigger.files.count() > first.files.count()
    assert _queries(api, LIST) == one_list
    assert _queries(api, api_urls(bigger)["detail"]) == one_detail
