"""The dataset card of a release: a README.md with the YAML header that dataset hubs read."""

from __future__ import annotations

import json

from .models import Release

LICENSE = "other"


def _yaml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def _configs(manifest: dict) -> list[str]:
    """One hub config per data file name, with its splits: e.g. dress_helpfulness_nlf."""
    configs: dict[str, list[tuple[str, str]]] = {}
    for f in manifest["files"]:
        if f["format"] in ("card", "manifest", "images") or not f["path"].endswith((".jsonl", ".json", ".parquet")):
            continue
        base = f["path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]
        name = f"{f['format']}_{base}" if not base.startswith(f["format"]) else base
        configs.setdefault(name, []).append((f["split"] or "train", f["path"]))
    lines = ["configs:"]
    for name, files in configs.items():
        lines.append(f"- config_name: {name}")
        lines.append("  data_files:")
        for split, path in files:
            lines.append(f"  - split: {split}")
            lines.append(f"    path: {_yaml_string(path)}")
    return lines if configs else []


def card_text(release: Release, manifest: dict) -> str:
    project = release.project
    counts = manifest["counts"]
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
        *_configs(manifest),
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

## Files

| file | format | split | rows | sha256 |
|---|---|---|---|---|
{rows}

`manifest.json` lists every file with its full sha256, the rubric and the schema version
({manifest["schema_version"]}).

## Rubric

"""
        + "\n".join(f"- **{score}**: {text}" for score, text in sorted(project.level_descriptions.items()))
        + "\n"
    )
    return "\n".join(header) + "\n" + body
