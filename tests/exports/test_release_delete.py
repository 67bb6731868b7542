"""Deleting a release: admins only, files and rows together, never while a worker builds it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from exports.models import Release, ReleaseFile
from exports.service import release_delete, release_folder
from feedback.errors import Conflict
from tests.conftest import token_client
from tests.exports.export_helpers import build

pytestmark = pytest.mark.django_db(transaction=True)  # the files go once the deletion commits


def test_deleting_a_release_removes_its_files_and_rows_and_leaves_the_others(project, built):
    other = build(project, ["rich"])
    folder = release_folder(built)
    assert (folder / "manifest.json").exists()
    release_delete(release=built)
    assert not folder.exists()
    assert not Release.objects.filter(pk=built.pk).exists()
    assert not ReleaseFile.objects.filter(release_id=built.pk).exists()
    assert (release_folder(other) / "rich.jsonl").exists()
    assert other.files.count() == 4  # rich.jsonl, its schema, manifest and card


def test_a_release_being_built_is_not_deleted(built):
    Release.objects.filter(pk=built.pk).update(state=Release.State.RUNNING)
    with pytest.raises(Conflict) as raised:
        release_delete(release=built)
    assert "being built" in raised.value.message
    assert (release_folder(built) / "manifest.json").exists()
    assert Release.objects.filter(pk=built.pk).exists()


@pytest.mark.parametrize(("who", "status"), [("researcher", 403), ("annotator", 403), ("admin", 302)])
def test_only_admins_delete_from_the_release_page(
    client, built, admin_user, researcher_user, annotator_user, who, status
):
    user = {"researcher": researcher_user, "annotator": annotator_user, "admin": admin_user}[who]
    client.force_login(user)
    detail = reverse("exports:release-detail", args=[built.project.slug, built.pk])
    page = client.get(detail) if who != "annotator" else None
    if page is not None:
        assert (b'id="delete"' in page.content) == (who == "admin")
    response = client.post(reverse("exports:release-delete", args=[built.project.slug, built.pk]))
    assert response.status_code == status
    assert Release.objects.filter(pk=built.pk).exists() == (who != "admin")
    if who == "admin":
        assert response["Location"] == reverse("exports:release-list", args=[built.project.slug])


def test_only_admins_delete_through_the_api_and_never_a_running_build(built, admin_user, researcher_user):
    url = f"/api/projects/{built.project.slug}/releases/{built.pk}/"
    assert token_client(researcher_user).delete(url).status_code == 403
    Release.objects.filter(pk=built.pk).update(state=Release.State.RUNNING)
    refused = token_client(admin_user).delete(url)
    assert refused.status_code == 409 and "being built" in refused.json()["detail"]
    Release.objects.filter(pk=built.pk).update(state=Release.State.COMPLETED)
    assert token_client(admin_user).delete(url).status_code == 204
    assert not Release.objects.filter(pk=built.pk).exists()
    assert not release_folder(built).exists()
