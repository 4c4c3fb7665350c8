"""Options of the ``segment`` stage (YAML section ``segment``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.segmentation.base import SEGMENTERS

from genemi.generation_pipeline.options import StageSection, option
from genemi.generation_pipeline.segmentation.crop import MIN_CROP

#: the folder of annotated previews drawn from the stage's masks (``--save-annotated-image``), under the output
#: folder; declared among the stage's folders, so ``--force`` removes it with ``masks.jsonl``
PREVIEWS = "previews"


@dataclass
class SegmentConfig(StageSection):
    backends: ClassVar[BackendRegistry] = SEGMENTERS
    backend: str = option("sam", "segmenter: sam (Meta segment-anything, original checkpoints)", flag="--segmenter")
    sam_checkpoint: str | None = option(None, "original SAM checkpoint sam_vit_{h,l,b}_*.pth", metavar="PTH")
    min_crop: int = option(MIN_CROP, "smallest inpainting window per side, in pixels")
    batch_size: int = 4  # images per batch (--batch-size segment=N)
