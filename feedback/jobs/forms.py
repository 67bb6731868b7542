from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from feedback.drafting import connections, versions
from feedback.jobs.models import Job
from feedback.models import Project

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
    mode = forms.ChoiceField(
        choices=Job.Mode.choices,
        initial=Job.Mode.LIVE,
        required=False,
        help_text="Batch: through the provider's Batch API (files, then results within a day), at the batch price.",
    )
    rounds = forms.IntegerField(
        min_value=1, max_value=10, initial=1, help_text="Respond jobs: rounds of respond, critique and refine."
    )
    connection = forms.ChoiceField(required=False, help_text="Where the drafting model is; empty: the project's.")
    model = forms.CharField(
        required=False, max_length=200, help_text="Drafting model; empty: the project's, else the connection's."
    )
    endpoint = forms.CharField(
        required=False,
        max_length=500,
        label="Other URL",
        help_text="Superusers only: an OpenAI-compatible base URL of no connection, called without any key.",
    )
    prompt_version = forms.ChoiceField(required=False, help_text="Empty: the project's default version.")
    temperature = forms.FloatField(required=False, min_value=0, max_value=2)
    structured = forms.ChoiceField(
        choices=[
            ("", "(the connection's)"),
            ("json_schema", "JSON schema"),
            ("json_object", "JSON object"),
            ("none", "none"),
        ],
        required=False,
        label="Structured output",
        help_text="Empty: the connection's mode (JSON schema unless it states another).",
    )
    send_image = forms.BooleanField(required=False, help_text="Send the image too, for vision models.")
    responder_connection = forms.ChoiceField(required=False, help_text="Respond jobs: where the model under study is.")
    responder_model = forms.CharField(required=False, max_length=200, help_text="Respond jobs: the model under study.")
    responder_endpoint = forms.CharField(required=False, max_length=500, label="Responder other URL")
    budget = forms.DecimalField(
        required=False, min_value=0, decimal_places=4, help_text="US dollars; no call is made that could pass it."
    )

    def __init__(self, *args: Any, project: Project, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        found = connections.registry()
        choices = [("", "")] + [(name, _label(found[name])) for name in sorted(found)]
        defaults = (("connection", project.llm_connection or "default"), ("responder_connection", "responder"))
        for name, default in defaults:
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", f"({default})"), *choices[1:]]
        if not getattr(user, "is_superuser", False):  # free-form URLs are for superusers only
            del self.fields["endpoint"], self.fields["responder_endpoint"]
        criterion = self.fields["criterion"]
        batch = self.fields["import_batch"]
        assert isinstance(criterion, forms.ChoiceField) and isinstance(batch, forms.ChoiceField)
        criterion.choices = [("", "any")] + [(c, c) for c in project.criteria]
        batch.choices = [("", "any")] + [
            (str(b.pk), f"#{b.pk} {b.file_name}") for b in project.import_batches.order_by("-pk")[:200]
        ]
        version = self.fields["prompt_version"]
        assert isinstance(version, forms.ChoiceField)
        version.choices = [("", f"({project.prompt_version})")] + [(n, n) for n in versions.version_names(project)]
        project_connection = found.get(project.llm_connection or "default")
        self.fields["model"].widget.attrs["placeholder"] = project.llm_model or (
            project_connection.default_model if project_connection else settings.LLM_MODEL
        )
        self.fields["temperature"].widget.attrs["placeholder"] = project.llm_temperature
        self.fields["responder_model"].widget.attrs["placeholder"] = (
            found["responder"].default_model if "responder" in found else settings.RESPONDER_MODEL
        )

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
            "mode": data["mode"] or Job.Mode.LIVE,
            "budget": data["budget"],
            "drafter": {
                "connection": data["connection"],
                "model": data["model"],
                "base_url": data.get("endpoint", ""),
                "prompt_version": data["prompt_version"],
                "temperature": data["temperature"],
                "structured": data["structured"],
                "send_image": data["send_image"],
            },
            "responder": {
                "connection": data["responder_connection"],
                "model": data["responder_model"],
                "base_url": data.get("responder_endpoint", ""),
            },
        }


def _label(conn: connections.Connection) -> str:
    models = f": {', '.join(conn.models[:5])}{'…' if len(conn.models) > 5 else ''}" if conn.models else ""
    return f"{conn.name}{models}"
