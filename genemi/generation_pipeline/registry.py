"""The pipeline's shape: every stage in order, with the manifests it reads and writes, its record type, its
config section and its backends. The chain, ``--stages``, ``--help``, ``run_summary.json`` and
``genemi generate merge`` are all derived from :data:`STAGES`.

Adding a stage = one folder (config dataclass, stage class, backends) + one :class:`StageSpec` here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from genemi.errors import ConfigError
from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.captioning.base import CAPTION_PARSERS
from genemi.generation_pipeline.captioning.config import CaptionConfig
from genemi.generation_pipeline.grounding.base import GROUNDERS
from genemi.generation_pipeline.grounding.config import GroundConfig
from genemi.generation_pipeline.inpainting.base import INPAINTERS
from genemi.generation_pipeline.inpainting.config import InpaintConfig
from genemi.generation_pipeline.portrayal.base import PORTRAYERS
from genemi.generation_pipeline.portrayal.config import PortrayConfig
from genemi.generation_pipeline.scoring.base import SCORERS
from genemi.generation_pipeline.scoring.config import ScoreConfig
from genemi.generation_pipeline.segmentation.base import SEGMENTERS
from genemi.generation_pipeline.segmentation.config import SegmentConfig
from genemi.generation_pipeline.tagging.base import TAGGERS
from genemi.generation_pipeline.tagging.config import TagConfig
from genemi.records import DetectionRecord, ImageInput, MaskRecord, TagRecord, VariationPlan

#: what the first stage reads: the collected input images (not a manifest on disk)
IMAGES = "images"


@dataclass(frozen=True)
class StageSpec:
    name: str  # also the config section's name in presets and the --batch-size key
    summary: str
    reads: str  # the previous stage's manifest, or IMAGES
    writes: str
    record: type  # record type of ``writes``
    input_record: type  # record type of ``reads``
    config: type  # the config section dataclass
    stage: str  # "module:Class"
    backends: BackendRegistry

    def stage_class(self) -> type:
        module, _, cls = self.stage.partition(":")
        return getattr(importlib.import_module(module), cls)


STAGES: tuple[StageSpec, ...] = (
    StageSpec("tag", "items to edit and a caption per image", IMAGES, "tags.jsonl", TagRecord, ImageInput,
              TagConfig, "genemi.generation_pipeline.tagging.stage:TagStage", TAGGERS),
    StageSpec("ground", "a box for each item", "tags.jsonl", "detections.jsonl", DetectionRecord, TagRecord,
              GroundConfig, "genemi.generation_pipeline.grounding.stage:GroundStage", GROUNDERS),
    StageSpec("segment", "a mask and an inpainting window per item", "detections.jsonl", "masks.jsonl", MaskRecord,
              DetectionRecord, SegmentConfig, "genemi.generation_pipeline.segmentation.stage:SegmentStage", SEGMENTERS),
    StageSpec("portray", "K portrayals per item: inpainting prompt, short label, edit kind, seed", "masks.jsonl",
              "portrayals.jsonl", VariationPlan, MaskRecord, PortrayConfig,
              "genemi.generation_pipeline.portrayal.stage:PortrayStage", PORTRAYERS),
    StageSpec("caption", "captions rewritten to name each portrayal", "portrayals.jsonl", "captions.jsonl",
              VariationPlan, VariationPlan, CaptionConfig, "genemi.generation_pipeline.captioning.stage:CaptionStage",
              CAPTION_PARSERS),
    StageSpec("inpaint", "each variation painted into its item's mask (images under variations/)", "captions.jsonl",
              "variations.jsonl", VariationPlan, VariationPlan, InpaintConfig,
              "genemi.generation_pipeline.inpainting.stage:InpaintStage", INPAINTERS),
    StageSpec("score", "BLIP ITM (+ CLIPScore) per caption on the variation, IVA per sibling group",
              "variations.jsonl", "scores.jsonl", VariationPlan, VariationPlan, ScoreConfig,
              "genemi.generation_pipeline.scoring.stage:ScoreStage", SCORERS),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def stage_spec(name: str) -> StageSpec:
    for spec in STAGES:
        if spec.name == name:
            return spec
    raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


def select_stages(selection: str) -> list[StageSpec]:
    """``all``, one stage, ``a:b`` (inclusive range, either end optional) or a comma list, in pipeline order."""
    selection = selection.strip()
    if selection == "all":
        return list(STAGES)
    if ":" in selection:
        first, last = (s.strip() for s in selection.split(":", 1))
        lo = STAGES.index(stage_spec(first)) if first else 0
        hi = STAGES.index(stage_spec(last)) if last else len(STAGES) - 1
        if lo > hi:
            raise ConfigError(f"--stages {selection}: {first} comes after {last}")
        return list(STAGES[lo : hi + 1])
    names = {stage_spec(s.strip()).name for s in selection.split(",") if s.strip()}
    if not names:
        raise ConfigError("--stages is empty")
    return [s for s in STAGES if s.name in names]
