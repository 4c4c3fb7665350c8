"""The ``ground`` stage: tagged items -> boxes (``detections.jsonl``)."""

from __future__ import annotations

from typing import Sequence

from genemi.errors import ImageError
from genemi.generation_pipeline.stage import Stage
from genemi.images import load_images
from genemi.records import DetectionRecord, Failure, TagRecord


class GroundStage(Stage):
    name = "ground"

    def prepare(self, batch: Sequence[TagRecord]):
        ok = [r for r in batch if r.status == "ok"]
        return dict(zip((r.id for r in ok), load_images(self.context.image_root, [r.image for r in ok])))

    def finish(self, raw: list) -> list[DetectionRecord]:
        """Records from the detections (in the writer thread)."""
        out = []
        for entry in raw:
            if isinstance(entry, DetectionRecord):
                out.append(entry)
                continue
            base, (boxes, ungrounded) = entry
            error = None if boxes else Failure(stage=self.name, type="no_boxes", message="no item grounded to a box")
            out.append(DetectionRecord(**base, boxes=boxes, ungrounded=ungrounded,
                                       status="ok" if boxes else "failed", error=error))
        return out

    def process(self, batch: Sequence[TagRecord], prepared=None) -> list:
        prepared = prepared if prepared is not None else self.prepare(batch)
        out, loaded = {}, []
        for rec in batch:
            if rec.status != "ok":
                out[rec.id] = self.fail(rec, rec.error)
            elif isinstance(prepared[rec.id], ImageError):
                out[rec.id] = self.fail(rec, Failure.from_exception(self.name, prepared[rec.id]))
            else:
                loaded.append((rec, prepared[rec.id]))
        if loaded:
            with self.timed():
                results = self.backend.detect([img for _, img in loaded], [rec.tags for rec, _ in loaded])
            for (rec, _), result in zip(loaded, results):
                out[rec.id] = (rec.carried(), result)
        return [out[rec.id] for rec in batch]
