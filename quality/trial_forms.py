"""The new-trial form: a set and up to ``ROWS`` variant rows; a row counts when it names a prompt version."""

from __future__ import annotations

from typing import Any

from django import forms

from feedback.drafting import connections, versions
from feedback.models import Project
from feedback.trials.models import TrialSet
from feedback.trials.service import MAX_SAMPLES, MAX_VARIANTS, NAME_MAX, SEED_MAX

ROWS = MAX_VARIANTS


class TrialForm(forms.Form):
    name = forms.CharField(required=False, max_length=NAME_MAX)
    set_kind = forms.ChoiceField(choices=TrialSet.choices, initial=TrialSet.REVIEWED, label="Trial set")
    samples = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=f"A list of samples: their ids, separated by spaces or commas (at most {MAX_SAMPLES}).",
    )
    n = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_SAMPLES, initial=50, help_text="Random or reviewed: how many."
    )
    seed = forms.IntegerField(required=False, min_value=0, max_value=SEED_MAX, initial=0)

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        names = versions.version_names(project)
        found = connections.registry()
        for row in range(ROWS):
            default = project.prompt_version if row < 2 else ""
            self.fields[f"v{row}_prompt_version"] = forms.ChoiceField(
                choices=[("", "(not used)")] + [(n, n) for n in names],
                required=False,
                initial=default,
                label=f"Variant {chr(ord('A') + row)}: prompt version",
            )
            self.fields[f"v{row}_connection"] = forms.ChoiceField(
                choices=[("", f"({project.llm_connection or 'default'})")] + [(n, n) for n in sorted(found)],
                required=False,
                label="connection",
            )
            self.fields[f"v{row}_model"] = forms.CharField(required=False, max_length=200, label="model")
            self.fields[f"v{row}_temperature"] = forms.FloatField(
                required=False, min_value=0, max_value=2, label="temperature"
            )
            self.fields[f"v{row}_send_image"] = forms.BooleanField(required=False, label="image")

    def rows(self) -> list[list[forms.BoundField]]:
        names = ("prompt_version", "connection", "model", "temperature", "send_image")
        return [[self[f"v{row}_{name}"] for name in names] for row in range(ROWS)]

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        variants = []
        for row in range(ROWS):
            if not data[f"v{row}_prompt_version"]:
                continue
            variant: dict[str, Any] = {"prompt_version": data[f"v{row}_prompt_version"]}
            for name in ("connection", "model", "temperature"):
                if data[f"v{row}_{name}"] not in ("", None):
                    variant[name] = data[f"v{row}_{name}"]
            variant["send_image"] = data[f"v{row}_send_image"]
            variants.append(variant)
        chosen = {"kind": data["set_kind"], "seed": data["seed"]}
        if data["set_kind"] == TrialSet.SAMPLES:
            chosen["samples"] = data["samples"]
        else:
            chosen["n"] = data["n"]
        return {"name": data["name"], "set": chosen, "variants": variants}
