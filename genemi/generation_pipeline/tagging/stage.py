"""The ``tag`` stage: images (+ captions) -> items to edit and a caption (``tags.jsonl``)."""

from __future__ import annotations

from typing import Sequence

from genemi.errors import ConfigError
from genemi.generation_pipeline.stage import Stage, StageItem
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
            results = self.backend.tag([it.prepared for it in items], [it.record.captions for it in items])
        for item, result in zip(items, results, strict=True):
            item.result = result

    def build(self, item: StageItem[ImageInput]) -> TagRecord:
        rec, (caption, tags, scores, *rest) = item.record, item.result  # rest: every tag, when --max-items cut
        width, height = item.prepared.size
        return TagRecord(
            id=rec.id, image=rec.image, width=width, height=height, caption=caption, original_captions=rec.captions,
            tags=tags, tag_scores=scores, all_tags=rest[0] if rest else None, backend=self.backend.name,
            status="ok" if tags else "failed",
            error=None if tags else Failure(stage=self.name, type="no_items", message="no items found"))
