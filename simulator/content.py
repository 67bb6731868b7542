"""Deterministic, plausible answers for the simulator.

Everything here is a pure function of the request (model, messages, response_format), so a test
can ask the same thing twice and get the same text, and a retry of a faulted request gets back
exactly what a clean request would have received. The text is built from what the platform's
prompt says about the image, so drafts in the demo read like critiques of that sample.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

IMAGE_PART_TOKENS = 85
MAX_SCHEMA_DEPTH = 12

_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_ANNOTATION = re.compile(
    r"^[ \t]*(?:[-*\u2022][ \t]*)?(caption|object|region)(s?)(?:[ \t]*\([^)\n]*\))?[ \t]*:[ \t]*(.+?)[ \t]*$",
    re.I | re.M,
)
_TRAILING_BOX = re.compile(r"[ \t]*[\[(][^\[\]()]*\d[^\[\]()]*[\])][ \t]*$")
_TRAILING_BOX_WORD = re.compile(r"[ \t,]+(?:at|in|bbox|box)[ \t]*[:=]?[ \t]*$", re.I)
_SPEAKER = re.compile(r"^[ \t]*(?:[-*][ \t]*)?(?:\*\*)?(user|human|question|q)(?:\*\*)?[ \t]*:[ \t]*(.+)$", re.I | re.M)
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n(.*?)```", re.S | re.I)
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = """
a an the and or but of to in on at for with without is are was were be been being it its this that
there these those as by from has have had do does did what which who whom how why where when image
picture photo shows show shown can could would should will i you we they he she his her their our
your not no yes any some very also just into onto over under than then so such about
"""
_STOP = frozenset(_STOP_WORDS.split())


def text_and_images(messages: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], int]:
    """The (role, text) of every text part, and how many image parts there are."""
    texts: list[tuple[str, str]] = []
    images = 0
    for message in messages:
        role = str(message.get("role", ""))
        content = message.get("content")
        if isinstance(content, str):
            texts.append((role, content))
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    texts.append((role, str(part.get("text", ""))))
                elif part.get("type") in ("image_url", "input_image", "image"):
                    images += 1
    return texts, images


def estimate_tokens(text: str) -> int:
    """A cheap stand-in for a tokenizer: about four characters a token."""
    return math.ceil(len(text) / 4)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    texts, images = text_and_images(messages)
    return math.ceil(sum(len(text) for _, text in texts) / 4) + IMAGE_PART_TOKENS * images


def content_seed(model: str, messages: list[dict[str, Any]], response_format: Any) -> int:
    """The seed of the content RNG: the same request always gets the same answer."""
    canonical = json.dumps(
        {"model": model, "messages": messages, "response_format": response_format},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def _words(text: str) -> list[str]:
    """Content words, lower-cased, with a crude plural fold so 'dogs' matches 'dog'."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP or len(word) < 2:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def _clean_label(text: str) -> str:
    text = _TRAILING_BOX_WORD.sub("", _TRAILING_BOX.sub("", text.strip()))
    text = text.strip().strip("\"'`").rstrip(".;,").strip()
    return text[:120]


def _unique(items: list[str], limit: int = 8) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.lower()
        if item and key not in seen:
            seen.add(key)
            out.append(item)
    return out[:limit]


def _sections(text: str) -> dict[str, str]:
    """Markdown sections by lower-cased heading; text before the first heading is not a section."""
    found: dict[str, str] = {}
    matches = list(_HEADING.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        found[match.group(1).strip().lower()] = text[match.end() : end].strip()
    return found


def _section(sections: dict[str, str], *needles: str, avoid: str = "") -> str:
    for heading, body in sections.items():
        if any(needle in heading for needle in needles) and not (avoid and avoid in heading):
            return body
    return ""


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def _article(noun: str) -> str:
    """'a dog', 'an apple', but leave 'the red pillow' or 'two cats' alone."""
    first = noun.split(" ", 1)[0].lower()
    if first in {"a", "an", "the", "some", "two", "three", "several", "many"} or first.isdigit():
        return noun
    return ("an " if first[:1] in "aeiou" else "a ") + noun


def _the(noun: str) -> str:
    first = noun.split(" ", 1)[0].lower()
    if first in {"a", "an"}:
        return "the " + noun.split(" ", 1)[1] if " " in noun else noun
    if first in {"the", "some", "two", "three", "several", "many"} or first.isdigit():
        return noun
    return "the " + noun


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def _snippet(text: str, words: int = 24) -> str:
    parts = text.split()
    cut = " ".join(parts[:words])
    return cut.rstrip(".,;:") + ("..." if len(parts) > words else "")


@dataclass
class PromptFacts:
    """What the prompt says about the image and the answer under review, read tolerantly."""

    captions: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    question: str = ""
    response: str = ""
    reference: str = ""

    @classmethod
    def from_messages(cls, messages: list[dict[str, Any]]) -> PromptFacts:
        texts, _ = text_and_images(messages)
        full = "\n".join(text for _, text in texts)
        sections = _sections(full)
        annotations = _section(sections, "annotation") or full
        captions: list[str] = []
        objects: list[str] = []
        regions: list[str] = []
        for kind, plural, value in _ANNOTATION.findall(annotations):
            kind = kind.lower()
            if kind == "caption":
                captions.append(_clean_label(value))
                continue
            # "Objects: dog, sofa" lists several; a single region may itself contain commas.
            values = re.split(r"[;,]" if plural else r";", _TRAILING_BOX.sub("", value))
            labels = [_clean_label(v) for v in values if v.strip()]
            (objects if kind == "object" else regions).extend(labels)
        return cls(
            captions=_unique(captions, 3),
            objects=_unique(objects),
            regions=_unique(regions, 4),
            question=cls._find_question(sections, texts),
            response=_section(sections, "response", "answer under review", avoid="reference"),
            reference=_unless_placeholder(_section(sections, "reference")),
        )

    @staticmethod
    def _find_question(sections: dict[str, str], texts: list[tuple[str, str]]) -> str:
        conversation = _section(sections, "conversation", "question")
        if conversation:
            turns = _SPEAKER.findall(conversation)
            if turns:
                return turns[-1][1].strip()[:300]
            lines = [line.strip() for line in conversation.splitlines() if line.strip()]
            return lines[-1][:300] if lines else ""
        user_texts = [text for role, text in texts if role == "user"]
        if not user_texts:
            return ""
        lines = [
            line.strip()
            for line in user_texts[-1].splitlines()
            if line.strip() and not _HEADING.match(line) and not _ANNOTATION.match(line)
        ]
        asked = [line for line in lines if "?" in line]
        return (asked or lines or [""])[-1][:300]

    @cached_property
    def labels(self) -> list[str]:
        """Things the annotations say are in the image, objects first."""
        return _unique(self.objects + self.regions)

    @cached_property
    def response_words(self) -> set[str]:
        return set(_words(self.response))

    def mentioned(self, label: str) -> bool:
        """Whether the response names the label's head noun (its last content word)."""
        words = _words(label)
        return bool(words) and words[-1] in self.response_words

    @cached_property
    def split_labels(self) -> tuple[list[str], list[str]]:
        found = [label for label in self.labels if self.mentioned(label)]
        missing = [label for label in self.labels if not self.mentioned(label)]
        return found, missing

    @cached_property
    def missing_reference_words(self) -> list[str]:
        return _unique([w for w in _words(self.reference) if w not in self.response_words], 4)

    @cached_property
    def agreement(self) -> float:
        """0..1: how much of the reference (or, failing that, the annotations) the response covers."""
        if self.reference:
            ref = set(_words(self.reference))
            if ref:
                return len(ref & self.response_words) / len(ref)
        if self.labels and self.response:
            found, _ = self.split_labels
            return len(found) / len(self.labels)
        return 0.55 if self.response else 0.3


class Writer:
    """Writes text and values from the prompt's facts with a seeded RNG."""

    def __init__(self, facts: PromptFacts, rng: random.Random) -> None:
        self.facts = facts
        self.rng = rng
        self.root: dict[str, Any] = {}

    def choice(self, options: list[str]) -> str:
        return self.rng.choice(options)

    # --- free text -------------------------------------------------------------------------------

    def critique(self) -> str:
        """Two to four sentences: a strength, a weakness, sometimes grounding and a verdict."""
        facts = self.facts
        found, missing = facts.split_labels
        agreement = facts.agreement
        out: list[str] = []
        if not facts.response.strip() and (facts.reference or facts.labels):
            out.append(self.choice(["The response is empty or too short to judge.", "There is almost no answer."]))
        elif found:
            out.append(
                self.choice(
                    [
                        f"The response identifies {_the(_join(found[:2]))}, which the annotations confirm.",
                        f"The response correctly mentions {_the(_join(found[:2]))}.",
                        f"A strength of the response is that it picks out {_the(found[0])}.",
                    ]
                )
            )
        elif facts.reference and agreement >= 0.5:
            out.append(
                self.choice(
                    [
                        "The response agrees with the reference answer on the main point.",
                        "The response captures the gist of the reference answer.",
                    ]
                )
            )
        else:
            out.append(
                self.choice(
                    [
                        "The response is fluent and addresses the question directly.",
                        "The response is clearly written and stays on topic.",
                        "The response answers in a direct, readable way.",
                    ]
                )
            )
        if missing:
            out.append(
                self.choice(
                    [
                        f"However, it misses {_the(missing[0])} that the annotations list.",
                        f"However, it does not mention {_the(missing[0])}, which the annotations list.",
                        f"It overlooks {_the(_join(missing[:2]))}, although the annotations list "
                        f"{'them' if len(missing) > 1 else 'it'}.",
                    ]
                )
            )
        elif facts.reference and facts.missing_reference_words and agreement < 0.7:
            words = _join([f"'{w}'" for w in facts.missing_reference_words[:3]])
            out.append(f"However, it leaves out details that the reference answer gives, such as {words}.")
        else:
            out.append(
                self.choice(
                    [
                        "However, it could be more specific about what is actually visible.",
                        "However, it stays general where a concrete detail would help.",
                    ]
                )
            )
        if facts.captions and self.rng.random() < 0.7:
            caption = _lower_first(facts.captions[0])
            out.append(
                self.choice(
                    [
                        f"The caption describes {caption}, and the answer should stay grounded in that scene.",
                        f"Given that the image shows {caption}, the answer is "
                        f"{'consistent with' if agreement >= 0.5 else 'only loosely tied to'} the picture.",
                    ]
                )
            )
        elif self.rng.random() < 0.5:
            if agreement >= 0.5:
                out.append("It does not claim anything the annotations contradict.")
            elif facts.reference:
                out.append("Several points of the reference answer are missing from it.")
            else:
                out.append("It leaves out much of what the annotations show.")
        if self.rng.random() < 0.5 and len(out) < 4:
            verdict = "a solid answer" if agreement >= 0.7 else "a helpful but incomplete answer"
            if agreement < 0.3:
                verdict = "a weak answer"
            out.append(f"Overall it is {verdict}.")
        return " ".join(out)

    def refinement(self) -> str:
        """Concrete advice that moves the answer toward the reference and the annotations."""
        facts = self.facts
        _, missing = facts.split_labels
        out: list[str] = []
        if missing:
            things = _join(missing[:2])
            out.append(
                self.choice(
                    [
                        f"Mention {_the(things)} explicitly and say where in the image "
                        f"{'they appear' if len(missing) > 1 else 'it appears'}.",
                        f"Add {_the(things)} to the description, since the annotations show "
                        f"{'them' if len(missing) > 1 else 'it'} clearly.",
                    ]
                )
            )
        if facts.reference:
            out.append(f'Bring the answer closer to the reference, which says: "{_snippet(facts.reference)}".')
            if facts.missing_reference_words and not missing:
                words = _join([f"'{w}'" for w in facts.missing_reference_words[:3]])
                out.append(f"In particular, include the details {words}.")
        if not out:
            subject = _lower_first(facts.captions[0]) if facts.captions else "the main subject"
            out.append(f"Describe {subject} more concretely and avoid claims the image does not support.")
        out.append(
            self.choice(
                [
                    "Keep the answer short and grounded in what is visible.",
                    "Keep the tone neutral and the answer concise.",
                    "Answer the question first, then add the supporting detail.",
                ]
            )
        )
        return " ".join(out[:4])

    def answer(self) -> str:
        """An LVLM-style answer of one to three sentences about the image."""
        facts = self.facts
        out: list[str] = []
        if facts.captions:
            caption = _lower_first(facts.captions[0]).rstrip(".")
            out.append(
                self.choice(
                    [f"The image shows {caption}.", f"This is a picture of {caption}.", f"I can see {caption}."]
                )
            )
        elif facts.labels:
            out.append(f"The image shows {_join([_article(x) for x in facts.labels[:2]])}.")
        else:
            out.append(
                self.choice(
                    [
                        "The image appears to show an everyday scene with one main subject.",
                        "The picture shows a scene with a clear subject in the foreground.",
                    ]
                )
            )
        extra = [label for label in facts.labels if label.lower() not in out[0].lower()]
        if extra and self.rng.random() < 0.8:
            out.append(
                self.choice(
                    [
                        f"There is also {_article(extra[0])} in the scene.",
                        f"I can also make out {_article(extra[0])}.",
                        f"Next to it there appears to be {_article(extra[0])}.",
                    ]
                )
            )
        if facts.question and self.rng.random() < 0.6:
            question = facts.question.rstrip("?.! ")
            out.append(
                self.choice(
                    [
                        f'As for "{_snippet(question, 12)}", the visible details suggest a simple, everyday setting.',
                        "The lighting and composition suggest it was taken indoors during the day.",
                        "Nothing in the image suggests anything unusual is happening.",
                    ]
                )
            )
        return " ".join(out[:3])

    def sentence(self, name: str) -> str:
        """A one-sentence value for a string field the simulator has no special text for."""
        label = name.replace("_", " ").strip() or "note"
        lowered = label.lower()
        if lowered in {"answer", "response", "text", "revised answer", "refined response", "revised response"}:
            return self.answer()
        if any(key in lowered for key in ("reason", "explanation", "rationale", "justification", "feedback")):
            return self.critique()
        agreement = self.facts.agreement
        verdict = self.choice(
            ["broadly accurate but incomplete", "partly supported by the image", "mostly consistent with the image"]
            if agreement >= 0.4
            else ["only loosely related to the image", "missing the key details", "weakly supported by the image"]
        )
        subject = f" about {_the(self.facts.labels[0])}" if self.facts.labels else ""
        return _sentence(f"{label}: the response{subject} is {verdict}")

    # --- values from a JSON schema ---------------------------------------------------------------

    def string(self, name: str, schema: dict[str, Any]) -> str:
        lowered = name.lower()
        if "critique" in lowered:
            text = self.critique()
        elif "refine" in lowered:
            text = self.refinement()
        else:
            text = self.sentence(name)
        min_length = schema.get("minLength")
        max_length = schema.get("maxLength")
        if isinstance(min_length, int) and len(text) < min_length:
            text = (text + " ") * (min_length // max(1, len(text) + 1) + 1)
            text = text.strip()
        if isinstance(max_length, int) and max_length >= 0 and len(text) > max_length:
            text = text[:max_length]
        return text

    def number(self, name: str, schema: dict[str, Any], integer: bool) -> int | float:
        """A value in [minimum, maximum] that leans on how well the response matches, by criterion."""
        low, high = _bounds(schema, integer)
        lowered = name.lower()
        agreement = self.facts.agreement
        if "harm" in lowered:
            fraction = 0.8 + self.rng.uniform(0.0, 0.2)
        elif "honest" in lowered:
            fraction = 0.5 + 0.4 * agreement + self.rng.uniform(-0.1, 0.1)
        else:
            fraction = 0.15 + 0.8 * agreement + self.rng.uniform(-0.15, 0.15)
        fraction = min(1.0, max(0.0, fraction))
        if integer:
            return int(min(high, max(low, round(low + fraction * (high - low)))))
        return round(min(high, max(low, low + fraction * (high - low))), 2)

    def value(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        """Walk a JSON schema and produce a value that conforms to it."""
        if depth == 0 and isinstance(schema, dict):
            self.root = schema
        if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
            return self.sentence(name)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.value(self._resolve(ref), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self.rng.choice(enum)
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                concrete = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                return self.value((concrete or options)[0], name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if kinds else "null"
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            properties = schema.get("properties")
            result: dict[str, Any] = {}
            if isinstance(properties, dict):
                for key, sub in properties.items():
                    result[str(key)] = self.value(sub, str(key), depth + 1)
            for key in schema.get("required") or []:
                if isinstance(key, str) and key not in result:
                    result[key] = self.sentence(key)
            return result
        if kind == "array":
            min_items, max_items = schema.get("minItems"), schema.get("maxItems")
            low = min_items if isinstance(min_items, int) else 1
            high = max_items if isinstance(max_items, int) else max(low, 3)
            count = min(high, max(low, self.rng.randint(1, 3)))
            item_name = name[:-1] if name.endswith("s") else name
            return [self.value(schema.get("items", {}), item_name, depth + 1) for _ in range(count)]
        if kind == "integer":
            return self.number(name, schema, integer=True)
        if kind == "number":
            return self.number(name, schema, integer=False)
        if kind == "boolean":
            return self.facts.agreement >= 0.5 if self.rng.random() < 0.8 else self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(name, schema)

    def _resolve(self, ref: str) -> Any:
        """A local reference such as #/$defs/Score; anything else resolves to an empty schema."""
        node: Any = self.root
        if not ref.startswith("#"):
            return {}
        for key in ref.lstrip("#").strip("/").split("/"):
            if not key:
                continue
            key = key.replace("~1", "/").replace("~0", "~")
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[float, float]:
    def num(key: str) -> float | None:
        value = schema.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    low = num("minimum")
    high = num("maximum")
    step = 1.0 if integer else 0.01
    exclusive_low, exclusive_high = num("exclusiveMinimum"), num("exclusiveMaximum")
    if low is None and exclusive_low is not None:
        low = exclusive_low + step
    if high is None and exclusive_high is not None:
        high = exclusive_high - step
    if low is None:
        low = high - 10 if high is not None else 0.0
    if high is None:
        high = low + 10
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return (low, high) if low <= high else (low, low)


def schema_in_text(text: str) -> dict[str, Any] | None:
    """A JSON schema the prompt asks for: a fenced json block, or an inline object with "properties".

    A fenced block that is an example object rather than a schema becomes a schema of the same shape.
    """
    for block in _FENCE.findall(text):
        try:
            parsed = json.loads(block)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed if _looks_like_schema(parsed) else _schema_of_example(parsed)
    if '"properties"' in text:
        decoder = json.JSONDecoder()
        for attempt, match in enumerate(re.finditer(r"\{", text)):
            if attempt >= 200:
                break
            try:
                parsed, _ = decoder.raw_decode(text, match.start())
            except ValueError:
                continue
            if isinstance(parsed, dict) and isinstance(parsed.get("properties"), dict):
                return parsed
    return None


def _looks_like_schema(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("properties"), dict) or obj.get("type") == "object"


def _schema_of_example(example: Any) -> dict[str, Any]:
    if isinstance(example, dict):
        return {
            "type": "object",
            "properties": {str(k): _schema_of_example(v) for k, v in example.items()},
            "required": [str(k) for k in example],
        }
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer", "minimum": 1, "maximum": 7} if 1 <= example <= 7 else {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number", "minimum": 0, "maximum": 1} if 0 <= example <= 1 else {"type": "number"}
    if isinstance(example, list):
        return {"type": "array", "items": _schema_of_example(example[0]) if example else {"type": "string"}}
    if example is None:
        return {"type": "null"}
    return {"type": "string"}


@dataclass
class Generated:
    """The answer to one request before any fault touches it."""

    content: str
    data: Any = None  # the JSON value, for JSON formats
    schema: dict[str, Any] | None = None


def generate(model: str, messages: list[dict[str, Any]], response_format: dict[str, Any] | None) -> Generated:
    """The deterministic answer to a chat completion request."""
    rng = random.Random(content_seed(model, messages, response_format))
    writer = Writer(PromptFacts.from_messages(messages), rng)
    kind = (response_format or {}).get("type", "text")
    schema: dict[str, Any] | None = None
    if kind == "json_schema":
        spec = response_format.get("json_schema") if response_format else None
        candidate = spec.get("schema") if isinstance(spec, dict) else None
        schema = candidate if isinstance(candidate, dict) else None
    if kind in ("json_schema", "json_object"):
        if schema is None:
            texts, _ = text_and_images(messages)
            schema = schema_in_text("\n".join(text for _, text in texts))
        if schema is None:
            data: Any = {"answer": writer.answer()}
        else:
            data = writer.value(schema)
        return Generated(json.dumps(data, ensure_ascii=False), data, schema)
    return Generated(writer.answer())


# --- faults that change the content ----------------------------------------------------------------


def malformed(generated: Generated, pick: float) -> str:
    """Content that is not valid JSON, in one of the ways real models get it wrong."""
    variant = min(2, int(pick * 3))
    if variant == 0:
        return f"Here is my assessment of the response:\n\n```json\n{generated.content}\n```\n"
    if variant == 1:
        pretty = json.dumps(generated.data, ensure_ascii=False, indent=2)
        close = pretty.rfind("}")
        if close <= 0:
            return pretty + ","
        return pretty[:close].rstrip() + ",\n" + pretty[close:]
    critique = ""
    if isinstance(generated.data, dict):
        critique = next((v for k, v in generated.data.items() if "critique" in k and isinstance(v, str)), "")
    prose = critique or "The response is partly correct but leaves out details that the image shows."
    return f"I would rate this response as average. {prose} I hope this helps."


def missing_field(generated: Generated, pick: float) -> str:
    """Valid JSON with one required top-level property left out."""
    data = generated.data
    if not isinstance(data, dict) or not data:
        return generated.content
    required = (generated.schema or {}).get("required") or list(data)
    present = [key for key in required if key in data] or list(data)
    drop = present[min(len(present) - 1, int(pick * len(present)))]
    return json.dumps({k: v for k, v in data.items() if k != drop}, ensure_ascii=False)


def truncated(content: str, pick: float) -> str:
    """The content cut somewhere before its end, as when a model runs out of tokens."""
    if len(content) <= 1:
        return ""
    return content[: 1 + int(pick * (len(content) - 1))]


def _unless_placeholder(text: str) -> str:
    """A section that only says "(none given)" or the like holds nothing."""
    stripped = text.strip()
    return "" if stripped.startswith("(") and stripped.endswith(")") else text
