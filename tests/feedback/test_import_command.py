"""The import_samples command: a summary with counts and every rejected line, and clear failures."""

import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from feedback.models import ImportBatch, Sample

from .import_helpers import DRESS_EXAMPLE, dress_record, image_bytes, native_record, write_jsonl

pytestmark = pytest.mark.django_db


def import_samples(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_samples", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_summary_counts_and_rejected_lines(project, tmp_path):
    path = write_jsonl(
        tmp_path / "harmlessness_nlf.jsonl",
        [
            dress_record("a.jpg", ("Q?", "A.", "4", "Fine.")),
            dress_record("b.jpg", ("Q?", "A.", "9", "Fine.")),
            "{not json",
            dress_record("c.jpg", ("Q?", "A.", "2", "Poor.")),
        ],
    )

    out, _ = import_samples(str(path), "--project", "test", "--format", "dress", "--no-progress")

    batch = ImportBatch.objects.get()
    lines = out.splitlines()
    assert lines[0] == f"Import #{batch.pk} of harmlessness_nlf.jsonl (dress) into Test project: completed"
    assert lines[1:7] == [
        "  records read:        4",
        "  created:             2",
        "  updated:             0",
        "  skipped (unchanged): 0",
        "  rejected:            2",
        "  images attached:     0",
    ]
    assert lines[7] == "  rejected line 2: interaction[0].rating: score 9 is outside this project's scale 1-7"
    assert lines[8].startswith("  rejected line 3: invalid JSON: ")
    assert len(lines) == 9
    assert Sample.objects.count() == 2


def test_second_run_reports_skipped_records_and_image_warnings(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("s1", "good.png"), native_record("s2", "bad.jpg")])
    import_samples(str(path), "--project", "Test project", "--format", "native", "--no-progress")
    images = tmp_path / "images"
    images.mkdir()
    (images / "good.png").write_bytes(image_bytes("PNG"))
    (images / "bad.jpg").write_bytes(b"plain text")

    out, _ = import_samples(
        str(path), "--project", str(project.pk), "--format", "native", "--images", str(images), "--no-progress"
    )

    assert "  skipped (unchanged): 2" in out.splitlines()
    assert "  images attached:     1" in out.splitlines()
    assert (
        "  warning: line 2: image bad.jpg refused: not an image in an accepted format "
        "(JPEG, PNG, WEBP, GIF, BMP, TIFF); the sample is kept, its image still missing"
    ) in out.splitlines()


def test_options_reach_the_batch_and_the_samples(project, tmp_path):
    path = tmp_path / "samples.jsonl"
    shutil.copyfile(DRESS_EXAMPLE, path)

    import_samples(
        str(path),
        "--project",
        "test",
        "--format",
        "dress",
        "--criterion",
        "helpfulness",
        "--source-dataset",
        "DRESS-test",
        "--source-model",
        "lvlm-13b",
        "--no-progress",
    )

    batch = ImportBatch.objects.get()
    assert batch.options == {"criterion": "helpfulness", "source_dataset": "DRESS-test", "source_model": "lvlm-13b"}
    sample = Sample.objects.get()
    assert (sample.target_criterion, sample.source_dataset, sample.source_model) == (
        "helpfulness",
        "DRESS-test",
        "lvlm-13b",
    )


def test_progress_bar_goes_to_stderr(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("s1")])

    out, err = import_samples(str(path), "--project", "test", "--format", "native")

    assert "samples.jsonl" in err
    assert "100%" in err
    assert "samples.jsonl" in out.splitlines()[0]


def test_unknown_project_is_a_command_error(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("s1")])

    with pytest.raises(CommandError, match="no project with slug, name or id 'nope'"):
        import_samples(str(path), "--project", "nope", "--format", "native", "--no-progress")

    assert not ImportBatch.objects.exists()


def test_missing_file_is_a_command_error(project, tmp_path):
    with pytest.raises(CommandError, match="is not a file"):
        import_samples(str(tmp_path / "absent.jsonl"), "--project", "test", "--format", "native", "--no-progress")


def test_dress_file_without_a_criterion_fails_with_the_reason(project, tmp_path):
    path = tmp_path / "samples.jsonl"
    shutil.copyfile(DRESS_EXAMPLE, path)

    with pytest.raises(CommandError) as failed:
        import_samples(str(path), "--project", "test", "--format", "dress", "--no-progress")

    assert str(failed.value).startswith("import failed: a DRESS file holds one criterion: name it with --criterion")
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.failure == str(failed.value).removeprefix("import failed: ")
    assert not Sample.objects.exists()


def test_criterion_outside_the_rubric_fails(project, tmp_path):
    path = tmp_path / "harmlessness_nlf.jsonl"
    shutil.copyfile(DRESS_EXAMPLE, path)

    with pytest.raises(CommandError) as failed:
        import_samples(str(path), "--project", "test", "--format", "dress", "--criterion", "beauty", "--no-progress")

    assert str(failed.value) == (
        "import failed: criterion 'beauty' is not in this project's rubric (helpfulness, honesty, harmlessness)"
    )
    assert not Sample.objects.exists()


def test_images_path_that_does_not_exist_fails(project, tmp_path):
    path = write_jsonl(tmp_path / "samples.jsonl", [native_record("s1", "a.png")])

    with pytest.raises(CommandError, match=r"import failed: image folder or zip .*nowhere does not exist"):
        import_samples(
            str(path), "--project", "test", "--format", "native", "--images", str(tmp_path / "nowhere"), "--no-progress"
        )
