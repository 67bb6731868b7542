"""Release pages (no worker runs here; builds are called in-process): roles, the list with its
live counters, the new-release form and its errors, the release page, downloads, query counts."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from exports.formats import FORMATS
from exports.models import Release
from exports.service import release_create, release_folder
from feedback.models import Project, ProjectMembership, Role
from tests.conftest import make_user
from tests.exports.export_helpers import build
from tests.exports.release_helpers import page_urls, reviewed_samples, sha256_of, streamed

pytestmark = pytest.mark.django_db


def form_data(**changes) -> dict:
    data = {
        "name": "Spring release",
        "formats": ["dress", "rich"],
        "decisions": ["accepted", "edited"],
        "include_imported": "on",
        "include_simulated": "on",
        "reviewers": "",
        "date_from": "",
        "date_to": "",
        "prompt_versions": "",
        "train": "1",
        "validation": "0",
        "test": "0",
        "seed": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


# --- roles -----------------------------------------------------------------------------------------


def _requests(release: Release) -> list[tuple[str, str]]:
    urls = page_urls(release)
    return [
        ("get", urls["list"]),
        ("get", urls["list"] + f"?format=json&ids={release.pk}"),
        ("get", urls["new"]),
        ("post", urls["new"]),
        ("get", urls["detail"]),
        ("get", urls["detail"] + "?format=json"),
        ("get", urls["file"]),
    ]


@pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("outsider", 404)])
def test_release_pages_are_closed_to_annotators_and_outsiders(client, project, built, annotator_user, who, status):
    other = Project.objects.create(name="Other", slug="other")
    user = annotator_user if who == "annotator" else make_user("olga", project=other, role=Role.RESEARCHER)
    client.force_login(user)
    for method, url in _requests(built):
        data = form_data() if method == "post" else None
        assert getattr(client, method)(url, data).status_code == status, (method, url)
    assert Release.objects.count() == 1


def test_anonymous_users_are_sent_to_login(client, built):
    for method, url in _requests(built):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response.url.startswith(reverse("login")), (method, url)


@pytest.mark.parametrize("who", ["researcher", "admin", "platform_admin"])
def test_researchers_and_admins_use_every_page(client, project, built, researcher_user, admin_user, who):
    user = {
        "researcher": researcher_user,
        "admin": admin_user,
        "platform_admin": make_user("root", is_superuser=True, is_staff=True),
    }[who]
    client.force_login(user)
    for method, url in _requests(built):
        if method == "get":
            assert client.get(url).status_code == 200, url
    response = client.post(page_urls(built)["new"], form_data(name=f"by {who}"))
    assert response.status_code == 302
    assert Release.objects.filter(name=f"by {who}", created_by=user).exists()


def test_the_project_page_links_the_releases_for_researchers_and_admins_only(
    client, project, researcher_user, admin_user, annotator_user
):
    link = reverse("exports:release-list", args=[project.slug])
    for user, shown in [(researcher_user, True), (admin_user, True), (annotator_user, False)]:
        client.force_login(user)
        html = client.get(reverse("feedback:project-detail", args=[project.slug])).content.decode()
        assert (f'href="{link}"' in html) is shown, user


# --- the list --------------------------------------------------------------------------------------


def test_the_list_shows_each_release_with_its_progress_and_downloads(client, project, built, researcher_user):
    queued = release_create(project=project, user=researcher_user, formats=["dress"], name="Still waiting")
    client.force_login(researcher_user)
    html = client.get(page_urls(built)["list"]).content.decode()
    for text in ["First cut", "Still waiting", "completed", "queued", "rex", f'data-release="{queued.pk}"']:
        assert text in html, text
    for f in built.files.exclude(format__in=["manifest", "card"]):
        assert f'href="{page_urls(built, f.path)["file"]}"' in html
    assert f'<td class="released">{built.samples_released}</td>' in html
    # A release builds: its rows refresh.
    assert f'<div id="release-rows" hx-get="{page_urls(built)["list"]}" hx-trigger="every' in html


def test_the_list_json_gives_the_progress_of_the_asked_releases(client, project, built, researcher_user):
    queued = release_create(project=project, user=researcher_user, formats=["dress"])
    other = Project.objects.create(name="Other", slug="other")
    foreign = release_create(project=other, user=None, formats=["dress"])
    client.force_login(researcher_user)
    url = page_urls(built)["list"] + f"?format=json&ids={built.pk},{queued.pk},{foreign.pk},x"
    body = client.get(url).json()
    by_id = {r["id"]: r for r in body["releases"]}
    assert set(by_id) == {built.pk, queued.pk}, "another project's release is not disclosed"
    assert by_id[built.pk]["state"] == "completed"
    assert by_id[built.pk]["finished"] is True
    assert by_id[built.pk]["samples_done"] == by_id[built.pk]["samples_total"] == 3
    assert by_id[built.pk]["samples_released"] == 3
    assert by_id[queued.pk]["state"] == "queued"
    assert by_id[queued.pk]["percent"] == 0


def test_release_names_are_escaped(client, project, researcher_user):
    release = release_create(project=project, user=researcher_user, formats=["dress"], name="<script>alert(1)</script>")
    client.force_login(researcher_user)
    for url in (page_urls(release)["list"], page_urls(release)["detail"]):
        html = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def checked(html: str, name: str, value: str | None = None) -> bool:
    """Whether the form's checkbox ``name`` (with ``value``) is rendered checked."""
    for tag in re.findall(r"<input [^>]*>", html):
        if f'name="{name}"' in tag and (value is None or f'value="{value}"' in tag):
            return " checked" in tag
    raise AssertionError(f"no checkbox {name}={value}")


# --- the form --------------------------------------------------------------------------------------


def test_the_form_offers_every_format_and_checks_accepted_and_edited(client, project, researcher_user):
    project.criteria = ["accuracy", "tone"]
    project.save()
    client.force_login(researcher_user)
    html = client.get(page_urls(Release(project=project, pk=1))["new"]).content.decode()
    for name in FORMATS:
        if name != "images":
            assert f'value="{name}"' in html, name
    assert checked(html, "decisions", "accepted") and checked(html, "decisions", "edited")
    assert not checked(html, "decisions", "rejected")
    assert checked(html, "include_imported") and checked(html, "include_simulated")
    assert not checked(html, "include_images")
    assert not checked(html, "criteria", "accuracy") and not checked(html, "criteria", "tone")
    assert "helpfulness" not in html
    for name in ("score_low_0", "score_high_1", "train", "validation", "test", "seed", "include_images"):
        assert f'name="{name}"' in html, name


def test_the_form_creates_a_queued_release_with_every_setting(
    client, project, researcher_user, django_capture_on_commit_callbacks
):
    client.force_login(researcher_user)
    data = form_data(
        decisions=["accepted", "rejected"],
        include_imported=None,
        include_simulated=None,
        criteria=["honesty", "helpfulness"],
        score_low_1="5",  # honesty, the second criterion
        score_high_0="6",  # helpfulness
        reviewers="ann, bob  cy",
        date_from="2026-01-01",
        date_to="2026-02-01",
        prompt_versions="v1,v2",
        train="0.8",
        validation="0.1",
        test="0.1",
        seed="42",
        include_images="on",
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(page_urls(Release(project=project, pk=1))["new"], data)
    release = Release.objects.get()
    assert response.status_code == 302
    assert response.url == page_urls(release)["detail"]
    assert len(callbacks) == 1, "the build is enqueued once the transaction commits"
    assert (release.name, release.state, release.created_by) == ("Spring release", "queued", researcher_user)
    assert release.formats == ["dress", "rich"]
    assert release.include_images is True
    assert release.filters == {
        "decisions": ["accepted", "rejected"],
        "include_imported": False,
        "criteria": ["helpfulness", "honesty"],
        "score_ranges": {"helpfulness": [1, 6], "honesty": [5, 7]},
        "reviewers": ["ann", "bob", "cy"],
        "date_from": "2026-01-01",
        "date_to": "2026-02-01",
        "prompt_versions": ["v1", "v2"],
        "include_simulated": False,
    }
    assert release.split == {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": "42"}
    page = client.get(response.url).content.decode()
    assert f"Release #{release.pk} queued" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"formats": None}, "formats", "This field is required."),
        ({"formats": ["nope"]}, "formats", "Select a valid choice."),
        ({"decisions": None}, "decisions", "This field is required."),
        ({"train": "0.5"}, None, "Split: The fractions add up to 0.5; they must add up to 1."),
        ({"date_from": "2026-03-01", "date_to": "2026-02-01"}, "date_to", "The end comes before the start."),
        ({"date_from": "yesterday"}, "date_from", "Enter a valid date."),
        ({"score_low_0": "6", "score_high_0": "2"}, None, "Score ranges: The range of helpfulness"),
        ({"score_high_2": "99"}, "score_high_2", "less than or equal to 7"),
    ],
)
def test_a_form_error_names_the_field_and_creates_nothing(client, project, researcher_user, changes, field, message):
    client.force_login(researcher_user)
    response = client.post(page_urls(Release(project=project, pk=1))["new"], form_data(**changes))
    assert response.status_code == 200
    form = response.context["form"]
    errors = " ".join(form.errors.get(field or "__all__", []))
    assert message in errors, form.errors
    assert Release.objects.count() == 0


# --- the release page and downloads ---------------------------------------------------------------


def test_the_release_page_shows_files_manifest_and_card(client, built, researcher_user):
    client.force_login(researcher_user)
    response = client.get(page_urls(built)["detail"])
    html = response.content.decode()
    assert "First cut" in html and "completed" in html
    for f in built.files.all():
        assert f'href="{page_urls(built, f.path)["file"]}"' in html
        assert f.sha256 in html
    assert f'id="card" href="{page_urls(built, "README.md")["file"]}"' in html
    assert json.loads(response.context["manifest"]) == built.manifest
    assert "&quot;schema_version&quot;" in html  # the manifest, pretty-printed and escaped


HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_list_refreshes_its_rows_while_a_release_builds_then_stops(client, project, built, researcher_user):
    queued = release_create(project=project, user=researcher_user, formats=["dress"], name="Still waiting")
    client.force_login(researcher_user)
    url = page_urls(built)["list"] + "?page=1"
    partial = client.get(url, **HTMX)
    body = partial.content.decode()
    assert "<html" not in body and "New release" not in body  # the rows alone
    assert f'hx-get="{url}" hx-trigger="every 1000ms" hx-swap="outerHTML"' in body, "the same page of the list"
    assert f'data-release="{queued.pk}" data-state="queued"' in body and "First cut" in body
    assert "HX-Request" in partial["Vary"]
    Release.objects.filter(pk=queued.pk).update(state=Release.State.FAILED, error="Out of <disk>.")
    for response in (client.get(url, **HTMX), client.get(url)):
        body = response.content.decode()
        assert f'data-release="{queued.pk}" data-state="failed"' in body and "Out of &lt;disk&gt;." in body
        assert "hx-trigger" not in body, "no release builds: the polling stops"


def test_the_release_page_refreshes_its_progress_until_the_build_settles(client, project, built, researcher_user):
    release = release_create(project=project, user=researcher_user, formats=["dress"])
    client.force_login(researcher_user)
    url = page_urls(release)["detail"]
    assert f'<div id="release-progress" hx-get="{url}" hx-trigger="every 1000ms"' in client.get(url).content.decode()
    body = client.get(url, **HTMX).content.decode()
    assert "<html" not in body and "<h1>" not in body
    assert '<strong id="state">queued</strong>' in body and "Files appear when the build completes." in body
    assert "hx-trigger" in body
    done = client.get(page_urls(built)["detail"], **HTMX).content.decode()
    assert '<strong id="state">completed</strong>' in done and 'id="manifest"' in done
    assert "hx-trigger" not in done and "hx-get" not in done


def test_the_release_page_asks_before_cancel_and_delete_without_inline_script(client, project, built, admin_user):
    release = release_create(project=project, user=admin_user, formats=["dress"])
    client.force_login(admin_user)
    building = client.get(page_urls(release)["detail"]).content.decode()
    finished = client.get(page_urls(built)["detail"]).content.decode()
    assert f'data-confirm="Cancel release #{release.pk}? Its build stops and writes nothing more.">' in building
    assert f'data-confirm="Delete release #{built.pk} and all its files?' in finished
    for html in (building, finished):
        assert "<script>" not in html and "onsubmit" not in html and 'style="' not in html
        assert "/static/feedback/confirm.js" in html


def test_the_release_json_gives_its_progress(client, built, researcher_user):
    client.force_login(researcher_user)
    body = client.get(page_urls(built)["detail"] + "?format=json").json()
    assert body["state"] == "completed"
    assert (body["samples_total"], body["samples_done"], body["samples_released"], body["percent"]) == (3, 3, 3, 100)


def test_a_download_streams_the_file_whose_sha256_the_manifest_records(client, built, researcher_user):
    client.force_login(researcher_user)
    listed = {f["path"]: f["sha256"] for f in built.manifest["files"]}
    assert listed
    for path, digest in listed.items():
        response = client.get(page_urls(built, path)["file"])
        assert response.status_code == 200
        assert "attachment" in response["Content-Disposition"]
        content = streamed(response)
        assert sha256_of(content) == digest, path
        assert content == (release_folder(built) / path).read_bytes()


@pytest.mark.parametrize("path", ["../../etc/passwd", "nope.jsonl", ".partial/manifest.json", "/etc/passwd"])
def test_only_the_release_files_can_be_downloaded(client, built, researcher_user, path):
    client.force_login(researcher_user)
    assert client.get(page_urls(built)["detail"] + "files/" + path).status_code == 404


def test_nothing_is_downloaded_from_an_unfinished_release(client, project, researcher_user):
    release = release_create(project=project, user=researcher_user, formats=["dress"])
    client.force_login(researcher_user)
    assert client.get(page_urls(release)["file"]).status_code == 404
    assert client.get(page_urls(release)["detail"]).status_code == 200


def test_releases_are_immutable_there_is_no_edit(client, built, researcher_user):
    client.force_login(researcher_user)
    assert client.post(page_urls(built)["detail"], {"name": "renamed"}).status_code == 405
    assert client.post(page_urls(built)["file"]).status_code == 405
    built.refresh_from_db()
    assert built.name == "First cut"


def test_a_release_of_another_project_is_not_found(client, project, built, researcher_user):
    other = Project.objects.create(name="Other", slug="other")
    make_user("ot", project=other, role=Role.RESEARCHER)
    client.force_login(researcher_user)
    url = reverse("exports:release-detail", args=[other.slug, built.pk])
    assert client.get(url).status_code == 404  # not a member of other
    ProjectMembership.objects.create(project=other, user=researcher_user, role=Role.RESEARCHER)
    assert client.get(url).status_code == 404  # a member, but the release is not the other project's
    assert client.get(url + "files/manifest.json").status_code == 404


# --- queries ---------------------------------------------------------------------------------------


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context)


def test_the_pages_run_a_fixed_number_of_queries(client, project, researcher_user):
    reviewed_samples(project, 4)
    client.force_login(researcher_user)
    first = build(project, ["dress"], user=researcher_user)
    urls = page_urls(first)
    one = {name: _queries(client, url) for name, url in urls.items() if name != "file"}
    one_json = _queries(client, urls["list"] + f"?format=json&ids={first.pk}")
    many = [build(project, ["dress", "rich"], user=researcher_user)]
    many += [build(project, ["dress"], user=make_user(f"u{i}", project=project, role=Role.ADMIN)) for i in range(4)]
    many += [release_create(project=project, user=researcher_user, formats=["rich"]) for _ in range(3)]
    assert many[0].files.count() > first.files.count()
    ids = ",".join(str(r.pk) for r in [first, *many])
    assert _queries(client, urls["list"]) == one["list"]
    assert _queries(client, urls["list"] + f"?format=json&ids={ids}") == one_json
    assert _queries(client, page_urls(many[0])["detail"]) == one["detail"]
    assert _queries(client, urls["new"]) == one["new"]


def test_the_admin_shows_releases_read_only(client, built):
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    assert client.get(reverse("admin:exports_release_changelist")).status_code == 200
    change = client.get(reverse("admin:exports_release_change", args=[built.pk]))
    assert change.status_code == 200
    assert built.files.first().sha256 in change.content.decode()
    assert 'name="_save"' not in change.content.decode()
    assert client.get(reverse("admin:exports_release_add")).status_code == 403
    assert client.post(reverse("admin:exports_release_delete", args=[built.pk])).status_code == 403
