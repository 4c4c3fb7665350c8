"""The pipeline, declared once: every stage with the stages it reads, what it writes, its config section (which
names its backend registry) and its stage class. The run order, ``PipelineConfig``, ``--stages``, ``--help``,
``--force``, the "run X first" hints, settings records, ``run_summary.json``, ``genemi generate merge``,
``export``, ``stats``, ``gallery`` and ``regenerate`` are all derived from :data:`STAGES`.

Adding a stage = one folder (config section, stage class, backends) + one :class:`StageSpec` line here.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from genemi.generation_pipeline.captioning.config import CaptionConfig
from genemi.generation_pipeline.graph import IMAGES, StageGraph, StageSpec
from genemi.generation_pipeline.grounding.config import GroundConfig
from genemi.generation_pipeline.inpainting.config import VARIATIONS, InpaintConfig
from genemi.generation_pipeline.negcaption.config import NegCaptionConfig
from genemi.generation_pipeline.portrayal.config import PortrayConfig
from genemi.generation_pipeline.scoring.config import ScoreConfig
from genemi.generation_pipeline.segmentation.config import PREVIEWS, SegmentConfig
from genemi.generation_pipeline.t2i.config import NEGATIVES, T2IConfig
from genemi.generation_pipeline.tagging.config import TagConfig
from genemi.records import DetectionRecord, MaskRecord, NegativePlan, TagRecord, VariationPlan

__all__ = ["IMAGES", "STAGES", "StageGraph", "StageSpec", "manifest", "select_stages", "stage_spec", "using"]

_P = "genemi.generation_pipeline"

STAGES = StageGraph([
    StageSpec("tag", "items to edit and a caption per image", (), "tags.jsonl", TagRecord, TagConfig,
              f"{_P}.tagging.stage:TagStage"),
    StageSpec("ground", "a box for each item", ("tag",), "detections.jsonl", DetectionRecord, GroundConfig,
              f"{_P}.grounding.stage:GroundStage"),
    StageSpec("segment", "a mask and an inpainting window per item (previews/: --save-annotated-image)", ("ground",),
              "masks.jsonl", MaskRecord, SegmentConfig, f"{_P}.segmentation.stage:SegmentStage", folders=(PREVIEWS,)),
    StageSpec("portray", "K portrayals per item: inpainting prompt, short label, edit kind, seed", ("segment",),
              "portrayals.jsonl", VariationPlan, PortrayConfig, f"{_P}.portrayal.stage:PortrayStage"),
    StageSpec("caption", "captions rewritten to name each portrayal", ("portray",), "captions.jsonl", VariationPlan,
              CaptionConfig, f"{_P}.captioning.stage:CaptionStage"),
    StageSpec("inpaint", "each variation painted into its item's mask", ("caption", "segment"), "variations.jsonl",
              VariationPlan, InpaintConfig, f"{_P}.inpainting.stage:InpaintStage", folders=(VARIATIONS,)),
    StageSpec("score", "BLIP ITM (+ CLIPScore) per caption on the variation, IVA per sibling group", ("inpaint",),
              "scores.jsonl", VariationPlan, ScoreConfig, f"{_P}.scoring.stage:ScoreStage"),
    # whole-image negatives (TripletCLIP): a branch that reads only the images' captions
    StageSpec("negcaption", "negative captions: each source caption rewritten minimally so it is false of the image",
              ("tag",), "negcaptions.jsonl", NegativePlan, NegCaptionConfig, f"{_P}.negcaption.stage:NegCaptionStage"),
    StageSpec("t2i", "each negative caption painted as a new image (text-to-image, or the shapes world's renderer)",
              ("negcaption",), "negimages.jsonl", NegativePlan, T2IConfig, f"{_P}.t2i.stage:T2IStage",
              folders=(NEGATIVES,)),
    StageSpec("negscore", "each negative image scored against its own and its source caption (section score)",
              ("t2i",), "negscores.jsonl", NegativePlan, ScoreConfig, f"{_P}.scoring.negscore:NegScoreStage",
              section="score"),
], selections={
    # --stages names for each product's whole chain (the default is "variations", GeNeMi's)
    "variations": ":score",  # GeNeMi: inpainted variations of each item, scored
    "triplets": ":negscore",  # TripletCLIP: negative captions painted as whole new images, scored
})


def stage_spec(name: str) -> StageSpec:
    """The spec of stage ``name`` in the current graph (a ConfigError listing the stages otherwise)."""
    return STAGES[name]


def manifest(name: str) -> str:
    """The file name of stage ``name``'s manifest, e.g. ``manifest("score") == "scores.jsonl"``."""
    return STAGES[name].writes


def select_stages(selection: str) -> list[StageSpec]:
    """``--stages``: see :meth:`StageGraph.select`."""
    return STAGES.select(selection)


@contextmanager
def using(graph: StageGraph) -> Iterator[StageGraph]:
    """Run, merge and report with ``graph`` instead of :data:`STAGES` inside the block (a stage registered from
    outside genemi, e.g. in a test or an experiment: ``using(STAGES.with_stage(spec))``)."""
    global STAGES
    before, STAGES = STAGES, graph
    try:
        yield graph
    finally:
        STAGES = before


if __name__ == "__main__":  # the graph as docs/generation_pipeline.md shows it
    print(STAGES.markdown(), end="")
