"""Image files that arrive after their samples: a folder or zip attached with --format images."""

import zipfile

import pytest
from django.core.management import call_command

from feedback.models import Image, ImportBatch
from tests.conftest import SHARED_FORMATS

from .import_helpers import image_bytes, run_import

pytestmark = pytest.mark.django_db

NAMES = ["000000350510.jpg", "000000572353.jpg", "000000216517.jpg"]


@pytest.fixture
def registered(project):
    batch = run_import(project, "vlsafe", SHARED_FORMATS / "vlsafe_example.jsonl")
    assert batch.created == 3
    assert Image.objects.filter(project=project, file="").count() == 3
    return project


def test_folder_attaches_the_files_it_has_and_refuses_bad_ones(registered, tmp_path, capsys):
    folder = tmp_path / "arrived"
    folder.mkdir()
    (folder / NAMES[0]).write_bytes(image_bytes())
    (folder / NAMES[1]).write_bytes(b"this is not an image")
    call_command("import_samples", str(folder), project="test", format="images", no_progress=True)
    out = capsys.readouterr().out
    assert "records read:        3" in out
    assert "images attached:     1" in out
    assert f"image {NAMES[1]} refused: not an image" in out

    attached = Image.objects.get(project=registered, file_name=NAMES[0])
    assert not attached.is_missing and attached.width and len(attached.sha256) == 64
    assert Image.objects.filter(project=registered, file="").count() == 2

    batch = ImportBatch.objects.filter(format="images").latest("pk")
    assert (batch.updated, batch.skipped) == (1, 2)


def test_zip_attaches_by_base_name_and_second_run_changes_nothing(registered, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in NAMES:
            zf.writestr(f"val2017/{name}", image_bytes())
    first = run_import(registered, "images", archive)
    assert (first.status, first.images_attached) == (ImportBatch.Status.COMPLETED, 3)
    assert not Image.objects.filter(project=registered, file="").exists()
    second = run_import(registered, "images", archive)
    assert (second.records_read, second.images_attached) == (0, 0)
