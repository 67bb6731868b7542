"""Cancelling a release: admins only, page and API; the build notices through its token, stops
and removes its partial folder; a cancelled or failed release can then be deleted, a queued or
building one only once cancelled."""

from __future__ import annotations

import pytest

from exports.models import Release
from exports.service import partial_folders, release_build, release_cancel, release_create, release_delete
from feedback.errors import Conflict
from tests.conftest import token_client
from tests.exports.export_helpers import folder
from tests.exports.release_helpers import reviewed_samples

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_build_cancelled_mid_way_stops_writes_nothing_more_and_can_be_deleted(project, admin_user, settings):
    reviewed_samples(project, 6)
    settings.RELEASE_CHUNK_SIZE = 2
    release = release_create(project=project, user=admin_user, formats=["rich"], enqueue=False)
    seen = []

    def cancel_after_first_chunk(r: Release) -> None:
        seen.append(r.samples_done)
        if len(seen) == 1:
            assert partial_folders(r)  # the build writes into its hidden folder
            release_cancel(release=r, user=admin_user)

    built = release_build(release_id=release.pk, progress=cancel_after_first_chunk)
    assert built is not None and built.state == Release.State.CANCELLED
    assert seen == [2] and built.samples_done == 2  # it stopped at its next chunk
    assert built.error == f"Cancelled by {admin_user.username}."
    assert partial_folders(built) == [] and not folder(built).exists()
    assert not built.files.exists()
    release_delete(release=built)
    assert not Release.objects.filter(pk=release.pk).exists()


def test_a_queued_or_building_release_is_deleted_only_once_cancelled(project, admin_user):
    release = release_create(project=project, user=admin_user, formats=["rich"], enqueue=False)
    for state in (Release.State.QUEUED, Release.State.RUNNING):
        Release.objects.filter(pk=release.pk).update(state=state)
        with pytest.raises(Conflict) as refused:
            release_delete(release=release)
        assert "cancel it first" in refused.value.message
    release_cancel(release=release, user=admin_user)
    release_delete(release=release)
    assert not Release.objects.exists()


def test_a_failed_or_finished_release_is_not_cancelled(project, admin_user):
    release = release_create(project=project, user=admin_user, formats=["rich"], enqueue=False)
    Release.objects.filter(pk=release.pk).update(state=Release.State.FAILED, error="broke")
    with pytest.raises(Conflict) as refused:
        release_cancel(release=release)
    assert "this one is failed" in refused.value.message
    release_delete(release=release)  # a failed one is deleted as it is


def test_only_admins_cancel_through_the_api_then_delete(project, admin_user, researcher_user):
    release = release_create(project=project, user=researcher_user, formats=["rich"], enqueue=False)
    Release.objects.filter(pk=release.pk).update(state=Release.State.RUNNING, attempt="held")
    url = f"/api/projects/{project.slug}/releases/{release.pk}/"
    assert token_client(researcher_user).post(url + "cancel/").status_code == 403
    admin = token_client(admin_user)
    refused = admin.delete(url)
    assert refused.status_code == 409, "a release being built is a conflicting state"
    assert refused.json()["code"] == "conflict" and "cancel it first" in refused.json()["detail"]
    cancelled = admin.post(url + "cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert admin.post(url + "cancel/").status_code == 409
    assert admin.delete(url).status_code == 204
    assert not Release.objects.exists()


def test_only_admins_see_and_use_the_cancel_button(client, project, admin_user, researcher_user):
    release = release_create(project=project, user=researcher_user, formats=["rich"], enqueue=False)
    detail = f"/projects/{project.slug}/releases/{release.pk}/"
    client.force_login(researcher_user)
    assert b'id="cancel"' not in client.get(detail).content
    assert client.post(detail + "cancel/").status_code == 403
    client.force_login(admin_user)
    page = client.get(detail).content
    assert b'id="cancel"' in page and b'id="delete"' not in page
    assert client.post(detail + "cancel/").status_code == 302
    release.refresh_from_db()
    assert release.state == Release.State.CANCELLED
    assert b'id="delete"' in client.get(detail).content
