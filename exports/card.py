"""The dataset card of a release: a README.md with the YAML header that dataset hubs read."""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field

from . import hub_features
from .formats.rich import SCHEMA_FORMAT, SCHEMA_PATH
from .models import Release
from .quality_figures import card_section

LICENSE = "other"


def _yaml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


# The builder of ``datasets`` that reads a data file, by its extension.
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
SAFE_PATH = re.compile(r"[\w./ -]+")
UNSAFE_NAME = re.compile(r'[<>:/\\|?*"]')
NOT_DATA = ("card", "manifest", "images", SCHEMA_FORMAT)


@dataclass
class HubConfig:
    name: str
    builder: str
    format: str
    files: list[tuple[str, str]] = field(default_factory=list)  # (split, path)


def hub_configs(manifest: dict) -> tuple[list[HubConfig], list[HubConfig]]:
    """One hub config per data file name, with its splits (e.g. dress_helpfulness_nlf): those the
    card's header lists, and those it cannot.

    ``datasets`` reads every config of a card with one builder, the one it infers from the first
    config's files (its ``load_dataset(folder, name=...)`` took the JSON builder for a Parquet
    config, and failed). So the header lists the configs of one builder, JSON's when there are
    any; the others are loaded by path, as the card's body says. Empty files are left out: the
    JSON builder cannot read a file with no rows (a DRESS file of a criterion not released)."""
    configs: dict[str, HubConfig] = {}
    for f in manifest["files"]:
        builder = next((b for ext, b in BUILDERS.items() if f["path"].endswith(ext)), None)
        if f["format"] in NOT_DATA or builder is None or not f["rows"]:
            continue
        base = f["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
        name = f"{f['format']}_{base}" if not base.startswith(f["format"]) else base
        config = configs.setdefault(name, HubConfig(name, builder, f["format"]))
        config.files.append((f["split"] or "train", f["path"]))
    taken: set[str] = set()
    for config in configs.values():  # names datasets takes: none of <>:/\|?* (a folder is made of each)
        name = base = UNSAFE_NAME.sub("_", config.name)
        while name in taken:
            name = f"{base}_{len(taken)}"
        config.name = name
        taken.add(name)
    chosen = "json" if any(c.builder == "json" for c in configs.values()) else "parquet"
    listed = [c for c in configs.values() if c.builder == chosen]
    return listed, [c for c in configs.values() if c.builder != chosen]


def _data_files_pattern(path: str) -> str:
    """A release path as a ``data_files`` pattern that matches that file alone: ``datasets`` reads
    a pattern as a glob (``*``, ``?`` and ``[`` escaped here) and one with a colon, such as
    ``clarity: short_nlf.jsonl`` of a criterion so named, as an address of the scheme before it
    (``./`` keeps it a path)."""
    if SAFE_PATH.fullmatch(path):
        return path
    return "./" + glob.escape(path)


def _configs(listed: list[HubConfig], criteria: list[str]) -> list[str]:
    """The header's ``configs`` and, for the JSON ones, ``dataset_info`` with their features."""
    if not listed:
        return []
    lines = ["configs:"]
    for config in listed:
        lines.append(f"- config_name: {_yaml_string(config.name)}")
        lines.append("  data_files:")
        for split, path in config.files:
            lines.append(f"  - split: {split}")
            lines.append(f"    path: {_yaml_string(_data_files_pattern(path))}")
    typed = [(c, fields) for c in listed if (fields := hub_features.features(c.format, criteria))]
    if typed:
        lines.append("dataset_info:")
        for config, fields in typed:
            lines.append(f"- config_name: {_yaml_string(config.name)}")
            lines.append("  features:")
            lines += hub_features.yaml_lines(fields, 2)
    return lines


def _released_criteria(manifest: dict) -> list[str]:
    chosen = manifest["filters"].get("criteria") or []
    return [c for c in manifest["rubric"]["criteria"] if not chosen or c in chosen]


def _loading(listed: list[HubConfig], others: list[HubConfig]) -> str:
    """How to load the release's data: the header's configs by name with ``datasets``, the Parquet
    files of a release that also has JSON ones with ``pyarrow``."""
    if not listed:
        return ""
    lines = [
        "## Loading",
        "",
        "Each configuration of the header loads by name from this folder with `datasets`:",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'folder = "path/to/this/release"',
        *(f"load_dataset(folder, name={json.dumps(c.name, ensure_ascii=False)})" for c in listed),
        "```",
    ]
    if any(c.builder == "parquet" for c in listed):
        lines += [
            "",
            "In `datasets`, the Parquet file's map columns (`scores`, `per_criterion`) read as lists of "
            "`[key, value]` pairs: `dict()` them.",
        ]
    if others:
        lines += [
            "",
            f"`datasets` reads every configuration of a card with one builder ({listed[0].builder} here, "
            "from the first configuration's files), so the Parquet files are no configuration of this "
            "card; read them with `pyarrow` (each file a list of rich records, maps as dicts):",
            "",
            "```python",
            "import pyarrow.parquet as pq",
            "",
            *(
                f'pq.read_table(f"{{folder}}/{path}").to_pylist(maps_as_pydicts="strict")'
                for c in others
                for _, path in c.files
            ),
            "```",
        ]
    return "\n".join(lines) + "\n\n"


def card_text(release: Release, manifest: dict) -> str:
    project = release.project
    counts = manifest["counts"]
    listed, others = hub_configs(manifest)
    schema_note = (
        f" `{SCHEMA_PATH.name}` is the JSON Schema of the rich records."
        if any(f["format"] == SCHEMA_FORMAT for f in manifest["files"])
        else ""
    )
    header = [
        "---",
        f"pretty_name: {_yaml_string(release.name)}",
        f"license: {LICENSE}",
        "language:",
        "- en",
        "task_categories:",
        "- visual-question-answering",
        "- image-text-to-text",
        "tags:",
        "- natural-language-feedback",
        "- dress",
        "- vision-language",
        *_configs(listed, _released_criteria(manifest)),
        "---",
    ]
    rows = "\n".join(
        f"| `{f['path']}` | {f['format']} | {f['split'] or '-'} | {f['rows']:,} | `{f['sha256'][:16]}…` |"
        for f in manifest["files"]
    )
    per_criterion = "\n".join(
        f"| {criterion} | " + ", ".join(f"{d}: {n:,}" for d, n in decisions.items()) + " |"
        for criterion, decisions in counts["turns_per_criterion_and_decision"].items()
    )
    body = (
        f"""
# {release.name}

Natural-language feedback on the answers of vision-language models, from project **{project.name}**:
for each turn, a critique, a refinement (advice toward a better answer, the next user turn) and scores
on {", ".join(project.criteria)} ({project.score_min} to {project.score_max}): drafted by an LLM and
reviewed by people, or as the source dataset gave them ("imported" below).

- Release {release.pk}, built {manifest["release"]["built_at"]} by {manifest["release"]["created_by"] or "a script"}.
- Samples: {counts["samples"]:,}, turns: {counts["turns"]:,}; samples per split:
  {json.dumps(counts["samples_per_split"])}.
- Turns per decision: {json.dumps(counts["turns_per_decision"])}; of their drafts,
  {counts["drafts_simulated"]:,} came from the project's LLM simulator (a test double).
- Prompt versions (and hashes): {json.dumps(counts["prompt_versions"])}.
- Filters: `{json.dumps(manifest["filters"], ensure_ascii=False)}`.
- Split rule (by a hash of the image, so no image is in two splits): `{json.dumps(manifest["split"])}`.

## Turns per criterion and decision

| criterion | turns |
|---|---|
{per_criterion}

{card_section(manifest["quality"])}{_loading(listed, others)}## Files

| file | format | split | rows | sha256 |
|---|---|---|---|---|
{rows}

`manifest.json` lists every file with its full sha256, the rubric and the schema version
({manifest["schema_version"]}).{schema_note}

## Rubric

"""
        + "\n".join(f"- **{score}**: {text}" for score, text in sorted(project.level_descriptions.items()))
        + "\n"
    )
    return "\n".join(header) + "\n" + body
