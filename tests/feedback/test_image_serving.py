"""Image files are served by the format checked at import, never by what the stored name implies;
the admin cannot put a file in place of an imported one."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.http import FileResponse
from django.test import Client

from feedback.models import Image

from .import_helpers import image_bytes, native_record, run_import, write_jsonl

pytestmark = pytest.mark.django_db

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'


def member(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def test_an_svg_placed_as_an_image_file_is_sent_as_an_attachment(project, admin_user, media_root):
    stored = Path(media_root) / "images" / "evil.svg"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(SVG)
    image = Image.objects.create(
        project=project, file_name="evil.svg", file="images/evil.svg", sha256="a" * 64, format="SVG"
    )

    response = member(admin_user).get(f"/images/{image.pk}/file")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert isinstance(response, FileResponse)
    assert b"".join(response.streaming_content) == SVG


def test_a_png_stored_under_a_misleading_name_is_still_only_a_download(project, admin_user, media_root):
    stored = Path(media_root) / "images" / "page.html"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"<html><script>alert(1)</script></html>")
    image = Image.objects.create(project=project, file_name="page.html", file="images/page.html", sha256="b" * 64)

    response = member(admin_user).get(f"/images/{image.pk}/file")

    assert (response["Content-Type"], response["X-Content-Type-Options"]) == ("application/octet-stream", "nosniff")
    assert response["Content-Disposition"].startswith("attachment;")


def test_an_imported_png_is_served_inline_as_image_png(project, admin_user, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cat.png").write_bytes(image_bytes("PNG"))
    run_import(project, "native", write_jsonl(tmp_path / "s.jsonl", [native_record("s", "cat.png")]), images=folder)
    image = Image.objects.get(file_name="cat.png")

    response = member(admin_user).get(f"/images/{image.pk}/file")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response.get("Content-Disposition", "").startswith("attachment")
    assert isinstance(response, FileResponse)
    assert b"".join(response.streaming_content) == image_bytes("PNG")


def test_image_files_and_what_was_checked_of_them_are_read_only_in_the_admin(project, tmp_path):
    from django.contrib.auth.models import User

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cat.png").write_bytes(image_bytes("PNG"))
    run_import(project, "native", write_jsonl(tmp_path / "s.jsonl", [native_record("s", "cat.png")]), images=folder)
    image = Image.objects.get(file_name="cat.png")
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="pw-root-1234"))

    page = admin.get(f"/admin/feedback/image/{image.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    for field in ("file", "sha256", "width", "height", "format"):
        assert f'name="{field}"' not in html, field
    assert 'name="file_name"' in html
