"""The tagging protocol and its backend registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from PIL import Image

from genemi.generation_pipeline.backends import BackendRegistry

#: name -> "module:Class" (each class: ``Class(TagConfig, StageContext)``)
TAGGERS = BackendRegistry("tag", "--tagger", {
    "captions": "genemi.generation_pipeline.tagging.captions:CaptionTagger",
    "blip": "genemi.generation_pipeline.tagging.blip:BlipTagger",
    "tag2text": "genemi.generation_pipeline.tagging.tag2text:Tag2TextTagger",
    "ground_truth": "genemi.generation_pipeline.tagging.ground_truth:GroundTruthTagger",
})


@dataclass(frozen=True)
class TagResult:
    """What a tagger found in one image: a ``caption`` (or None), the ``items`` to edit, their ``scores`` (or None,
    one per item when given) and, when ``--max-items`` cut the items, ``all_tags``: every tag found before the cut
    (``--gd-prompt original`` grounds them; None when nothing was cut or the backend does not say)."""

    caption: str | None
    items: list[str]
    scores: list[float] | None = None
    all_tags: list[str] | None = None


class Tagger(Protocol):
    name: str

    def check(self) -> None:
        """Validate settings before any image is processed."""

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def tag(self, images: Sequence[Image.Image], captions: Sequence[list[str]]) -> list[TagResult]:
        """One :class:`TagResult` per image, in order."""
