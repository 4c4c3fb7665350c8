"""The tagging protocol and its backend registry."""

from __future__ import annotations

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


class Tagger(Protocol):
    name: str

    def check(self) -> None:
        """Validate settings before any image is processed."""

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def tag(self, images: Sequence[Image.Image], captions: Sequence[list[str]]) -> list[tuple]:
        """Per image: ``(caption, items, item scores or None)``, optionally followed by every tag found before
        ``--max-items`` cut them (or None), which ``--gd-prompt original`` grounds."""
