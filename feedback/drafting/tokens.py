"""Counting a prompt's tokens before anything is sent, for a job's dry run.

With the model's own tokenizer where one is available offline, else the estimate the rate limit
uses, and always saying which:

- OpenAI models: tiktoken's table from model name to encoding (``gpt-4o`` → ``o200k_base``,
  ``gpt-4`` → ``cl100k_base``, …), the encoding itself from quicktok, which ships the encodings'
  data in its wheel (tiktoken would download it at first use; nothing here fetches anything);
- open models quicktok knows by name (Llama 3, Qwen 2.5/3: ``meta-llama/…``, ``Qwen/…``);
- anything else (the simulator, a LLaVA on vLLM): ``prompts.estimate_tokens``.

A chat message costs its content's tokens plus ``PER_MESSAGE`` (its role and separators), a prompt
``REPLY_PRIMING`` more (OpenAI's accounting; for open models' chat templates an approximation), and
an image ``IMAGE_TOKENS`` (the most a picture of at most 1024 pixels a side costs in OpenAI's tiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import quicktok
import tiktoken.model

from .prompts import estimate_tokens

PER_MESSAGE = 3
REPLY_PRIMING = 3
IMAGE_TOKENS = 765
# quicktok's encodings for open models, by the names it maps them from (its table of OpenAI names
# is not used: tiktoken's is the reference there).
OPEN_ENCODINGS = ("llama3", "qwen3")
ESTIMATE = "estimate (3 characters a token, 1,000 an image): no offline tokenizer for this model"


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of a list of chat messages; ``method`` says how (shown beside the figure)."""

    model: str
    encoding: str  # "" for the estimate

    @property
    def exact(self) -> bool:
        return bool(self.encoding)

    @property
    def method(self) -> str:
        return f"tokenizer {self.encoding}" if self.encoding else ESTIMATE

    def count(self, messages: list[dict[str, Any]]) -> int:
        if not self.encoding:
            return estimate_tokens(messages)
        encoder = _encoder(self.encoding)
        total = REPLY_PRIMING
        for message in messages:
            total += PER_MESSAGE
            content = message.get("content")
            if isinstance(content, str):
                total += len(encoder.encode_ordinary(content))
                continue
            for part in content or ():
                if part.get("type") == "text":
                    total += len(encoder.encode_ordinary(part.get("text", "")))
                elif part.get("type") == "image_url":
                    total += IMAGE_TOKENS
        return total


def counter_for(model: str) -> TokenCounter:
    return TokenCounter(model=model, encoding=_encoding_name(model))


@lru_cache(maxsize=256)
def _encoding_name(model: str) -> str:
    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        pass
    try:
        found = quicktok.encoding_for_model(model).name
    except (KeyError, ValueError):
        return ""
    return found if found in OPEN_ENCODINGS else ""


@lru_cache(maxsize=8)
def _encoder(name: str) -> _Encoding:
    return quicktok.get_encoding(name)
