"""The portrayal protocol: items in, K portrayals per item out; backends registered by name."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.records import Failure, Portrayal

#: name -> "module:Class" (each class: ``Class(PortrayConfig, StageContext)``)
PORTRAYERS = BackendRegistry("portray", "--portrayer", {
    "rules": "genemi.generation_pipeline.portrayal.rules:RulesPortrayer",
    "hf": "genemi.generation_pipeline.portrayal.llm:HFPortrayer",
    "openai": "genemi.generation_pipeline.portrayal.llm:OpenAIPortrayer",
})


@dataclass(frozen=True)
class PortrayalRequest:
    """The items of one image to portray, with a sentence for context (the tagging caption)."""

    key: str  # the image id
    items: tuple[str, ...]
    caption: str | None
    k: int
    seed: int = 0  # per-image seed for sampling backends


@dataclass
class ItemPortrayals:
    """A backend's answer for one item: exactly K portrayals, or an error (with the raw model text)."""

    portrayals: list[Portrayal] = field(default_factory=list)
    error: Failure | None = None
    raw: str | None = None
    note: str | None = None


class Portrayer(Protocol):
    name: str

    def check(self) -> None:
        """Validate settings before any image is processed (raise ConfigError / CheckpointError)."""

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def portray(self, requests: Sequence[PortrayalRequest]) -> list[dict[str, ItemPortrayals]]:
        """Per request: item -> its portrayals (every item of the request present)."""


_UNSAFE = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 48) -> str:
    """A safe file-name stem from model text: lower-case ASCII letters, digits and single underscores.

    No separators, dots, NUL or ``..`` survive, so a slug can never leave the folder it is joined to;
    empty results become ``item``."""
    slug = _UNSAFE.sub("_", text.lower()).strip("_")[:max_length].strip("_")
    return slug or "item"
