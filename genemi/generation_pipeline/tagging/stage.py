"""The ``tag`` stage: images (+ captions) -> items to edit and a caption (``tags.jsonl``)."""

from __future__ import annotations

from typing import Sequence

from genemi.errors import ConfigError
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.generation_pipeline.tagging.base import TagResult
from genemi.records import Failure, ImageInput, TagRecord


class TagStage(Stage):
    name = "tag"

    def check_inputs(self, inputs: Sequence[ImageInput]) -> None:
        if getattr(self.backend, "needs_captions", False) and inputs and not any(r.captions for r in inputs):
            raise ConfigError(f"--tagger {self.backend.name} takes its items from captions, and none of the images "
                              "has any: give --annotation-file (Karpathy/COCO/JSONL captions), or use --tagger blip")

    def fail(self, item: StageItem[ImageInput], failure: Failure) -> TagRecord:
        rec = item.record
        return TagRecord(id=rec.id, image=rec.image, original_captions=rec.captions, backend=self.backend.name,
                         status="failed", error=failure)

    def prepare(self, item: StageItem[ImageInput]):
        return self.source_image(item)

    def process(self, items: list[StageItem[ImageInput]]) -> None:
        with self.timed():
            results: list[TagResult] = self.backend.tag([it.prepared for it in items],
                                                        [it.record.captions for it in items])
        for item, result in zip(items, results, strict=True):
            item.result = result

    def build(self, item: StageItem[ImageInput]) -> TagRecord:  # item.result: the backend's TagResult
        rec, result = item.record, item.result
        width, height = item.prepared.size
        return TagRecord(
            id=rec.id, image=rec.image, width=width, height=height, caption=result.caption,
            original_captions=rec.captions, tags=result.items, tag_scores=result.scores, all_tags=result.all_tags,
            backend=self.backend.name, status="ok" if result.items else "failed",
            error=None if result.items else Failure(stage=self.name, type="no_items", message="no items found"))
