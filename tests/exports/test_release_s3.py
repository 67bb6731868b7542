"""Releases in an object store (the test S3 server): built as multipart uploads that appear only
when the build completes, with the manifest's sizes and sha256, downloaded by signed URL or
streamed, deleted with their objects. Imports uploaded into the store and run from it."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
import urllib.request
import zipfile
from datetime import timedelta

import boto3
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from exports.models import Release
from exports.service import (
    release_build,
    release_create,
    release_delete,
    release_location,
    release_prefix,
    releases_recover,
)
from feedback import storage
from feedback.images import apply_file
from feedback.importers.uploads import import_upload_create
from feedback.models import Image, ImportBatch, Sample
from feedback.tasks import import_batch_run_task
from tests.exports.export_helpers import build, make_image_samples, review_all
from tests.feedback.import_helpers import image_bytes, native_record, write_jsonl
from tests.feedback.review_helpers import make_reviewers
from tests.s3 import S3_ENDPOINT


def bucket_keys(env: dict[str, str]) -> list[str]:
    client = boto3.client("s3", endpoint_url=S3_ENDPOINT, region_name="us-east-1")
    answer = client.list_objects_v2(Bucket=env["ANNOTATOR_S3_BUCKET"])
    return sorted(o["Key"] for o in answer.get("Contents", []))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - the test server on loopback
        return answer.read()


def reviewed_with_images(project, count: int) -> dict[str, bytes]:
    make_image_samples(project, count, criterion="")
    (ann,) = make_reviewers(project, "ann")
    review_all(project, ann)
    stored = {}
    for image in Image.objects.filter(pk__in=Sample.objects.filter(project=project).values("image")):
        data = image_bytes(color=(image.pk * 40 % 256, 10, 10))
        apply_file(image, data)
        image.save()
        stored[image.file_name] = data
    return stored


def test_a_release_is_built_into_the_bucket_and_downloads_with_the_manifests_sha256(
    project, admin_user, client, s3_storages, settings, django_capture_on_commit_callbacks
):
    settings.STORAGE_PART_BYTES = 5 * 1024 * 1024
    images = reviewed_with_images(project, 4)
    release = build(project, ["rich", "dress", "parquet"], include_images=True)
    prefix = f"releases/{project.slug}/{release.pk}/"
    keys = [k for k in bucket_keys(s3_storages) if k.startswith(prefix)]
    assert sorted(k[len(prefix) :] for k in keys) == sorted(release.files.values_list("path", flat=True))
    assert release_location(release) == f"s3://{s3_storages['ANNOTATOR_S3_BUCKET']}/{prefix}"
    assert not storage.is_local(storage.RELEASES)

    client.force_login(admin_user)
    manifest_url = reverse("exports:release-file", args=[project.slug, release.pk, "manifest.json"])
    answer = client.get(manifest_url)
    assert answer.status_code == 302  # signed: the store answers
    manifest = json.loads(fetch(answer["Location"]))
    for entry in manifest["files"]:
        answer = client.get(reverse("exports:release-file", args=[project.slug, release.pk, entry["path"]]))
        data = fetch(answer["Location"])
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["bytes"], entry["sha256"]), entry["path"]
    for f in release.files.all():  # the manifest and card too
        data = fetch(client.get(reverse("exports:release-file", args=[project.slug, release.pk, f.path]))["Location"])
        assert hashlib.sha256(data).hexdigest() == f.sha256

    tar_url = client.get(reverse("exports:release-file", args=[project.slug, release.pk, "images.tar"]))["Location"]
    with tarfile.open(fileobj=io.BytesIO(fetch(tar_url))) as tar:
        for name, data in images.items():
            member = tar.extractfile(f"images/{name}")
            assert member is not None and member.read() == data

    settings.STORAGE_DOWNLOADS = "stream"  # a store only the servers reach: the bytes come through
    answer = client.get(reverse("exports:release-file", args=[project.slug, release.pk, "rich.jsonl"]))
    assert answer.status_code == 200
    data = b"".join(answer.streaming_content)
    assert hashlib.sha256(data).hexdigest() == release.files.get(path="rich.jsonl").sha256

    with django_capture_on_commit_callbacks(execute=True):
        release_delete(release=release)  # its objects go with it, after the commit
    assert not [k for k in bucket_keys(s3_storages) if k.startswith(prefix)]


def test_a_failed_build_leaves_no_object_and_no_unfinished_upload(project, s3_storages, settings):
    reviewed_with_images(project, 3)
    settings.RELEASE_QUOTA_BYTES = 10  # the build passes the quota once it has written something
    release = release_create(project=project, user=None, formats=["rich", "parquet"], enqueue=False)
    built = release_build(release_id=release.pk)
    assert built is not None and built.state == Release.State.FAILED and "quota" in built.error
    assert not [k for k in bucket_keys(s3_storages) if k.startswith("releases/")]
    assert storage.abort_uploads(storage.RELEASES, "") == 0


def test_an_image_is_served_from_the_bucket(project, admin_user, client, s3_storages):
    images = reviewed_with_images(project, 1)
    image = Image.objects.get(project=project, file_name__in=images)
    client.force_login(admin_user)
    answer = client.get(reverse("feedback:image-file", args=[image.pk]))
    assert answer.status_code == 302
    with urllib.request.urlopen(answer["Location"], timeout=30) as stored:  # noqa: S310 - the test server
        assert stored.read() == images[image.file_name]
        assert stored.headers["Content-Type"] == "image/png"


def test_an_upload_with_images_is_stored_in_the_bucket_and_imported_from_it(project, admin_user, tmp_path, s3_storages):
    lines = [native_record(f"s{i}", image=f"pic{i}.png") for i in range(3)]
    data = write_jsonl(tmp_path / "samples.jsonl", lines).read_bytes()
    pictures = io.BytesIO()
    with zipfile.ZipFile(pictures, "w") as archive:
        for i in range(3):
            archive.writestr(f"pic{i}.png", image_bytes(color=(i * 50, 0, 0)))
    batch = import_upload_create(
        project=project,
        user=admin_user,
        format="native",
        upload=SimpleUploadedFile("samples.jsonl", data),
        images=SimpleUploadedFile("pics.zip", pictures.getvalue()),
    )
    assert f"uploads/{batch.upload_path}" in bucket_keys(s3_storages)
    assert f"uploads/{batch.images_path}" in bucket_keys(s3_storages)
    import_batch_run_task(batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.COMPLETED, batch.failure
    assert batch.file_sha256 == hashlib.sha256(data).hexdigest()
    assert Sample.objects.filter(project=project).count() == 3
    keys = bucket_keys(s3_storages)
    assert not [k for k in keys if k.startswith("uploads/")]  # removed once imported
    for image in Image.objects.filter(project=project):
        assert f"media/{image.file.name}" in keys


def test_an_upload_gone_from_the_bucket_fails_its_import_with_a_reason(project, admin_user, s3_storages):
    batch = import_upload_create(
        project=project, user=admin_user, format="native", upload=SimpleUploadedFile("gone.jsonl", b"{}\n")
    )
    storage.delete_folder(storage.UPLOADS, batch.upload_path.split("/")[0])
    import_batch_run_task(batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert "gone.jsonl does not exist" in batch.failure


def test_the_sweep_aborts_unfinished_uploads_of_releases_no_build_holds(project, s3_storages, settings):
    lost = release_create(project=project, user=None, formats=["rich"], enqueue=False)
    building = release_create(project=project, user=None, formats=["rich"], enqueue=False)
    Release.objects.filter(pk=building.pk).update(
        state=Release.State.RUNNING, attempt="live", heartbeat_at=timezone.now() + timedelta(hours=1)
    )
    for release, token in ((lost, "lost"), (building, "live")):
        stream, _ = storage.Staging(storage.RELEASES, release_prefix(release), token).open("rich.jsonl")
        stream.write(b"{}\n")  # begun, never completed: the lost one's worker died
    time.sleep(1.1)  # the store counts whole seconds
    settings.WORK_LEASE = 0
    assert releases_recover(timezone.now())["partials_removed"] == 1
    assert storage.abort_uploads(storage.RELEASES, release_prefix(lost)) == 0  # gone already
    assert storage.abort_uploads(storage.RELEASES, release_prefix(building)) == 1  # was kept
