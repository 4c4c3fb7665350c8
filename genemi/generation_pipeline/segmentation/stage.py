"""The ``segment`` stage: boxes -> one mask per item and its inpainting crop window (``masks.jsonl``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from genemi.errors import ImageError
from genemi.generation_pipeline.segmentation.crop import crop_window
from genemi.masks import rle_encode
from genemi.generation_pipeline.stage import Stage
from genemi.images import load_images
from genemi.records import DetectionRecord, Failure, ItemMask, MaskRecord


class SegmentStage(Stage):
    """Each item is segmented from the box it grounded to with the highest score (the original took the
    first one)."""

    name = "segment"

    def fail(self, record: DetectionRecord, failure: Failure | None) -> MaskRecord:
        return MaskRecord(**record.carried(), ungrounded=record.ungrounded, status="failed",
                          error=failure or self.upstream_failure(record))

    def prepare(self, batch: Sequence[DetectionRecord]):
        todo = [r for r in batch if r.status == "ok" and r.boxes]
        imgs = load_images(self.context.image_root, [r.image for r in todo])
        return {r.id: (img if isinstance(img, ImageError) else np.asarray(img)) for r, img in zip(todo, imgs)}

    def process(self, batch: Sequence[DetectionRecord], prepared=None) -> list:
        prepared = prepared if prepared is not None else self.prepare(batch)
        out = []
        for rec in batch:
            if rec.status != "ok" or not rec.boxes:
                out.append(self.fail(rec, rec.error))
                continue
            image = prepared[rec.id]
            if isinstance(image, ImageError):
                out.append(self.fail(rec, Failure.from_exception(self.name, image)))
                continue
            names = list(dict.fromkeys(b.item for b in rec.boxes))
            chosen = [max((b for b in rec.boxes if b.item == n), key=lambda b: b.score) for n in names]
            with self.timed():
                masks, scores = self.backend.segment(image, torch.tensor([b.box for b in chosen], dtype=torch.float32))
            out.append((rec, names, chosen, masks, scores))
        return out

    def finish(self, raw) -> list[MaskRecord]:
        """RLE-encode the masks and build the records (in the writer thread, off the model's path)."""
        out = []
        for entry in raw:
            if isinstance(entry, MaskRecord):
                out.append(entry)
                continue
            rec, names, chosen, masks, scores = entry
            items = [
                ItemMask(id=f"{rec.id}/item_{k:02d}", item=n, box=box.box, box_score=box.score, mask=rle_encode(mask),
                         mask_score=round(float(score), 5), area=int(mask.sum()),
                         crop=crop_window(mask, self.config.min_crop), candidates=sum(b.item == n for b in rec.boxes))
                for k, (n, box, mask, score) in enumerate(zip(names, chosen, masks, scores))
            ]
            out.append(MaskRecord(**rec.carried(), ungrounded=rec.ungrounded, items=items))
        return out
