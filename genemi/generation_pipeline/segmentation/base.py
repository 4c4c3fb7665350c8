"""The segmentation protocol (image + boxes -> one mask per box) and its backend registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from genemi.generation_pipeline.backends import BackendRegistry

#: name -> "module:Class" (each class: ``Class(SegmentConfig, StageContext)``)
SEGMENTERS = BackendRegistry("segment", "--segmenter", {
    "sam": "genemi.generation_pipeline.segmentation.sam:SamSegmenter",
    "ground_truth": "genemi.generation_pipeline.segmentation.ground_truth:GroundTruthSegmenter",
})


if TYPE_CHECKING:
    import numpy as np
    import torch


class Segmenter(Protocol):
    name: str

    def check(self) -> None: ...

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def segment(self, image: "np.ndarray", boxes: "torch.Tensor") -> "tuple[list[np.ndarray], np.ndarray]":
        """One full-resolution boolean mask per xyxy box, and a quality score per mask."""
