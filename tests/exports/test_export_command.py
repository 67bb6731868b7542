"""python manage.py export_dataset: builds in-process with a progress bar, prints the folder and
each file with its rows and sha256, and names the field of any bad input."""

from __future__ import annotations

import dataclasses
import io

import pytest
from django.core.management import CommandError, call_command

from exports.models import Release
from exports.service import release_folder
from tests.conftest import make_user
from tests.exports.release_helpers import reviewed_samples, sha256_of

pytestmark = pytest.mark.django_db


def export(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_dataset", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_builds_a_release_and_prints_its_files(project):
    reviewed_samples(project, 4)
    out, err = export("--project", "test", "--format", "dress", "--format", "rich", "--name", "CLI cut")
    release = Release.objects.get()
    assert (release.state, release.name, release.created_by) == ("completed", "CLI cut", None)
    assert release.formats == ["dress", "rich"]
    assert (release.samples_total, release.samples_done, release.samples_released) == (4, 4, 4)
    assert f"Release #{release.pk} 'CLI cut' of test: dress, rich." in out
    assert "4 of 4 samples" in out
    assert f"Folder: {release_folder(release)}" in out
    files = list(release.files.all())
    assert {f.format for f in files} >= {"dress", "rich", "manifest", "card"}
    for f in files:
        line = next(line for line in out.splitlines() if line.strip().startswith(f.path + " "))
        assert f"{f.rows} rows" in line and f"sha256 {f.sha256}" in line
        assert sha256_of((release_folder(release) / f.path).read_bytes()) == f.sha256
    assert "4/4" in err and "sample" in err  # the progress bar, on stderr


def test_the_command_passes_every_filter(project):
    reviewed_samples(project, 2)
    make_user("ann")
    export(
        "--project",
        "Test project",
        "--format",
        "dress,rich",
        "--decisions",
        "accepted,rejected",
        "--criteria",
        "honesty,helpfulness",
        "--score-range",
        "honesty=5:7",
        "--score-range",
        "helpfulness=1:6",
        "--reviewer",
        "reviewer",
        "--reviewer",
        "ann",
        "--from",
        "2020-01-01",
        "--to",
        "2099-12-31",
        "--prompt-version",
        "v1",
        "--no-imported",
        "--no-simulated",
        "--split",
        "0.8,0.1,0.1",
        "--seed",
        "17",
        "--user",
        "ann",
        "--no-progress",
    )
    release = Release.objects.get()
    assert release.state == "completed", release.error
    assert release.created_by is not None and release.created_by.username == "ann"
    assert release.filters == {
        "decisions": ["accepted", "rejected"],
        "include_imported": False,
        "criteria": ["honesty", "helpfulness"],
        "score_ranges": {"honesty": [5, 7], "helpfulness": [1, 6]},
        "reviewers": ["reviewer", "ann"],
        "date_from": "2020-01-01",
        "date_to": "2099-12-31",
        "prompt_versions": ["v1"],
        "include_simulated": False,
    }
    assert release.split == {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": "17"}
    assert release.include_images is False


def test_the_defaults_release_accepted_and_edited_feedback_to_train(project):
    reviewed_samples(project, 1)
    export("--project", "test", "--format", "dress", "--no-progress")
    release = Release.objects.get()
    assert release.filters["decisions"] == ["accepted", "edited"]
    assert release.filters["include_imported"] is True and release.filters["include_simulated"] is True
    assert release.split == {"train": 1.0, "validation": 0.0, "test": 0.0, "seed": ""}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--project", "nope", "--format", "dress"], "project: no project"),
        (["--project", "test"], "formats: Choose at least one format"),
        (["--project", "test", "--format", "csv"], "formats: Unknown formats: csv"),
        (["--project", "test", "--format", "dress", "--decisions", "maybe"], "decisions: Not decisions: maybe"),
        (["--project", "test", "--format", "dress", "--criteria", "beauty"], "criteria: Not criteria"),
        (["--project", "test", "--format", "dress", "--score-range", "honesty=high"], "score_ranges: 'honesty=high'"),
        (["--project", "test", "--format", "dress", "--score-range", "honesty=7:5"], "score_ranges: The range"),
        (["--project", "test", "--format", "dress", "--score-range", "beauty=1:2"], "score_ranges: 'beauty'"),
        (["--project", "test", "--format", "dress", "--from", "soon"], "date_from: A date such as"),
        (["--project", "test", "--format", "dress", "--from", "2026-02-01", "--to", "2026-01-01"], "date_to:"),
        (["--project", "test", "--format", "dress", "--split", "0.5,0.1"], "split: The fractions add up to 0.6"),
        (["--project", "test", "--format", "dress", "--split", "a,b"], "split: fractions such as"),
        (["--project", "test", "--format", "dress", "--split", "0.5,0.2,0.2,0.1"], "split: at most 3"),
        (["--project", "test", "--format", "dress", "--user", "ghost"], "user: no user 'ghost'"),
    ],
)
def test_bad_input_is_a_command_error_naming_the_field(project, args, message):
    with pytest.raises(CommandError) as error:
        export(*args, "--no-progress")
    assert message in str(error.value)
    assert Release.objects.count() == 0


def test_a_failed_build_is_a_command_error(project, monkeypatch):
    reviewed_samples(project, 1)
    from exports.formats import FORMATS

    def broken(sink, ctx):
        raise OSError("disk full")

    monkeypatch.setitem(FORMATS, "rich", dataclasses.replace(FORMATS["rich"], writer=broken))
    with pytest.raises(CommandError) as error:
        export("--project", "test", "--format", "rich", "--no-progress")
    assert "failed: OSError: disk full" in str(error.value)
    assert Release.objects.get().state == "failed"


def test_images_are_added_on_request(project):
    reviewed_samples(project, 1)
    out, _ = export("--project", "test", "--format", "dress", "--images", "--no-progress")
    release = Release.objects.get()
    assert release.state == "completed", release.error
    assert release.include_images is True
    images = list(release.files.filter(format="images"))
    assert images, list(release.files.values_list("path", "format"))
    assert all(f.path in out for f in images)
