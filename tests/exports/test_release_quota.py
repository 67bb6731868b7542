"""The per-project release quota (count and bytes): a release past it is refused with an error
naming it (form and API), a build that would pass it fails, and deleting releases frees it."""

from __future__ import annotations

import pytest

from exports.models import Release
from exports.service import quota_usage, release_build, release_create, release_delete
from feedback.errors import Conflict
from tests.conftest import token_client
from tests.exports.export_helpers import build
from tests.exports.release_helpers import page_urls, reviewed_samples

pytestmark = pytest.mark.django_db(transaction=True)  # deleted files go once the deletion commits


def test_the_release_count_quota_refuses_a_new_release_until_one_is_deleted(project, researcher_user, settings):
    reviewed_samples(project, 2)
    settings.RELEASE_QUOTA_COUNT = 2
    first = build(project, ["dress"])
    build(project, ["rich"])
    with pytest.raises(Conflict) as refused:
        release_create(project=project, user=researcher_user, formats=["dress"], enqueue=False)
    assert "ANNOTATOR_RELEASE_QUOTA_COUNT = 2" in refused.value.message
    assert Release.objects.count() == 2

    release_delete(release=first)
    assert release_create(project=project, user=researcher_user, formats=["dress"], enqueue=False).pk


def test_failed_and_cancelled_releases_do_not_count(project, researcher_user, settings):
    settings.RELEASE_QUOTA_COUNT = 1
    release = release_create(project=project, user=researcher_user, formats=["dress"], enqueue=False)
    Release.objects.filter(pk=release.pk).update(state=Release.State.CANCELLED, error="Cancelled.")
    assert quota_usage(project)[0] == 0
    assert release_create(project=project, user=researcher_user, formats=["dress"], enqueue=False).pk


def test_the_byte_quota_refuses_a_new_release_and_fails_a_build_that_passes_it(project, researcher_user, settings):
    reviewed_samples(project, 3)
    first = build(project, ["rich"])
    used = quota_usage(project)[1]
    assert used == sum(f.byte_size for f in first.files.all()) > 0

    settings.RELEASE_QUOTA_BYTES = used + 10  # room for a few bytes more: the next build passes it
    second = release_create(project=project, user=researcher_user, formats=["rich"], enqueue=False)
    built = release_build(release_id=second.pk)
    assert built is not None and built.state == Release.State.FAILED
    assert "ANNOTATOR_RELEASE_QUOTA_BYTES" in built.error
    assert not built.files.exists()

    settings.RELEASE_QUOTA_BYTES = used  # full: refused up front
    with pytest.raises(Conflict) as refused:
        release_create(project=project, user=researcher_user, formats=["dress"], enqueue=False)
    assert f"hold {used} bytes" in refused.value.message
    release_delete(release=first)
    assert quota_usage(project) == (0, 0)


def test_the_form_and_the_api_name_the_quota(client, project, researcher_user, settings):
    settings.RELEASE_QUOTA_COUNT = 0
    client.force_login(researcher_user)
    response = client.post(
        page_urls(Release(project=project, pk=1))["new"],
        {"formats": ["dress"], "decisions": ["accepted"], "train": "1", "validation": "0", "test": "0"},
    )
    assert response.status_code == 200
    assert "This project has 0 releases, its quota (ANNOTATOR_RELEASE_QUOTA_COUNT = 0)" in (response.content.decode())
    refused = token_client(researcher_user).post(
        f"/api/projects/{project.slug}/releases/", {"formats": ["dress"]}, format="json"
    )
    assert refused.status_code == 409  # the project's state, not the request, is at fault
    assert "ANNOTATOR_RELEASE_QUOTA_COUNT" in refused.json()["detail"]
    assert not Release.objects.exists()
