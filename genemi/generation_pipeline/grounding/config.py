"""Options of the ``ground`` stage (YAML section ``ground``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.errors import ConfigError
from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.grounding.base import GROUNDERS

from genemi.generation_pipeline.options import StageSection, option, require_fraction

BOX_THRESHOLD, TEXT_THRESHOLD, NMS_IOU = 0.35, 0.25, 0.25


@dataclass
class GroundConfig(StageSection):
    backends: ClassVar[BackendRegistry] = GROUNDERS
    backend: str = option("grounding_dino", "detector: grounding_dino (transformers GroundingDinoForObjectDetection)",
                          flag="--grounder")
    gd_model: str | None = option(None, "local transformers Grounding DINO folder (e.g. grounding-dino-tiny)",
                                  metavar="DIR")
    gd_config: str | None = option(None, "original Grounding DINO .py config (parsed, never executed), with "
                                   "--gd-checkpoint", metavar="PY")
    gd_checkpoint: str | None = option(None, "original Grounding DINO .pth (e.g. groundingdino_swint_ogc.pth), "
                                       "converted on the fly (`genemi convert groundingdino` converts once)",
                                       metavar="PTH")
    gd_text_encoder: str | None = option(None, "local BERT folder (config.json + vocab.txt) for --gd-checkpoint; "
                                         "default: the config's text_encoder_type, relative to the config file",
                                         metavar="DIR")
    swin_sizes: str | None = option(None, "Swin sizes of an original --gd-checkpoint whose backbone is outside the "
                                    "original table, as JSON, e.g. '{\"embed_dim\": 96, \"depths\": [2, 2, 6, 2], "
                                    "\"num_heads\": [3, 6, 12, 24], \"window_size\": 7}' (as genemi convert takes it)",
                                    metavar="JSON")
    gd_prompt: str = option("dots", "dots: 'item . item .' prompt, boxes assigned to items by token scores; "
                            "original: the original GeNeMi prompt ('item, item.'), phrases picked by the text "
                            "threshold, then each picked item detected alone", choices=("dots", "original"))
    box_threshold: float = option(BOX_THRESHOLD, "box score threshold")
    text_threshold: float = option(TEXT_THRESHOLD, "token score threshold")
    nms_iou: float = option(NMS_IOU, "class-agnostic NMS IoU")
    batch_size: int = 8  # images per batch (--batch-size ground=N)

    def validate(self) -> None:
        for name in ("box_threshold", "text_threshold", "nms_iou"):
            require_fraction(getattr(self, name), "--" + name.replace("_", "-"))
        if self.swin_sizes is not None:
            from genemi.models.grounding_dino_original import parse_swin_sizes

            parse_swin_sizes(self.swin_sizes)
            if not self.gd_checkpoint:
                raise ConfigError("--swin-sizes applies only to an original --gd-config/--gd-checkpoint")
