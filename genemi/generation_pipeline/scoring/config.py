"""Options of the scoring stages ``score`` and ``negscore`` (YAML section ``score``: one matcher for both)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.errors import ConfigError
from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.scoring.base import SCORERS

from genemi.generation_pipeline.options import StageSection, option
from genemi.variation_area import IVA_PIXEL_THRESHOLD


@dataclass
class ScoreConfig(StageSection):
    backends: ClassVar[BackendRegistry] = SCORERS
    backend: str = option("blip", "image-text matching model: blip (transformers BlipForImageTextRetrieval, local "
                          "folder such as blip-itm-large-coco)", flag="--scorer")
    blip_model: str | None = option(None, "local BLIP image-text matching folder (the original's --blip-model)",
                                    metavar="DIR")
    clip_score_model: str | None = option(None, "also compute CLIPScore with this open_clip model (name or local "
                                          "config JSON; optional)", metavar="MODEL")
    clip_score_pretrained: str | None = option(None, "weights for --clip-score-model (open_clip/OpenAI checkpoint "
                                               "file or local folder)", metavar="PATH")
    itm_batch_size: int = option(64, "image-caption pairs per ITM forward pass", content=False)
    iva_pixel_threshold: float = option(IVA_PIXEL_THRESHOLD, "IVA: a pixel varies when the channel mean of its "
                                        "std across siblings exceeds this (uint8 units)", stages=("score",))
    triplet_margin: float = option(0.0, "a negative image passes when its ITM logit with its own caption "
                                   "exceeds that with the source caption by more than this (recorded per negative; "
                                   "the export keeps those that pass)", stages=("negscore",))
    batch_size: int = 8  # images per batch (--batch-size score=N)

    def validate(self) -> None:
        if not 0 <= self.iva_pixel_threshold < 255:
            raise ConfigError(f"--iva-pixel-threshold {self.iva_pixel_threshold}: must be in [0, 255) (uint8 units; "
                              "the original's is 10)")
