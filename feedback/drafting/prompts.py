"""Versioned prompt templates and the messages built from them.

A template never changes once drafts used it: a new wording is a new version. Each draft
records the version and the template's hash, so a release can say which prompt made it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from PIL import Image as PILImage

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

TEMPLATES: dict[str, PromptTemplate] = {FEEDBACK_V1.version: FEEDBACK_V1}

RESPONDER_SYSTEM = "You are a helpful assistant that answers questions about the image the user shows you."


def template_for(version: str) -> PromptTemplate:
    try:
        return TEMPLATES[version]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise InvalidInput("prompt_version", f"{version!r} is unknown; known: {known}") from None


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
    criteria = list(project.criteria)
    focus = (
        f"This prompt probes {sample.target_criterion}; weigh it most."
        if sample.target_criterion
        else "All criteria weigh equally."
    )
    user = template.user.format(
        criteria=", ".join(criteria),
        low=project.score_min,
        high=project.score_max,
        levels=levels_text(project),
        guidelines=project.guidelines.strip() or "(none)",
        focus=focus,
        annotations=annotations_text(sample.image),
        history=history_text(previous),
        question=turn.user_message,
        response=turn.model_response or "",
        reference=sample.reference_answer.strip() or "(none given)",
        schema=_schema_text(json.dumps(schema, sort_keys=True)),
    )
    return [{"role": "system", "content": template.system}, {"role": "user", "content": _with_image(user, image_url)}]


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
