"""The form of a new prompt version (its text, note, name, and the sample its preview renders)."""

from __future__ import annotations

from typing import Any

from django import forms

from feedback.drafting import versions
from feedback.models import Project

from . import selectors


class VersionForm(forms.Form):
    name = forms.CharField(
        required=False, max_length=versions.NAME_MAX, help_text="Empty: v and its number (v2, v3, …)."
    )
    note = forms.CharField(
        required=False,
        max_length=versions.NOTE_MAX,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What changed, and why.",
    )
    system = forms.CharField(
        max_length=versions.TEXT_MAX, strip=False, widget=forms.Textarea(attrs={"rows": 5}), label="System text"
    )
    user = forms.CharField(
        max_length=versions.TEXT_MAX, strip=False, widget=forms.Textarea(attrs={"rows": 24}), label="User text"
    )
    sample = forms.ChoiceField(required=False, label="Preview on sample")

    def __init__(self, data: Any = None, *, project: Project, initial: dict[str, Any] | None = None) -> None:
        super().__init__(data, initial=initial)
        sample = self.fields["sample"]
        assert isinstance(sample, forms.ChoiceField)
        sample.choices = [(str(s.pk), f"{s.external_id[:80]} (#{s.pk})") for s in selectors.preview_samples(project)]
