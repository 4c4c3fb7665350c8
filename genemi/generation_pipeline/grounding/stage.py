"""The ``ground`` stage: tagged items -> boxes (``detections.jsonl``)."""

from __future__ import annotations

from genemi.generation_pipeline.grounding.base import Detections
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.records import DetectionRecord, Failure, TagRecord


class GroundStage(Stage):
    name = "ground"

    def items_of(self, rec: TagRecord) -> list[str]:
        """What to ground: the record's items; with ``--gd-prompt original`` every tag, as the original passed
        every Tag2Text tag to Grounding DINO (``--max-items`` does not cut them there)."""
        if getattr(self.config, "gd_prompt", "dots") == "original" and rec.all_tags:
            return rec.all_tags
        return rec.tags

    def prepare(self, item: StageItem[TagRecord]):
        return self.source_image(item)

    def process(self, items: list[StageItem[TagRecord]]) -> None:
        with self.timed():
            results: list[Detections] = self.backend.detect([it.prepared for it in items],
                                                            [self.items_of(it.record) for it in items])
        for item, result in zip(items, results, strict=True):
            item.result = result

    def build(self, item: StageItem[TagRecord]) -> DetectionRecord:  # item.result: the backend's Detections
        found = item.result
        error = None if found.boxes else Failure(stage=self.name, type="no_boxes",
                                                 message="no item grounded to a box")
        return DetectionRecord(**item.record.carried(), boxes=found.boxes, ungrounded=found.ungrounded,
                               status="ok" if found.boxes else "failed", error=error)
