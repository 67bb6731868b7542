"""Images by reference from an S3 bucket (the moto server on loopback, as in CI): a COCO import with
``--images-base s3://bucket/train2017/`` registers its images without reading one, a worker fetches
them into the media store (itself in S3 here), and a missing key, a non-image and an object over the
size limit each end with their reason."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command

from feedback.images import inspect_image
from feedback.models import Image
from feedback.references.fetch import reset_s3_client
from feedback.references.models import ImageReference
from feedback.references.service import batch_references, reference_fetch
from tests.image_server import image_for
from tests.s3 import S3_ENDPOINT
from tests.worker import WorkerProcess

from .import_helpers import write_json

State = ImageReference.State


@pytest.fixture
def source_bucket(s3_storages, settings):
    """A bucket of images to reference, beside the platform's own; its name is allow-listed."""
    import boto3

    name = f"src-{uuid.uuid4().hex[:16]}"
    client = boto3.client("s3", endpoint_url=S3_ENDPOINT, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    for i in range(4):
        client.put_object(Bucket=name, Key=f"train2017/{i:012d}.jpg", Body=image_for(f"{i}.jpg", "JPEG"))
    client.put_object(Bucket=name, Key="train2017/000000000004.jpg", Body=b"not an image at all")
    client.put_object(Bucket=name, Key="train2017/000000000005.jpg", Body=b"\xff\xd8" + b"\0" * (300 * 1024))
    settings.IMAGE_REF_S3_BUCKETS = [name]
    settings.IMAGE_REF_S3_ENDPOINT_URL = S3_ENDPOINT
    settings.IMAGE_REF_S3_REGION = "us-east-1"
    settings.IMAGE_MAX_BYTES = 200 * 1024
    reset_s3_client()
    yield name, client, s3_storages
    reset_s3_client()


def coco_file(tmp_path, count: int):
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in range(count)]
    return write_json(tmp_path / "captions_train2017.json", {"images": images, "annotations": []})


@pytest.mark.django_db
def test_coco_by_s3_reference_registers_then_fetches_each_with_its_outcome(source_bucket, project, tmp_path, capsys):
    bucket, client, _ = source_bucket
    call_command(
        "import_samples",
        str(coco_file(tmp_path, 7)),
        project="test",
        format="coco",
        images_base=f"s3://{bucket}/train2017/",
        no_progress=True,
    )
    assert "image references:    7 registered (0 fetched, 0 failed, 7 pending" in capsys.readouterr().out
    assert Image.objects.filter(project=project, file="").count() == 7
    for pk in ImageReference.objects.values_list("pk", flat=True):
        reference_fetch(reference_id=pk)

    image = Image.objects.get(file_name="000000000002.jpg")
    info = inspect_image(image_for("2.jpg", "JPEG"))
    assert (image.sha256, image.width, image.height, image.format) == (info.sha256, info.width, info.height, "JPEG")
    # Stored in the media store, itself a bucket here: the platform's bucket holds it under its hash.
    stored = client.list_objects_v2(Bucket=source_bucket[2]["ANNOTATOR_S3_BUCKET"])["Contents"]
    assert any(o["Key"].endswith(f"{info.sha256}.jpg") for o in stored)
    with image.file.open("rb") as f:
        assert f.read() == image_for("2.jpg", "JPEG")

    reasons = {r.image.file_name: r.reason for r in ImageReference.objects.filter(state=State.FAILED)}
    assert set(reasons) == {"000000000004.jpg", "000000000005.jpg", "000000000006.jpg"}
    assert "not an image" in reasons["000000000004.jpg"]
    assert "over the limit of 204,800 (ANNOTATOR_IMAGE_MAX_BYTES)" in reasons["000000000005.jpg"]
    assert reasons["000000000006.jpg"] == f"no such key s3://{bucket}/train2017/000000000006.jpg"
    report = batch_references(ImageReference.objects.first().import_batch)  # type: ignore[union-attr,arg-type]
    assert (report.fetched, report.failed, report.pending) == (4, 3, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_real_worker_fetches_s3_references_into_the_s3_media_store(source_bucket, project, tmp_path):
    bucket, _, s3_env = source_bucket
    call_command(
        "import_samples",
        str(coco_file(tmp_path, 5)),
        project="test",
        format="coco",
        images_base=f"s3://{bucket}/train2017",
        no_progress=True,
    )
    env = {
        **s3_env,
        "ANNOTATOR_IMAGE_REF_S3_BUCKETS": bucket,
        "ANNOTATOR_IMAGE_MAX_BYTES": str(200 * 1024),
        # Nothing on this machine's disk is shared with the worker: a folder of its own.
        "ANNOTATOR_MEDIA_ROOT": str(tmp_path / "worker-media"),
    }
    worker = WorkerProcess("default", log_path=tmp_path / "worker.log", env=env)
    try:
        assert worker.wait_for(
            lambda: not ImageReference.objects.exclude(state__in=["fetched", "failed"]).exists(), 90
        ), worker.output()
    finally:
        worker.stop()
    assert ImageReference.objects.filter(state=State.FETCHED).count() == 4
    assert "not an image" in ImageReference.objects.get(image__file_name="000000000004.jpg").reason
    assert not (tmp_path / "worker-media").exists()
    image = Image.objects.get(file_name="000000000003.jpg")
    with image.file.open("rb") as f:
        assert f.read() == image_for("3.jpg", "JPEG")
