"""The stores of feedback/storage.py, on the local folder and on the test S3 server alike."""

from __future__ import annotations

import hashlib
import io
import urllib.request

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import FileResponse

from feedback import storage


@pytest.fixture(params=["local", "s3"])
def backend(request) -> str:
    if request.param == "s3":
        request.getfixturevalue("s3_storages")
    return request.param


def test_the_embedded_default_is_the_local_folders(settings, tmp_path):
    assert storage.is_local(storage.MEDIA) and storage.is_local(storage.UPLOADS) and storage.is_local(storage.RELEASES)
    storage.store_image(b"x", "images/ab/abc.png")
    assert (settings.MEDIA_ROOT / "images/ab/abc.png").read_bytes() == b"x"
    settings.RELEASES_ROOT = tmp_path / "elsewhere"
    assert storage.local_path(storage.RELEASES, "a") == tmp_path / "elsewhere" / "a"


def test_an_image_is_stored_once_under_its_name(backend):
    storage.store_image(b"first", "images/aa/a.png", "image/png")
    storage.store_image(b"second", "images/aa/a.png", "image/png")  # same name: same content, kept
    with storage.store(storage.MEDIA).open("images/aa/a.png", "rb") as f:
        assert f.read() == b"first"


def test_an_upload_streams_in_and_a_worker_reads_its_own_copy(backend):
    name = storage.save_upload(storage.UPLOADS, "f00/data.jsonl", SimpleUploadedFile("data.jsonl", b'{"a": 1}\n'))
    assert name == "f00/data.jsonl"
    with storage.local_copy(storage.UPLOADS, name) as path:
        assert path.name == "data.jsonl"
        assert path.read_bytes() == b'{"a": 1}\n'
    storage.delete_folder(storage.UPLOADS, "f00")
    assert not storage.exists(storage.UPLOADS, name)


def test_staged_files_appear_together_when_published(backend, settings):
    settings.STORAGE_PART_BYTES = 5 * 1024 * 1024
    big = bytes(range(256)) * (6 * 1024 * 1024 // 256 + 3)  # two parts and a bit
    staging = storage.Staging(storage.RELEASES, "proj/1", "tok")
    stream, written = staging.open("sub/big.bin")
    for start in range(0, len(big), 100_000):
        stream.write(big[start : start + 100_000])
    assert stream.tell() == len(big)
    stream.close()
    empty, nothing = staging.open("empty.txt")
    empty.close()
    assert not storage.exists(storage.RELEASES, "proj/1/sub/big.bin")
    staging.publish()
    assert written.byte_size == len(big) and written.sha256 == hashlib.sha256(big).hexdigest()
    assert nothing.byte_size == 0 and nothing.sha256 == hashlib.sha256(b"").hexdigest()
    with storage.store(storage.RELEASES).open("proj/1/sub/big.bin", "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == written.sha256
    assert storage.exists(storage.RELEASES, "proj/1/empty.txt")


def test_discarded_staged_files_never_appear(backend):
    staging = storage.Staging(storage.RELEASES, "proj/2", "tok")
    stream, _ = staging.open("a.txt")
    stream.write(b"abc")
    stream.close()
    staging.discard()
    assert not storage.exists(storage.RELEASES, "proj/2/a.txt")
    assert storage.abort_uploads(storage.RELEASES, "proj") == 0  # none left unfinished


def test_a_text_stream_over_a_staged_file(backend):
    staging = storage.Staging(storage.RELEASES, "proj/3", "tok")
    raw, written = staging.open("t.jsonl")
    text = io.TextIOWrapper(io.BufferedWriter(raw, 1 << 16), encoding="utf-8", newline="\n")  # type: ignore[arg-type]
    text.write("héllo\n")
    text.close()
    staging.publish()
    assert written.sha256 == hashlib.sha256("héllo\n".encode()).hexdigest()


def test_serving_signed_or_streamed(s3_storages, settings):
    storage.store_image(b"GIF89a", "images/gg/g.gif", "image/gif")
    signed = storage.serve(storage.MEDIA, "images/gg/g.gif", filename="cat.gif", attachment=False)
    assert signed.status_code == 302
    with urllib.request.urlopen(signed["Location"], timeout=10) as answer:  # noqa: S310 - the test server
        assert answer.read() == b"GIF89a"
        assert answer.headers["Content-Type"] == "image/gif"
        assert answer.headers["Content-Disposition"].startswith("inline")
    settings.STORAGE_DOWNLOADS = "stream"
    streamed = storage.serve(storage.MEDIA, "images/gg/g.gif", filename="cat.gif")
    assert isinstance(streamed, FileResponse)
    assert streamed.status_code == 200 and b"".join(streamed.streaming_content) == b"GIF89a"  # type: ignore[arg-type]
    assert "attachment" in streamed["Content-Disposition"]


def test_store_settings_per_kind_with_shared_defaults(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from annotator.settings import storage_origin, storage_settings

    monkeypatch.setenv("ANNOTATOR_STORAGE", "s3")
    with pytest.raises(ImproperlyConfigured, match="ANNOTATOR_S3_BUCKET or ANNOTATOR_RELEASES_S3_BUCKET"):
        storage_settings("RELEASES", "RELEASES_ROOT")
    monkeypatch.setenv("ANNOTATOR_S3_BUCKET", "shared")
    monkeypatch.setenv("ANNOTATOR_S3_ENDPOINT_URL", "http://store.internal:9000")
    monkeypatch.setenv("ANNOTATOR_RELEASES_S3_BUCKET", "releases-bucket")
    monkeypatch.setenv("ANNOTATOR_RELEASES_S3_PREFIX", "/team/a/")
    monkeypatch.setenv("ANNOTATOR_UPLOADS_STORAGE", "local")
    releases = storage_settings("RELEASES", "RELEASES_ROOT")["OPTIONS"]
    assert (releases["bucket_name"], releases["location"]) == ("releases-bucket", "team/a")
    assert releases["endpoint_url"] == "http://store.internal:9000"
    media = storage_settings("MEDIA", "MEDIA_ROOT")
    assert (media["OPTIONS"]["bucket_name"], media["OPTIONS"]["location"]) == ("shared", "media")
    assert storage_settings("UPLOADS", "UPLOAD_DIR")["BACKEND"] == "feedback.storage.LocalStorage"
    assert storage_origin(media) == "http://store.internal:9000"
    assert storage_origin(storage_settings("UPLOADS", "UPLOAD_DIR")) is None
    monkeypatch.setenv("ANNOTATOR_MEDIA_STORAGE", "ftp")
    with pytest.raises(ImproperlyConfigured, match="ANNOTATOR_MEDIA_STORAGE must be 'local' or 's3'"):
        storage_settings("MEDIA", "MEDIA_ROOT")


def test_credentials_stay_in_the_environment(s3_storages, settings):
    """The settings name no key: boto3 reads them from the environment when it connects."""
    assert s3_storages["AWS_SECRET_ACCESS_KEY"] not in repr(settings.STORAGES)
    assert "access_key" not in repr(settings.STORAGES) and "secret_key" not in repr(settings.STORAGES)
