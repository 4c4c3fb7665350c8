"""The grounding protocol (items -> boxes) and its backend registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from PIL import Image

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.records import Box

#: name -> "module:Class" (each class: ``Class(GroundConfig, StageContext)``)
GROUNDERS = BackendRegistry("ground", "--grounder", {
    "grounding_dino": "genemi.generation_pipeline.grounding.grounding_dino:GroundingDino",
    "ground_truth": "genemi.generation_pipeline.grounding.ground_truth:GroundTruthGrounder",
})


@dataclass(frozen=True)
class Detections:
    """What a grounder found in one image: the ``boxes`` (each a :class:`~genemi.records.Box`: the item it
    grounds, x0, y0, x1, y1 in pixels, a score; several may share an item) and the ``ungrounded`` items, those
    that grounded to no box."""

    boxes: list[Box]
    ungrounded: list[str]


class Grounder(Protocol):
    name: str
    model: object  # the torch module (moved by load/offload)

    def check(self) -> None: ...

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def detect(self, images: Sequence[Image.Image], items: Sequence[Sequence[str]]) -> list[Detections]:
        """One :class:`Detections` per image, in order."""
