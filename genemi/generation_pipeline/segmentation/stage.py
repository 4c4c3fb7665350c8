"""The ``segment`` stage: boxes -> one mask per item and its inpainting crop window (``masks.jsonl``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genemi.generation_pipeline.segmentation.crop import crop_window
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.masks import rle_encode
from genemi.records import Box, DetectionRecord, Failure, ItemMask, MaskRecord


@dataclass
class Segmented:
    """One image's items, the box each was segmented from, and the masks with their predicted IoUs."""

    names: list[str]
    boxes: list[Box]
    masks: list[np.ndarray]
    scores: np.ndarray


class SegmentStage(Stage):
    """Each item is segmented from the box it grounded to with the highest score (the original took the
    first one)."""

    name = "segment"

    def skip(self, item: StageItem[DetectionRecord]) -> MaskRecord | None:
        if item.record.status != "ok" or not item.record.boxes:
            return self.fail(item, self.upstream_failure(item.record))
        return None

    def fail(self, item: StageItem[DetectionRecord], failure: Failure) -> MaskRecord:
        return MaskRecord(**item.record.carried(), ungrounded=item.record.ungrounded, status="failed", error=failure)

    def prepare(self, item: StageItem[DetectionRecord]) -> np.ndarray:
        return np.asarray(self.source_image(item))

    def process(self, items: list[StageItem[DetectionRecord]]) -> None:
        for item in items:
            boxes = item.record.boxes
            names = list(dict.fromkeys(b.item for b in boxes))
            chosen = [max((b for b in boxes if b.item == n), key=lambda b: b.score) for n in names]
            with self.timed():
                masks, scores = self.backend.segment(item.prepared,
                                                     torch.tensor([b.box for b in chosen], dtype=torch.float32))
            item.result = Segmented(names, chosen, masks, scores)

    def build(self, item: StageItem[DetectionRecord]) -> MaskRecord:
        """RLE-encode the masks and build the record (in the writer thread, off the model's path)."""
        rec, seg = item.record, item.result
        items = [
            ItemMask(id=f"{rec.id}/item_{k:02d}", item=n, box=box.box, box_score=box.score, mask=rle_encode(mask),
                     mask_score=round(float(score), 5), area=int(mask.sum()),
                     crop=crop_window(mask, self.config.min_crop), candidates=sum(b.item == n for b in rec.boxes))
            for k, (n, box, mask, score) in enumerate(zip(seg.names, seg.boxes, seg.masks, seg.scores))
        ]
        return MaskRecord(**rec.carried(), ungrounded=rec.ungrounded, items=items)
