"""Images by reference: registered by the import at once, fetched by a worker's service from a real
loopback HTTP server (and a read-only folder), with each bad reference ending in a reason on the
import's report and a notice on the sample, and nothing else of the import lost."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from feedback.errors import InvalidInput
from feedback.images import inspect_image
from feedback.importers.records import ImageRecord, SampleRecord, TurnRecord
from feedback.models import Image, ImportBatch, Sample
from feedback.references.models import ImageReference
from feedback.references.refs import RefRefused, join_reference, parse_reference
from feedback.references.service import batch_references, reference_fetch
from tests.conftest import make_user
from tests.image_server import image_for, image_server  # noqa: F401

from .import_helpers import native_record, run_import, write_json, write_jsonl

pytestmark = pytest.mark.django_db
State = ImageReference.State


@pytest.fixture
def refs(settings, image_server):  # noqa: F811
    settings.IMAGE_REF_HOSTS = [f"http://127.0.0.1:{image_server.port}"]
    settings.IMAGE_REF_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    settings.IMAGE_REF_S3_BUCKETS = ["allowed-bucket"]
    settings.IMAGE_FETCH_CONNECT_TIMEOUT = 2.0
    settings.IMAGE_FETCH_READ_TIMEOUT = 0.5
    settings.IMAGE_FETCH_MAX_ATTEMPTS = 2
    settings.IMAGE_FETCH_BACKOFF_BASE = 0.01
    settings.IMAGE_MAX_BYTES = 1024 * 1024
    return image_server


def fetch_all() -> None:
    """What a worker does with each queued reference: fetch it (a retry becomes due at once here)."""
    for _ in range(5):
        ImageReference.objects.filter(state=State.PENDING).update(next_attempt_at=None)
        pending = list(ImageReference.objects.filter(state=State.PENDING).values_list("pk", flat=True))
        if not pending:
            return
        for pk in pending:
            reference_fetch(reference_id=pk)


def ref_of(project, name: str) -> ImageReference:
    return ImageReference.objects.get(image__project=project, image__file_name=name)


# --------------------------------------------------------------------------------------------
# Parsing and the allow-lists


def test_references_are_checked_against_the_allow_lists(settings, tmp_path):
    settings.IMAGE_REF_HOSTS = [
        "images.example.org",
        "*.cdn.example.net",
        "media.example.com:8443",
        "http://10.1.2.3:81",
    ]
    settings.IMAGE_REF_S3_BUCKETS = ["coco"]
    settings.IMAGE_REF_ROOT = str(tmp_path / "root")
    assert parse_reference("https://images.example.org/a/b.jpg").host == "images.example.org"
    assert parse_reference("https://x.cdn.example.net/b.jpg").kind == "http"
    assert parse_reference("https://media.example.com:8443/b.jpg").port == 8443
    assert parse_reference("http://10.1.2.3:81/b.jpg").scheme == "http"
    ref = parse_reference("s3://coco/train2017/000000000009.jpg")
    assert (ref.bucket, ref.key) == ("coco", "train2017/000000000009.jpg")
    assert parse_reference(f"{tmp_path}/root/a/b.png").path == f"{tmp_path}/root/a/b.png"
    refused = {
        "http://images.example.org/a.jpg": "not allowed for http",
        "https://evil.example.org/a.jpg": "host evil.example.org is not allowed",
        "https://cdn.example.net.evil.org/a.jpg": "not allowed",
        "https://images.example.org:444/a.jpg": "images.example.org:444 is not allowed",
        "https://user:pw@images.example.org/a.jpg": "credentials",
        "s3://other/a.jpg": "bucket 'other' is not allowed",
        "s3://coco": "not s3://bucket/key",
        f"{tmp_path}/root/../secret.png": "not under the read-only root",
        "ftp://images.example.org/a.jpg": "is not an s3://, https:// or absolute path reference",
        "https://images.example.org/a\nb.jpg": "control characters",
        "https://images.example.org/" + "a" * 2000: "at most 2000 characters",
    }
    for uri, reason in refused.items():
        with pytest.raises(RefRefused, match=reason):
            parse_reference(uri)
    settings.IMAGE_REF_ROOT = ""
    with pytest.raises(RefRefused, match="ANNOTATOR_IMAGE_REF_ROOT"):
        parse_reference("/data/a.png")


def test_joining_a_base_quotes_names_for_urls_only():
    assert join_reference("s3://b/train2017", "0001.jpg") == "s3://b/train2017/0001.jpg"
    assert join_reference("https://h/x/", "a b#.jpg") == "https://h/x/a%20b%23.jpg"
    assert join_reference("/data/x/", "sub/a b.jpg") == "/data/x/sub/a b.jpg"


def test_a_record_without_a_reference_keeps_its_content_hash():
    """Re-importing files made before references existed changes nothing."""
    record = SampleRecord("a", ImageRecord("x.jpg", captions=["c"]), [TurnRecord("q", "r")])
    legacy = json.dumps(
        record,
        default=lambda o: {k: v for k, v in vars(o).items() if k != "ref"},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    import hashlib

    assert record.content_hash() == hashlib.sha256(legacy.encode()).hexdigest()
    record.image.ref = "https://h/x.jpg"  # type: ignore[union-attr]
    assert record.content_hash() != hashlib.sha256(legacy.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Import, fetch, report


def test_each_bad_reference_ends_with_a_reason_and_loses_nothing_else(refs, project, tmp_path, client):
    base = refs.base
    records = [
        native_record("good", {"file_name": "good.png", "ref": f"{base}/img/good.png"}),
        native_record("missing", {"file_name": "missing.png", "ref": f"{base}/nothing/missing.png"}),
        native_record("text", {"file_name": "text.png", "ref": f"{base}/text/text.png"}),
        native_record("big", {"file_name": "big.png", "ref": f"{base}/big/big.png"}),
        native_record("big-chunked", {"file_name": "bigc.png", "ref": f"{base}/big-chunked/bigc.png"}),
        native_record("slow", {"file_name": "slow.png", "ref": f"{base}/slow/slow.png"}),
        native_record("not-allowed", {"file_name": "far.png", "ref": "https://images.example.org/far.png"}),
        native_record("named-by-ref", {"ref": f"{base}/img/by-ref.jpg"}),
        native_record("plain", "plain.png"),
    ]
    batch = run_import(project, "native", write_jsonl(tmp_path / "refs.jsonl", records))
    assert (batch.status, batch.created, batch.rejected) == (ImportBatch.Status.COMPLETED, 9, 0)
    assert refs.hits == {}  # nothing fetched in the import itself
    assert Image.objects.filter(project=project, file="").count() == 9
    # A host not allowed fails at once, on the report's warnings as well.
    assert ref_of(project, "far.png").state == State.FAILED
    assert any("far.png refused: host images.example.org is not allowed" in w["message"] for w in batch.warnings)
    assert ImageReference.objects.filter(state=State.PENDING).count() == 7
    assert not ImageReference.objects.filter(image__file_name="plain.png").exists()

    refs.slow_seconds = 2.0
    fetch_all()

    good = Image.objects.get(project=project, file_name="good.png")
    info = inspect_image(image_for("good.png"))
    assert (good.sha256, good.width, good.height, good.format) == (info.sha256, info.width, info.height, "PNG")
    assert good.file.name.startswith(f"images/{info.sha256[:2]}/")
    assert Image.objects.get(project=project, file_name="by-ref.jpg").format == "JPEG"
    reasons = {
        name: ref_of(project, name).reason
        for name in ("missing.png", "text.png", "big.png", "bigc.png", "slow.png", "far.png")
    }
    assert "HTTP 404" in reasons["missing.png"]
    assert "not an image" in reasons["text.png"]
    assert "over the limit of 1,048,576 (ANNOTATOR_IMAGE_MAX_BYTES)" in reasons["big.png"]
    assert "over the limit of 1,048,576" in reasons["bigc.png"]
    assert (
        "did not answer within the timeout" in reasons["slow.png"] and "gave up after 2 attempts" in reasons["slow.png"]
    )
    assert refs.hits["/big/big.png"] == 1  # refused on its declared length: never retried
    for name in reasons:
        assert ref_of(project, name).state == State.FAILED

    report = batch_references(batch)
    assert (report.total, report.fetched, report.failed, report.pending) == (8, 2, 6, 0)
    assert {f["file_name"] for f in report.failures} == set(reasons)
    # Nothing else lost: every sample, its turns, and the plain image still waiting for its file.
    assert Sample.objects.filter(project=project).count() == 9
    assert Image.objects.filter(project=project, file="").count() == 7

    admin = make_user("ada", project=project, role="admin")
    client.force_login(admin)
    page = client.get(f"/projects/test/imports/{batch.pk}/").content.decode()
    assert 'id="refs_failed">6<' in page and "HTTP 404" in page and "not an image" in page
    api = client.get(f"/api/projects/test/imports/{batch.pk}/").json()["image_references"]
    assert (api["fetched"], api["failed"]) == (2, 6) and len(api["failures"]) == 6
    listed = client.get("/api/projects/test/imports/").json()[0]["image_references"]
    assert listed == api

    slow = Sample.objects.get(project=project, external_id="slow")
    page = client.get(f"/projects/test/samples/{slow.pk}/").content.decode()
    assert 'data-reference-state="failed"' in page and "could not be fetched" in page and "timeout" in page
    fetched = Sample.objects.get(project=project, external_id="good")
    page = client.get(f"/projects/test/samples/{fetched.pk}/").content.decode()
    assert f"/images/{fetched.image_id}/file" in page
    assert client.get(f"/images/{fetched.image_id}/file").status_code == 200


def test_a_pending_reference_says_so_on_the_sample(refs, project, tmp_path, client):
    run_import(
        project, "native", write_jsonl(tmp_path / "r.jsonl", [native_record("p", {"ref": f"{refs.base}/img/p.png"})])
    )
    client.force_login(make_user("ada", project=project, role="admin"))
    sample = Sample.objects.get(external_id="p")
    page = client.get(f"/projects/test/samples/{sample.pk}/").content.decode()
    assert 'data-reference-state="pending"' in page and "is being fetched from" in page


def test_a_transient_failure_is_retried_with_backoff(refs, settings, project, tmp_path):
    refs.flaky_failures = 1
    settings.IMAGE_FETCH_BACKOFF_BASE = 60.0
    run_import(
        project, "native", write_jsonl(tmp_path / "f.jsonl", [native_record("f", {"ref": f"{refs.base}/flaky/f.png"})])
    )
    ref = ImageReference.objects.get()
    assert reference_fetch(reference_id=ref.pk) == State.PENDING
    ref.refresh_from_db()
    assert "HTTP 503" in ref.reason and "attempt 1 of 2, retrying" in ref.reason
    assert ref.next_attempt_at is not None
    assert timezone.now() + timedelta(seconds=25) < ref.next_attempt_at < timezone.now() + timedelta(seconds=61)
    assert reference_fetch(reference_id=ref.pk) is None  # not before its time
    ImageReference.objects.filter(pk=ref.pk).update(next_attempt_at=None)
    assert reference_fetch(reference_id=ref.pk) == State.FETCHED
    assert not Image.objects.get(file_name="f.png").is_missing
    assert reference_fetch(reference_id=ref.pk) is None  # a duplicate message does nothing


def test_ssrf_private_addresses_and_redirects_are_refused(refs, settings, project, tmp_path):
    port = refs.port
    # "localhost" is on the allow-list by name, but resolves to loopback, which no network allows.
    settings.IMAGE_REF_HOSTS = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    refs.redirect_to = f"http://127.0.0.2:{port}/img/"
    records = [
        native_record("dns", {"ref": f"http://localhost:{port}/img/dns.png"}),
        native_record("redirect", {"ref": f"{refs.base}/redirect/1/elsewhere.png"}),
    ]
    settings.IMAGE_REF_PRIVATE_NETWORKS = ["127.0.0.1/32"]
    run_import(project, "native", write_jsonl(tmp_path / "s.jsonl", records))
    settings.IMAGE_REF_PRIVATE_NETWORKS = []
    ref = ImageReference.objects.get(image__file_name="dns.png")
    assert reference_fetch(reference_id=ref.pk) == State.FAILED
    ref.refresh_from_db()
    assert "resolves to" in ref.reason and "private, loopback or reserved" in ref.reason
    settings.IMAGE_REF_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    ref = ImageReference.objects.get(image__file_name="elsewhere.png")
    assert reference_fetch(reference_id=ref.pk) == State.FAILED
    ref.refresh_from_db()
    assert ref.reason.startswith("redirected: host 127.0.0.2") and "not allowed" in ref.reason
    assert refs.hits.get("/img/elsewhere.png") is None


def test_an_allowed_redirect_is_followed(refs, project, tmp_path):
    refs.redirect_to = f"{refs.base}/img/"
    run_import(
        project,
        "native",
        write_jsonl(tmp_path / "r.jsonl", [native_record("r", {"ref": f"{refs.base}/redirect/1/r.png"})]),
    )
    fetch_all()
    assert ImageReference.objects.get().state == State.FETCHED


def test_coco_with_an_images_base_registers_without_fetching(refs, project, tmp_path, capsys):
    count = 300
    coco = {
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 640, "height": 480} for i in range(count)],
        "annotations": [{"id": 1, "image_id": 0, "caption": "A cat."}],
    }
    path = write_json(tmp_path / "captions_train2017.json", coco)
    call_command(
        "import_samples", str(path), project="test", format="coco", images_base=f"{refs.base}/img/", no_progress=True
    )
    out = capsys.readouterr().out
    assert f"image references:    {count} registered (0 fetched, 0 failed, {count} pending" in out
    assert refs.hits == {}
    assert ImageReference.objects.filter(state=State.PENDING).count() == count
    assert ImageReference.objects.get(image__file_name="000000000007.jpg").uri == f"{refs.base}/img/000000000007.jpg"
    # Importing again registers nothing twice and sends nothing new.
    call_command(
        "import_samples", str(path), project="test", format="coco", images_base=f"{refs.base}/img/", no_progress=True
    )
    assert ImageReference.objects.count() == count
    ref = ImageReference.objects.get(image__file_name="000000000007.jpg")
    assert reference_fetch(reference_id=ref.pk) == State.FETCHED
    image = Image.objects.get(file_name="000000000007.jpg")
    assert (image.width, image.height) != (640, 480)  # the file's own dimensions replace COCO's


def test_an_images_base_not_allowed_is_refused_naming_it(refs, project, tmp_path, client):
    path = write_json(tmp_path / "c.json", {"images": []})
    with pytest.raises(CommandError, match=r"images_base: host images\.example\.org is not allowed"):
        call_command(
            "import_samples",
            str(path),
            project="test",
            format="coco",
            images_base="https://images.example.org/x/",
            no_progress=True,
        )
    client.force_login(make_user("ada", project=project, role="admin"))
    with path.open("rb") as f:
        answer = client.post(
            "/api/projects/test/imports/", {"format": "coco", "file": f, "images_base": "s3://secret-bucket/x/"}
        )
    assert answer.status_code == 400
    assert "images_base" in answer.json()["errors"]
    assert not ImportBatch.objects.exists()


def test_a_failed_reference_is_tried_again_by_the_next_import(refs, project, tmp_path):
    path = write_jsonl(
        tmp_path / "a.jsonl", [native_record("a", {"file_name": "a.png", "ref": f"{refs.base}/flaky/a.png"})]
    )
    refs.flaky_failures = 10
    run_import(project, "native", path)
    fetch_all()
    assert ImageReference.objects.get().state == State.FAILED
    refs.flaky_failures = 0
    again = run_import(project, "native", path)
    assert again.skipped == 1
    ref = ImageReference.objects.get()
    assert (ref.state, ref.attempts, ref.import_batch_id) == (State.PENDING, 0, again.pk)
    fetch_all()
    assert ImageReference.objects.get().state == State.FETCHED


def test_path_references_under_the_read_only_root(refs, settings, project, tmp_path):
    root = tmp_path / "ro"
    (root / "train").mkdir(parents=True)
    (root / "train" / "a.png").write_bytes(image_for("a.png"))
    (tmp_path / "outside.png").write_bytes(image_for("o.png"))
    (root / "train" / "link.png").symlink_to(tmp_path / "outside.png")
    settings.IMAGE_REF_ROOT = str(root)
    records = [native_record("a", "a.png"), native_record("link", "link.png"), native_record("gone", "gone.png")]
    batch = run_import(project, "native", write_jsonl(tmp_path / "p.jsonl", records), images_base=f"{root}/train")
    fetch_all()
    assert ref_of(project, "a.png").state == State.FETCHED
    assert "outside the read-only root" in ref_of(project, "link.png").reason
    assert "no such file" in ref_of(project, "gone.png").reason
    assert batch_references(batch).failed == 2


def test_the_reference_must_be_a_string(project, tmp_path):
    batch = run_import(
        project, "native", write_jsonl(tmp_path / "b.jsonl", [native_record("x", {"file_name": "x.png", "ref": 5})])
    )
    assert batch.errors[0]["field"] == "image.ref"
    with pytest.raises(InvalidInput, match="images base"):
        from feedback.importers.service import import_batch_create

        import_batch_create(project=project, format="images", file_name="x", options={"images_base": "s3://b/x/"})


def test_the_review_page_says_pending_then_failed_then_shows_the_fetched_image(refs, project, tmp_path, client):
    from .review_helpers import claim_one, make_reviewers

    records = [
        native_record("a", {"file_name": "a.png", "ref": f"{refs.base}/img/a.png"}),
        native_record("b", {"file_name": "b.png", "ref": f"{refs.base}/gone/b.png"}),
    ]
    run_import(project, "native", write_jsonl(tmp_path / "r.jsonl", records))
    pages, users = {}, {}
    for reviewer in make_reviewers(project, "alice", "bob"):
        assignment = claim_one(project, reviewer)
        name = assignment.sample.external_id
        pages[name], users[name] = f"/projects/{project.slug}/review/{assignment.pk}/", reviewer
    assert set(pages) == {"a", "b"}
    client.force_login(users["a"])
    html = client.get(pages["a"]).content.decode()
    assert 'id="image-missing" data-reference-state="pending"' in html and "is being fetched from" in html
    fetch_all()
    html = client.get(pages["a"]).content.decode()
    image = Image.objects.get(file_name="a.png")
    assert 'id="image-missing"' not in html and f'src="/images/{image.pk}/file"' in html
    assert f'data-width="{image.width}"' in html
    client.force_login(users["b"])
    html = client.get(pages["b"]).content.decode()
    assert 'data-reference-state="failed"' in html and "HTTP 404" in html


def test_the_import_page_takes_an_images_base(
    refs, project, tmp_path, client, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(make_user("ada", project=project, role="admin"))
    coco = json.dumps({"images": [{"id": 1, "file_name": "p.png"}], "annotations": []}).encode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    refused = client.post(
        "/projects/test/imports/new/",
        {"format": "coco", "file": SimpleUploadedFile("c.json", coco), "images_base": "https://elsewhere.example/x/"},
        follow=True,
    )
    assert "host elsewhere.example is not allowed" in refused.content.decode()
    assert not ImportBatch.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):  # the import, then its fetch, run here
        answer = client.post(
            "/projects/test/imports/new/",
            {"format": "coco", "file": SimpleUploadedFile("c.json", coco), "images_base": f"{refs.base}/img/"},
        )
    batch = ImportBatch.objects.get()
    assert answer.status_code == 302 and batch.options["images_base"] == f"{refs.base}/img/"
    ref = ImageReference.objects.get()
    assert (ref.uri, ref.state) == (f"{refs.base}/img/p.png", State.FETCHED)
