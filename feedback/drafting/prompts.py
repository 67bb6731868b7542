"""Versioned prompt templates and the messages built from them.

A project's templates are rows (``PromptVersion``, managed by ``feedback.drafting.versions``); the
shipped ``FEEDBACK_V1`` is version 1 of every project. A template never changes once drafts used
it: a new wording is a new version. Each draft records the version's name and the template's hash,
so a release can say which prompt made it.

Templates hold named placeholders (``{question}``); ``{{`` and ``}}`` are literal braces. They are
filled by plain substitution, never by ``str.format``: no attribute, index or format spec is read.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import string
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image as PILImage

from feedback.drafting.models import PromptVersion
from feedback.errors import InvalidInput

if TYPE_CHECKING:
    from feedback.models import Image, Project, Sample, Turn

# Images above either bound are downscaled before they are sent to a vision model.
IMAGE_MAX_SIDE = 1024
IMAGE_MAX_BYTES = 1_500_000


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    system: str
    user: str

    @cached_property
    def hash(self) -> str:
        return hashlib.sha256(f"{self.version}\x1f{self.system}\x1f{self.user}".encode()).hexdigest()


FEEDBACK_V1 = PromptTemplate(
    version="v1",
    system=(
        "You are an expert reviewer of vision-language models. You read dense annotations of an image "
        "and judge a model's answer about it. Your feedback is precise, grounded in the annotations, "
        "and constructive. You answer with JSON only."
    ),
    user="""Review the response under review.

## Rubric
Criteria: {criteria}. Score each on the integer scale {low} to {high}.
{levels}

## Guidelines
{guidelines}

## Focus
{focus}

## Image annotations
{annotations}

## Conversation so far
{history}

## Question
{question}

## Response under review
{response}

## Reference answer
{reference}

## Task
Write a critique: the strengths and the weaknesses of the response for each criterion, checked
against the annotations and the reference answer. Score every criterion, and give an overall rating.
Then write a refinement: concrete advice the user could give the model, as their next message, to
bring its answer closer to the reference answer.
Answer with one JSON object that follows this schema:
{schema}""",
)

# The shipped templates, by name: version 1 of every project is FEEDBACK_V1.
SHIPPED: dict[str, PromptTemplate] = {FEEDBACK_V1.version: FEEDBACK_V1}

RESPONDER_SYSTEM = "You are a helpful assistant that answers questions about the image the user shows you."

# Every placeholder a template may hold, with what it becomes.
PLACEHOLDERS: dict[str, str] = {
    "criteria": "the rubric's criteria, comma-separated",
    "low": "the lowest score of the scale",
    "high": "the highest score of the scale",
    "levels": "the description of each score level, one per line",
    "guidelines": "the project's guidelines",
    "focus": "which criterion the sample probes, or that all weigh equally",
    "annotations": "the image's annotations as text (captions, objects with boxes, regions)",
    "history": "the conversation before the turn under review",
    "question": "the user's message of the turn under review",
    "response": "the model's response under review",
    "reference": "the reference answer",
    "schema": "the JSON schema the answer must follow",
}
# The user text must hold these: without them the model would judge nothing or answer in no known shape.
REQUIRED_USER = ("question", "response", "schema")
# A placeholder may be repeated, up to this many times (a long guideline repeated is a huge prompt).
PLACEHOLDER_REPEAT_MAX = 3


def placeholders_in(field: str, text: str) -> list[str]:
    """The placeholders of ``text`` in order, or InvalidInput naming ``field`` and each bad one."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise InvalidInput(field, f"{exc}; write {{{{ and }}}} for literal braces") from None
    names: list[str] = []
    bad: list[str] = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if spec or conversion or name not in PLACEHOLDERS:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            bad.append(shown[:60])
        else:
            names.append(name)
    if bad:
        raise InvalidInput(
            field,
            f"unknown placeholder{'s' if len(bad) > 1 else ''} {', '.join(sorted(set(bad)))}; "
            f"known: {', '.join('{' + n + '}' for n in PLACEHOLDERS)} (write {{{{ and }}}} for literal braces)",
        )
    repeated = sorted(n for n in set(names) if names.count(n) > PLACEHOLDER_REPEAT_MAX)
    if repeated:
        raise InvalidInput(
            field, f"{', '.join('{' + n + '}' for n in repeated)} more than {PLACEHOLDER_REPEAT_MAX} times"
        )
    return names


def check_template(*, system: str, user: str) -> None:
    """Refuses unknown placeholders in either text and a user text without the required ones,
    naming the field (``system``, ``user``) and the placeholders."""
    errors: dict[str, list[str]] = {}
    for field, text in (("system", system), ("user", user)):
        try:
            names = placeholders_in(field, text)
        except InvalidInput as exc:
            errors[field] = exc.errors[field]
            continue
        if field == "user":
            missing = [n for n in REQUIRED_USER if n not in names]
            if missing:
                errors[field] = [
                    f"missing required placeholder{'s' if len(missing) > 1 else ''} "
                    + ", ".join("{" + n + "}" for n in missing)
                ]
    if errors:
        raise InvalidInput.of(errors)


def render(text: str, values: dict[str, Any]) -> str:
    """``text`` with each placeholder replaced by its value (checked templates only)."""
    out = []
    for literal, name, _, _ in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(str(values[name]))
    return "".join(out)


# Versions by (project, its creation time, name): only locked versions, which never change, are kept,
# so the cache cannot go stale. The creation time tells apart a project whose id was reused.
_CACHE_SIZE = 256
_cache: OrderedDict[tuple[int, Any, str], PromptTemplate] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _as_template(version: PromptVersion) -> PromptTemplate:
    return PromptTemplate(version=version.name, system=version.system, user=version.user)


def template_for(project: Project, version: str, *, lock: bool = False) -> PromptTemplate:
    """The project's prompt version named ``version``. ``lock``: it is about to draft, so its text
    is frozen from now on (``locked_at``); the drafting path asks with ``lock``."""
    key = (project.pk, project.created_at, version)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    if not isinstance(version, str) or not version or len(version) > 50:
        raise InvalidInput("prompt_version", "a version name of at most 50 characters")
    row = PromptVersion.objects.filter(project=project, name=version).first()
    if row is None and version in SHIPPED:
        row = ensure_shipped(project)
    if row is None:
        known = ", ".join(PromptVersion.objects.filter(project=project).values_list("name", flat=True)[:20])
        raise InvalidInput("prompt_version", f"{version[:50]!r} is unknown; known: {known or 'v1'}")
    if lock and row.locked_at is None:
        PromptVersion.objects.filter(pk=row.pk, locked_at__isnull=True).update(locked_at=timezone.now())
        row = PromptVersion.objects.get(pk=row.pk)  # the text as it stands now that it is locked
    template = _as_template(row)
    if row.locked_at is not None:
        with _cache_lock:
            _cache[key] = template
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return template


def ensure_shipped(project: Project) -> PromptVersion:
    """Version 1 of ``project``, the shipped v1, made when missing (a project made before prompt
    versions, or by a path that made none); locked, since it is shipped text."""
    shipped = FEEDBACK_V1
    existing = PromptVersion.objects.filter(project=project, number=1).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return PromptVersion.objects.create(
                project=project,
                number=1,
                name=shipped.version,
                system=shipped.system,
                user=shipped.user,
                sha256=shipped.hash,
                note="The shipped prompt.",
                locked_at=timezone.now(),
            )
    except IntegrityError:  # made meanwhile by another request
        return PromptVersion.objects.get(project=project, number=1)


def _box(bbox: Any) -> str:
    if isinstance(bbox, list) and len(bbox) == 4:
        return " [" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in bbox) + "]"
    return ""


def annotations_text(image: Image | None) -> str:
    """The image's dense annotations as the text a language model reads in place of the pixels."""
    if image is None:
        return "(no image registered)"
    lines = []
    if image.width and image.height:
        lines.append(f"- Size: {image.width} x {image.height} pixels; boxes are [x, y, width, height]")
    lines += [f"- Caption: {caption}" for caption in image.captions]
    for obj in image.object_boxes:
        lines.append(f"- Object: {obj.get('label', '?')}{_box(obj.get('bbox'))}")
    for region in image.regions:
        lines.append(f"- Region: {region.get('description', '')}{_box(region.get('bbox'))}")
    if image.notes:
        lines.append(f"- Note: {image.notes}")
    return "\n".join(lines) if lines else "(none)"


def history_text(previous: list[Turn]) -> str:
    if not previous:
        return "(this is the first turn)"
    parts = []
    for turn in previous:
        parts.append(f"User: {turn.user_message}")
        parts.append(f"Model: {turn.model_response or '(no response)'}")
    return "\n".join(parts)


def levels_text(project: Project) -> str:
    levels = project.level_descriptions or {}
    return "\n".join(f"- {score}: {levels[str(score)]}" for score in project.score_range if str(score) in levels)


def image_data_url(image: Image | None) -> str | None:
    """The image as a data URL for a vision model, downscaled when large; None when there is no file."""
    if image is None or image.is_missing:
        return None
    with image.file.open("rb") as handle:
        data = handle.read()
    mime = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}.get(image.format)
    too_big = max(image.width or 0, image.height or 0) > IMAGE_MAX_SIDE or len(data) > IMAGE_MAX_BYTES
    if mime is None or too_big:
        with PILImage.open(io.BytesIO(data)) as picture:
            picture = picture.convert("RGB")
            picture.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
            out = io.BytesIO()
            picture.save(out, format="JPEG", quality=85)
        data, mime = out.getvalue(), "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _with_image(text: str, data_url: str | None) -> str | list[dict[str, Any]]:
    if data_url is None:
        return text
    return [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": data_url}}]


def feedback_messages(
    *,
    template: PromptTemplate,
    project: Project,
    sample: Sample,
    turn: Turn,
    previous: list[Turn],
    schema: dict[str, Any],
    image_url: str | None = None,
) -> list[dict[str, Any]]:
    values = placeholder_values(project=project, sample=sample, turn=turn, previous=previous, schema=schema)
    user = render(template.user, values)
    system = render(template.system, values)
    return [{"role": "system", "content": system}, {"role": "user", "content": _with_image(user, image_url)}]


def placeholder_values(
    *, project: Project, sample: Sample, turn: Turn, previous: list[Turn], schema: dict[str, Any]
) -> dict[str, Any]:
    """What each placeholder stands for, for one turn."""
    criteria = list(project.criteria)
    focus = (
        f"This prompt probes {sample.target_criterion}; weigh it most."
        if sample.target_criterion
        else "All criteria weigh equally."
    )
    return {
        "criteria": ", ".join(criteria),
        "low": project.score_min,
        "high": project.score_max,
        "levels": levels_text(project),
        "guidelines": project.guidelines.strip() or "(none)",
        "focus": focus,
        "annotations": annotations_text(sample.image),
        "history": history_text(previous),
        "question": turn.user_message,
        "response": turn.model_response or "",
        "reference": sample.reference_answer.strip() or "(none given)",
        "schema": _schema_text(json.dumps(schema, sort_keys=True)),
    }


@lru_cache(maxsize=64)
def _schema_text(canonical: str) -> str:
    return json.dumps(json.loads(canonical), indent=1)


def response_messages(*, previous: list[Turn], turn: Turn, image_url: str | None) -> list[dict[str, Any]]:
    """The conversation as the model under study sees it: the image with the first question."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": RESPONDER_SYSTEM}]
    for i, earlier in enumerate(previous):
        messages.append({"role": "user", "content": _with_image(earlier.user_message, image_url if i == 0 else None)})
        messages.append({"role": "assistant", "content": earlier.model_response or ""})
    messages.append({"role": "user", "content": _with_image(turn.user_message, None if previous else image_url)})
    return messages


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A generous estimate of the prompt's tokens (three characters a token, a thousand an image),
    for the rate limit and the budget, which must not be undercounted."""
    chars, images = 0, 0
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            chars += len(content)
            continue
        for part in content:
            if part.get("type") == "text":
                chars += len(part["text"])
            else:
                images += 1
    return chars // 3 + 1 + 1000 * images + 10 * len(messages)
