from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from feedback.models import Job, Project

from .selection import STATUSES


class JobForm(forms.Form):
    kind = forms.ChoiceField(choices=Job.Kind.choices, initial=Job.Kind.DRAFT)
    criterion = forms.ChoiceField(required=False, help_text="Samples whose prompt probes this criterion.")
    status = forms.ChoiceField(choices=list(STATUSES.items()), initial="never")
    import_batch = forms.ChoiceField(required=False, label="Import")
    sample_ids = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="Sample ids, separated by spaces or commas."
    )
    limit = forms.IntegerField(required=False, min_value=1, help_text="At most this many turns (or samples).")
    rounds = forms.IntegerField(
        min_value=1, max_value=10, initial=1, help_text="Respond jobs: rounds of respond, critique and refine."
    )
    model = forms.CharField(required=False, help_text="Drafting model; empty: the project's, else the default.")
    endpoint = forms.URLField(
        required=False, assume_scheme="https", help_text="OpenAI-compatible base URL; empty: the default."
    )
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    structured = forms.ChoiceField(
        choices=[("json_schema", "JSON schema"), ("json_object", "JSON object"), ("none", "none")],
        initial="json_schema",
        label="Structured output",
    )
    send_image = forms.BooleanField(required=False, help_text="Send the image too, for vision models.")
    responder_model = forms.CharField(required=False, help_text="Respond jobs: the model under study.")
    responder_endpoint = forms.URLField(required=False, assume_scheme="https")
    budget = forms.DecimalField(
        required=False, min_value=0, decimal_places=4, help_text="US dollars; no call is made that could pass it."
    )

    def __init__(self, *args: Any, project: Project, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        criterion = self.fields["criterion"]
        batch = self.fields["import_batch"]
        assert isinstance(criterion, forms.ChoiceField) and isinstance(batch, forms.ChoiceField)
        criterion.choices = [("", "any")] + [(c, c) for c in project.criteria]
        batch.choices = [("", "any")] + [
            (str(b.pk), f"#{b.pk} {b.file_name}") for b in project.import_batches.order_by("-pk")[:200]
        ]
        self.fields["model"].widget.attrs["placeholder"] = project.llm_model or settings.LLM_MODEL
        self.fields["endpoint"].widget.attrs["placeholder"] = project.llm_endpoint or settings.LLM_BASE_URL
        self.fields["temperature"].widget.attrs["placeholder"] = project.llm_temperature
        self.fields["responder_model"].widget.attrs["placeholder"] = settings.RESPONDER_MODEL
        self.fields["responder_endpoint"].widget.attrs["placeholder"] = settings.RESPONDER_BASE_URL

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "kind": data["kind"],
            "selection": {
                "criterion": data["criterion"],
                "status": data["status"],
                "import_batch": data["import_batch"] or None,
                "sample_ids": data["sample_ids"],
                "limit": data["limit"],
            },
            "rounds": data["rounds"],
            "budget": data["budget"],
            "drafter": {
                "model": data["model"],
                "base_url": data["endpoint"],
                "temperature": data["temperature"],
                "structured": data["structured"],
                "send_image": data["send_image"],
            },
            "responder": {"model": data["responder_model"], "base_url": data["responder_endpoint"]},
        }
