"""The new-release form: it only shapes the input; the service validates it and names the field
that is wrong, and the form shows that error beside the field."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from feedback.errors import NON_FIELD, InvalidInput
from feedback.models import Project
from feedback.review.models import Decision

from .filters import DEFAULT_DECISIONS
from .formats import FORMATS

# The service adds image files itself when asked to include images; no checkbox of its own.
IMAGE_FORMAT = "images"
SERVICE_FIELD_LABELS = {"score_ranges": "Score ranges", "split": "Split", "filters": "Filters", "quota": "Quota"}


def names_in(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text or "") if part]


def format_choices() -> list[tuple[str, str]]:
    return [(name, fmt.label) for name, fmt in FORMATS.items() if name != IMAGE_FORMAT]


class ReleaseForm(forms.Form):
    name = forms.CharField(required=False, max_length=200, help_text="Empty: the project's name and “release”.")
    formats = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=())
    decisions = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        choices=Decision.choices,
        initial=DEFAULT_DECISIONS,
        help_text="Turns whose final review made one of these decisions.",
    )
    include_imported = forms.BooleanField(
        required=False,
        initial=True,
        label="Include imported feedback",
        help_text="Feedback that came with the data, on turns nobody reviewed.",
    )
    criteria = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, choices=(), required=False, help_text="None checked: every criterion."
    )
    reviewers = forms.CharField(required=False, help_text="User names, separated by spaces or commas; empty: anyone.")
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Reviewed from")
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Reviewed until")
    prompt_versions = forms.CharField(
        required=False, help_text="Prompt versions of the drafts the feedback started from; empty: any."
    )
    include_simulated = forms.BooleanField(
        required=False,
        initial=True,
        label="Include simulated drafts",
        help_text="Feedback that started from the simulator's drafts.",
    )
    train = forms.FloatField(min_value=0, max_value=1, initial=1.0)
    validation = forms.FloatField(min_value=0, max_value=1, initial=0.0)
    test = forms.FloatField(min_value=0, max_value=1, initial=0.0)
    seed = forms.CharField(
        required=False, max_length=100, help_text="Splits are by a hash of the image and this seed: stable across runs."
    )
    include_images = forms.BooleanField(required=False, help_text="Copy the image files into the release.")

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        formats = self.fields["formats"]
        criteria = self.fields["criteria"]
        assert isinstance(formats, forms.MultipleChoiceField) and isinstance(criteria, forms.MultipleChoiceField)
        formats.choices = format_choices()
        formats.initial = [name for name, _ in formats.choices][:1]
        criteria.choices = [(c, c) for c in project.criteria]
        self.score_fields: list[tuple[str, str, str]] = []
        for i, criterion in enumerate(project.criteria):
            low, high = f"score_low_{i}", f"score_high_{i}"
            for key, label in ((low, "lowest"), (high, "highest")):
                self.fields[key] = forms.IntegerField(
                    required=False,
                    min_value=project.score_min,
                    max_value=project.score_max,
                    label=f"{criterion}: {label} score",
                    widget=forms.NumberInput(
                        attrs={"placeholder": project.score_min if key == low else project.score_max}
                    ),
                )
            self.score_fields.append((criterion, low, high))

    def filter_fields(self) -> list[forms.BoundField]:
        names = ["decisions", "include_imported", "criteria", "reviewers", "date_from", "date_to"]
        return [self[n] for n in [*names, "prompt_versions", "include_simulated"]]

    def score_rows(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [(criterion, self[low], self[high]) for criterion, low, high in self.score_fields]

    def split_fields(self) -> list[forms.BoundField]:
        return [self[n] for n in ("train", "validation", "test", "seed")]

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        ranges = {}
        for criterion, low, high in self.score_fields:
            if data.get(low) is not None or data.get(high) is not None:
                ranges[criterion] = [
                    self.project.score_min if data.get(low) is None else data[low],
                    self.project.score_max if data.get(high) is None else data[high],
                ]
        return {
            "name": data["name"],
            "formats": data["formats"],
            "filters": {
                "decisions": data["decisions"],
                "include_imported": data["include_imported"],
                "criteria": [c for c in self.project.criteria if c in data["criteria"]],
                "score_ranges": ranges,
                "reviewers": names_in(data["reviewers"]),
                "date_from": data["date_from"].isoformat() if data["date_from"] else "",
                "date_to": data["date_to"].isoformat() if data["date_to"] else "",
                "prompt_versions": names_in(data["prompt_versions"]),
                "include_simulated": data["include_simulated"],
            },
            "split": {
                "train": data["train"],
                "validation": data["validation"],
                "test": data["test"],
                "seed": data["seed"],
            },
            "include_images": data["include_images"],
        }

    def add_service_error(self, error: InvalidInput) -> None:
        """The service's errors beside the fields they name (``filters.decisions`` beside
        ``decisions``); the rest above the form, named."""
        for name, messages in error.errors.items():
            field = name.removeprefix("filters.")
            if name == NON_FIELD:
                self.add_error(None, messages)
            elif field in self.fields:
                self.add_error(field, messages)
            else:
                label = SERVICE_FIELD_LABELS.get(field, field)
                self.add_error(None, [f"{label}: {m}" for m in messages])
