"""What the prompt pages, the API and the command show: the versions with their use, one version,
the word diff of two, and the prompt a template renders for a sample (no LLM call)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from feedback.drafting.models import Draft, PromptVersion
from feedback.drafting.prompts import PLACEHOLDERS, PromptTemplate, check_template, feedback_messages
from feedback.drafting.schema import feedback_schema
from feedback.drafting.versions import TEXT_MAX, versions_of
from feedback.errors import InvalidInput
from feedback.models import Project, Sample, Turn
from feedback.review.diff import Segments, word_diff

# Samples offered for the preview on the page (the API takes any sample id of the project).
PREVIEW_SAMPLES = 50


@dataclass(frozen=True)
class VersionRow:
    version: PromptVersion
    drafts: int
    is_default: bool

    @property
    def locked(self) -> bool:
        return self.version.locked_at is not None or self.drafts > 0 or self.version.number == 1


def version_rows(project: Project) -> list[VersionRow]:
    """Every version with the drafts it made: two queries, whatever the number of versions."""
    versions = list(versions_of(project))
    used = {
        (row["prompt_version"], row["prompt_hash"]): row["n"]
        for row in Draft.objects.filter(turn__sample__project=project)
        .values("prompt_version", "prompt_hash")
        .annotate(n=Count("id"))
        .order_by()
    }
    return [VersionRow(v, used.get((v.name, v.sha256), 0), v.name == project.prompt_version) for v in versions]


def row_of(project: Project, version: PromptVersion) -> VersionRow:
    drafts = Draft.objects.filter(
        turn__sample__project=project, prompt_version=version.name, prompt_hash=version.sha256
    ).count()
    return VersionRow(version, drafts, version.name == project.prompt_version)


@dataclass(frozen=True)
class VersionDiff:
    old: PromptVersion
    new: PromptVersion
    system: Segments
    user: Segments

    @property
    def same(self) -> bool:
        return all(op == "same" for op, _ in [*self.system, *self.user])


def version_diff(old: PromptVersion, new: PromptVersion) -> VersionDiff:
    return VersionDiff(old, new, word_diff(old.system, new.system), word_diff(old.user, new.user))


def preview_samples(project: Project) -> list[Sample]:
    """The first samples with a turn to review, for the preview's choice."""
    return list(
        Sample.objects.filter(project=project, turns__model_response__isnull=False)
        .distinct()
        .order_by("id")
        .only("id", "external_id")[:PREVIEW_SAMPLES]
    )


def _sample(project: Project, sample_id: Any) -> Sample:
    if sample_id in (None, ""):
        first = preview_samples(project)[:1]
        if not first:
            raise InvalidInput("sample", "the project has no sample with a response to review yet")
        sample_id = first[0].pk
    text = str(sample_id).strip()
    if isinstance(sample_id, bool) or not text.isdigit() or len(text) > 18:
        raise InvalidInput("sample", "a sample id")
    sample = Sample.objects.filter(project=project, pk=int(text)).select_related("image").first()
    if sample is None:
        raise InvalidInput("sample", f"no sample {text} in this project")
    return sample


@dataclass(frozen=True)
class Preview:
    sample: Sample
    turn: Turn
    system: str
    user: str


def preview(*, project: Project, system: Any, user: Any, sample_id: Any = None) -> Preview:
    """The messages ``system`` and ``user`` make for a sample's first turn with a response, as a
    draft job would send them (the image aside); InvalidInput naming the field otherwise."""
    errors: dict[str, list[str]] = {}
    for field, value in (("system", system), ("user", user)):
        if not isinstance(value, str):
            errors[field] = ["must be text"]
        elif len(value) > TEXT_MAX:
            errors[field] = [f"at most {TEXT_MAX:,} characters (got {len(value):,})"]
    if errors:
        raise InvalidInput.of(errors)
    check_template(system=system, user=user)
    sample = _sample(project, sample_id)
    turns = list(sample.turns.order_by("index"))
    turn = next((t for t in turns if t.model_response is not None), None)
    if turn is None:
        raise InvalidInput("sample", f"sample {sample.external_id[:100]} has no turn with a response to review")
    messages = feedback_messages(
        template=PromptTemplate(version="preview", system=system, user=user),
        project=project,
        sample=sample,
        turn=turn,
        previous=[t for t in turns if t.index < turn.index],
        schema=feedback_schema(list(project.criteria), project.score_min, project.score_max),
    )
    return Preview(sample, turn, messages[0]["content"], messages[1]["content"])


def placeholders() -> list[tuple[str, str]]:
    return [("{" + name + "}", what) for name, what in PLACEHOLDERS.items()]
