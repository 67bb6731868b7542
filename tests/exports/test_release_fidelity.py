"""Releases read back as their users read them: every configuration the dataset card lists loads
with ``datasets`` (offline); a DRESS release holds all three published files; a release of rich
records ships their JSON Schema."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from itertools import count
from pathlib import Path

import jsonschema
import pyarrow.parquet as pq
import pytest
import yaml

from exports.models import Release
from feedback.review.models import Decision
from tests.exports.export_helpers import build, folder, make_image_samples, read_jsonl, review_all
from tests.exports.test_formats import reviewed
from tests.feedback.review_helpers import make_reviewers

pytestmark = pytest.mark.django_db

SCHEMA_SOURCE = Path(__file__).resolve().parents[2] / "exports" / "schemas" / "rich_record.schema.json"
DRESS_FILES = ["hallucination_nlf.jsonl", "harmlessness_nlf.jsonl", "helpfulness_nlf.jsonl"]
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TWO_SPLITS = {"train": 0.5, "test": 0.5, "seed": "x"}


@pytest.fixture
def load_dataset(tmp_path, monkeypatch):
    """``datasets.load_dataset`` as a user offline calls it, each call with a cache of its own
    under tmp_path."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    caches = count()

    def load(*args, **kwargs):
        return datasets.load_dataset(*args, cache_dir=str(tmp_path / f"hf-cache-{next(caches)}"), **kwargs)

    return load


def card_of(release: Release) -> tuple[dict, str]:
    """The card's YAML header, parsed, and its body."""
    text = (folder(release) / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def rows_in(path: Path) -> int:
    """A data file's records, counted without the release's code."""
    if path.suffix == ".parquet":
        return pq.read_metadata(path).num_rows
    if path.suffix == ".json":
        return len(json.loads(path.read_text()))
    return len(path.read_text().splitlines())


def data_files(release: Release) -> dict[str, int]:
    """Every data file of the release folder with its records."""
    root = folder(release)
    return {
        p.relative_to(root).as_posix(): rows_in(p)
        for p in sorted(root.rglob("*"))
        if p.suffix in (".jsonl", ".json", ".parquet") and p.name not in ("manifest.json", SCHEMA_SOURCE.name)
    }


def matched(root: Path, pattern: str) -> str:
    """The one file of the release a ``data_files`` pattern (a glob) matches."""
    (path,) = glob.glob(pattern, root_dir=root)
    return os.path.normpath(path)


def loaded_rows(dataset) -> dict[str, int]:
    return {split: part.num_rows for split, part in dataset.items()}


def check_the_card_loads(release: Release, load_dataset) -> dict[str, str]:
    """Loads every configuration of the card's header by name, and runs every call of its Loading
    section: each split, each file, holds the rows of its file. The files loaded, by path, with how
    (the config's name, or "pyarrow")."""
    header, body = card_of(release)
    root = folder(release)
    files = data_files(release)
    loaded: dict[str, str] = {}
    for config in header["configs"]:
        dataset = load_dataset(str(root), name=config["config_name"])
        paths = {item["split"]: matched(root, item["path"]) for item in config["data_files"]}
        assert loaded_rows(dataset) == {split: files[path] for split, path in paths.items()}, config["config_name"]
        loaded.update(dict.fromkeys(paths.values(), config["config_name"]))
    section = body.split("## Loading\n", 1)[1].split("\n## ", 1)[0]
    calls = [line for line in section.splitlines() if line.startswith(("load_dataset(", "pq.read_table("))]
    assert len(calls) >= len(header["configs"])
    for call in calls:
        result = eval(call, {"load_dataset": load_dataset, "pq": pq, "folder": str(root)})  # noqa: S307 - the card's code
        if call.startswith("pq."):
            (path,) = re.findall(r'f"\{folder\}/([^"]+)"', call)
            assert len(result) == files[path] and all(isinstance(r["turns"], list) for r in result), call
            loaded[path] = "pyarrow"
    return loaded


# --------------------------------------------------------------------------------------------
# Every configuration of the card loads


def test_every_configuration_the_card_lists_loads_with_datasets(project, load_dataset):
    reviewed(project, 8, {"s1": Decision.EDITED, "s2": Decision.REJECTED, "s5": Decision.EDITED}, turns=2, criterion="")
    release = build(
        project,
        ["dress", "vlsafe", "rich", "llava", "preference", "parquet"],
        include_images=True,
        split=TWO_SPLITS,
        filters={"decisions": ["accepted", "edited", "rejected"]},
    )
    header, _ = card_of(release)
    names = [c["config_name"] for c in header["configs"]]
    assert {"dress_helpfulness_nlf", "rich", "llava_dialogues", "preference_pairs"} <= set(names)
    assert "parquet_rich" not in names  # another builder: loaded by its paths, below

    loaded = check_the_card_loads(release, load_dataset)

    with_rows = {path for path, rows in data_files(release).items() if rows}
    assert {"train/rich.parquet", "test/rich.parquet", "train/preference_pairs.jsonl"} <= with_rows
    assert set(loaded) == with_rows  # every file with records loads, by name or by the card's call
    assert loaded["train/rich.parquet"] == "pyarrow"


def test_a_release_of_parquet_alone_loads_by_the_config_name(project, load_dataset):
    reviewed(project, 4, criterion="")
    release = build(project, ["parquet"], split=TWO_SPLITS)
    header, _ = card_of(release)
    assert [c["config_name"] for c in header["configs"]] == ["parquet_rich"]
    dataset = load_dataset(str(folder(release)), name="parquet_rich")
    assert sum(loaded_rows(dataset).values()) == 4
    row = dataset["train"][0]
    (same,) = [
        r
        for r in pq.read_table(folder(release) / "train" / "rich.parquet").to_pylist(maps_as_pydicts="strict")
        if r["id"] == row["id"]
    ]
    final = row["turns"][0]["final"]
    assert dict(final["scores"]) == same["turns"][0]["final"]["scores"] != {}  # a map: [key, value] pairs
    assert row["turns"][0]["draft"]["model"] == same["turns"][0]["draft"]["model"]
    assert set(check_the_card_loads(release, load_dataset)) == {"train/rich.parquet", "test/rich.parquet"}


def test_the_card_of_one_criterion_lists_no_empty_file_and_every_config_loads(project, load_dataset):
    reviewed(project, 3, criterion="")
    release = build(project, ["dress", "rich"], filters={"criteria": ["honesty"]})
    header, _ = card_of(release)
    assert [c["config_name"] for c in header["configs"]] == ["dress_hallucination_nlf", "rich"]
    assert set(check_the_card_loads(release, load_dataset)) == {"hallucination_nlf.jsonl", "rich.jsonl"}


# --------------------------------------------------------------------------------------------
# DRESS: all three published files


@pytest.mark.parametrize("split", [None, TWO_SPLITS], ids=["one-split", "two-splits"])
def test_a_dress_release_of_one_criterion_holds_all_three_published_files(project, split):
    reviewed(project, 6, criterion="")
    options = {"split": split} if split else {}
    release = build(project, ["dress"], filters={"criteria": ["honesty"]}, **options)
    root = folder(release)
    prefixes = ["train/", "test/"] if split else [""]
    listed = {f["path"]: f for f in release.manifest["files"]}
    released = 0
    for prefix in prefixes:
        for name in DRESS_FILES:
            path = f"{prefix}{name}"
            records = read_jsonl(root / path)  # code that opens all three names finds them
            assert listed[path]["format"] == "dress"
            assert listed[path]["rows"] == len(records)
            assert listed[path]["sha256"] == hashlib.sha256((root / path).read_bytes()).hexdigest()
            if name == "hallucination_nlf.jsonl":
                released += len(records)
            else:
                assert records == [] and listed[path]["sha256"] == EMPTY_SHA256
    assert released == 6
    stored = dict(release.files.filter(format="dress").values_list("path", "rows"))
    assert sorted(stored) == sorted(f"{p}{n}" for p in prefixes for n in DRESS_FILES)


def test_a_dress_release_of_nothing_still_holds_the_three_files(project):
    reviewed(project, 2, criterion="")
    release = build(project, ["dress"], filters={"decisions": ["rejected"]})
    assert release.samples_released == 0
    assert sorted(release.files.filter(format="dress").values_list("path", flat=True)) == DRESS_FILES
    assert all((folder(release) / name).read_bytes() == b"" for name in DRESS_FILES)


# --------------------------------------------------------------------------------------------
# The rich records' JSON Schema


@pytest.mark.parametrize("formats", [["rich"], ["parquet"], ["rich", "parquet", "dress"]])
def test_a_release_of_rich_records_ships_their_schema(project, formats):
    reviewed(project, 3, {"s1": Decision.EDITED}, turns=2, criterion="")
    release = build(project, formats)
    shipped = folder(release) / "rich_record.schema.json"
    assert shipped.read_bytes() == SCHEMA_SOURCE.read_bytes()
    (entry,) = [f for f in release.manifest["files"] if f["path"] == "rich_record.schema.json"]
    assert entry["format"] == "schema"
    assert entry["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert entry["bytes"] == shipped.stat().st_size
    assert release.files.get(path="rich_record.schema.json").sha256 == entry["sha256"]
    if "rich" in formats:
        validator = jsonschema.Draft202012Validator(json.loads(shipped.read_text()))
        for record in read_jsonl(folder(release) / "rich.jsonl"):
            validator.validate(record)
    header, body = card_of(release)
    assert all(not c["config_name"].startswith("schema") for c in header["configs"])
    assert "`rich_record.schema.json` is the JSON Schema of the rich records." in body


def test_a_release_without_rich_records_ships_no_schema(project):
    reviewed(project, 2, criterion="")
    release = build(project, ["dress", "vlsafe", "llava"])
    assert not (folder(release) / "rich_record.schema.json").exists()
    assert not release.files.filter(format="schema").exists()


def test_criteria_of_any_name_make_configurations_that_load(project, load_dataset):
    project.criteria = ["clarity: short", 'the "précision" [v2]?']
    project.save(update_fields=["criteria"])
    make_image_samples(project, 3, criterion="")
    (ann,) = make_reviewers(project, "ann")
    scores = {"clarity: short": 5, 'the "précision" [v2]?': 6}
    assert review_all(project, ann, lambda turn: {"decision": Decision.EDITED, "critique": "Fine.", "scores": scores})
    release = build(project, ["dress", "preference"])
    header, _ = card_of(release)
    names = [c["config_name"] for c in header["configs"]]
    assert {"dress_clarity_ short_nlf", "dress_the _précision_ [v2]__nlf"} <= set(names)
    loaded = check_the_card_loads(release, load_dataset)
    assert set(loaded) == {p for p, rows in data_files(release).items() if rows}
    pairs = load_dataset(str(folder(release)), name="preference_pairs")["train"]
    assert pairs[0]["chosen"]["scores"] == scores
