"""The project and member forms of the pages. They parse what people type (criteria one per line,
level descriptions as ``score: text``) into the service's values; the service checks the bounds
again, so its errors land on the same field names."""

from __future__ import annotations

from typing import Any

from django import forms

from feedback.drafting import connections
from feedback.drafting import versions as prompt_versions
from feedback.models import Project, ReviewOrder, Role

from . import service

CRITERIA_TEXT_MAX = service.CRITERIA_MAX * (service.CRITERION_MAX + 2)
LEVELS_TEXT_MAX = (service.SCORE_BOUNDS[1] + 1) * (service.LEVEL_DESCRIPTION_MAX + 8)


def criteria_text(criteria: list[str]) -> str:
    return "\n".join(criteria)


def levels_text(levels: dict[str, str]) -> str:
    return "\n".join(f"{score}: {text}" for score, text in levels.items())


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=service.NAME_MAX)
    slug = forms.CharField(
        max_length=service.SLUG_MAX, help_text="In the project's addresses: letters, digits, - and _."
    )
    description = forms.CharField(
        required=False, max_length=service.DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )
    from_project = forms.ChoiceField(
        required=False, label="Settings from", help_text="Copy the rubric, guidelines, LLM and queue settings."
    )

    def __init__(self, *args: Any, projects: list[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["from_project"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "(the defaults)")] + [(p.slug, p.name) for p in projects]


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=service.NAME_MAX)
    description = forms.CharField(
        required=False, max_length=service.DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 2})
    )
    guidelines = forms.CharField(
        required=False,
        strip=False,
        max_length=service.GUIDELINES_MAX,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Markdown, shown to reviewers. Preview shows it as they will see it.",
    )
    criteria = forms.CharField(
        max_length=CRITERIA_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=f"One per line, in order (at most {service.CRITERIA_MAX}). A criterion in use can't be removed.",
    )
    score_min = forms.IntegerField(min_value=service.SCORE_BOUNDS[0], max_value=service.SCORE_BOUNDS[1])
    score_max = forms.IntegerField(min_value=service.SCORE_BOUNDS[0], max_value=service.SCORE_BOUNDS[1])
    level_descriptions = forms.CharField(
        required=False,
        max_length=LEVELS_TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 7}),
        help_text="One line per score: '3: Falls short in important ways.'",
    )
    llm_connection = forms.ChoiceField(required=False, label="LLM connection")
    llm_model = forms.CharField(required=False, max_length=service.MODEL_MAX, label="LLM model")
    llm_temperature = forms.FloatField(min_value=0, max_value=2, label="Temperature")
    prompt_version = forms.ChoiceField(label="Default prompt version")
    review_order = forms.ChoiceField(choices=ReviewOrder.choices)
    review_criterion = forms.CharField(
        required=False, max_length=service.CRITERION_MAX, help_text="For the 'one criterion first' order."
    )
    review_seed = forms.IntegerField(min_value=service.SEED_BOUNDS[0], max_value=service.SEED_BOUNDS[1])
    reviews_required = forms.IntegerField(
        min_value=service.REVIEWS_REQUIRED_BOUNDS[0],
        max_value=service.REVIEWS_REQUIRED_BOUNDS[1],
        label="Reviews per sample",
    )
    review_lease_seconds = forms.IntegerField(
        required=False,
        min_value=service.LEASE_BOUNDS[0],
        max_value=service.LEASE_BOUNDS[1],
        label="Lease time (s)",
        help_text="How long a claimed sample stays with its reviewer; empty: the platform's setting.",
    )
    adjudication_threshold = forms.IntegerField(
        min_value=service.ADJUDICATION_THRESHOLD_BOUNDS[0],
        max_value=service.ADJUDICATION_THRESHOLD_BOUNDS[1],
        label="Adjudication threshold",
        help_text="With several reviews per sample: scores of one criterion this far apart go to adjudication.",
    )
    gold_every = forms.IntegerField(
        min_value=service.GOLD_EVERY_BOUNDS[0],
        max_value=service.GOLD_EVERY_BOUNDS[1],
        label="Gold checks: one claim in",
        help_text="An annotator gets a gold sample (a hidden check of their accuracy) about once in this many "
        "claims; 0: never.",
    )

    def __init__(self, data: Any = None, *, project: Project, read_only: bool = False) -> None:
        initial = {**service.settings_of(project)}
        initial["criteria"] = criteria_text(project.criteria)
        initial["level_descriptions"] = levels_text(project.level_descriptions or {})
        super().__init__(data, initial=initial)
        connection = self.fields["llm_connection"]
        version = self.fields["prompt_version"]
        assert isinstance(connection, forms.ChoiceField) and isinstance(version, forms.ChoiceField)
        connection.choices = [("", "(default)")] + [(name, name) for name in connections.names()]
        version.choices = [(name, name) for name in prompt_versions.version_names(project)]
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def clean_criteria(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["criteria"].splitlines() if line.strip()]

    def clean_level_descriptions(self) -> dict[str, str]:
        levels: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["level_descriptions"].splitlines(), start=1):
            if not line.strip():
                continue
            score, colon, text = line.partition(":")
            if not colon or not score.strip().lstrip("-").isdigit():
                raise forms.ValidationError(f"line {number}: write 'score: description'")
            levels[str(int(score))] = text.strip()
        return levels

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in service.SETTINGS_FIELDS}


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=service.USERNAME_MAX)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)
    create = forms.BooleanField(
        required=False, label="Create the user", help_text="Superusers: a new login with a one-time password."
    )

    def __init__(self, *args: Any, can_create: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_create:
            del self.fields["create"]


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


def add_service_errors(form: forms.Form, errors: dict[str, list[str]]) -> None:
    """A service's field errors on the form's fields of the same names (else on the form)."""
    for field, messages in errors.items():
        form.add_error(field if field in form.fields else None, messages)
