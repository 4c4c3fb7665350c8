"""The ``tag`` stage: images (+ captions) -> items to edit and a caption (``tags.jsonl``)."""

from __future__ import annotations

from typing import Sequence

from genemi.errors import ConfigError, ImageError
from genemi.generation_pipeline.stage import Stage
from genemi.images import load_images
from genemi.records import Failure, ImageInput, TagRecord


class TagStage(Stage):
    name = "tag"

    def check_inputs(self, inputs: Sequence[ImageInput]) -> None:
        if getattr(self.backend, "needs_captions", False) and inputs and not any(r.captions for r in inputs):
            raise ConfigError(f"--tagger {self.backend.name} takes its items from captions, and none of the images "
                              "has any: give --annotation-file (Karpathy/COCO/JSONL captions), or use --tagger blip")

    def fail(self, record: ImageInput, failure: Failure) -> TagRecord:
        return TagRecord(id=record.id, image=record.image, original_captions=record.captions,
                         backend=self.backend.name, status="failed", error=failure)

    def prepare(self, batch: Sequence[ImageInput]):
        return load_images(self.context.image_root, [rec.image for rec in batch])

    def finish(self, raw: list) -> list[TagRecord]:
        """Records from the tagger's output (in the writer thread)."""
        out = []
        for entry in raw:
            if isinstance(entry, TagRecord):
                out.append(entry)
                continue
            rec, (width, height), (caption, tags, scores) = entry
            out.append(TagRecord(
                id=rec.id, image=rec.image, width=width, height=height, caption=caption,
                original_captions=rec.captions, tags=tags, tag_scores=scores, backend=self.backend.name,
                status="ok" if tags else "failed",
                error=None if tags else Failure(stage=self.name, type="no_items", message="no items found"),
            ))
        return out

    def process(self, batch: Sequence[ImageInput], prepared=None) -> list:
        prepared = prepared if prepared is not None else self.prepare(batch)
        loaded, out = [], {}
        for rec, img in zip(batch, prepared):
            if isinstance(img, ImageError):
                out[rec.id] = self.fail(rec, Failure.from_exception(self.name, img))
            else:
                loaded.append((rec, img))
        if loaded:
            with self.timed():
                results = self.backend.tag([img for _, img in loaded], [rec.captions for rec, _ in loaded])
            for (rec, img), result in zip(loaded, results):
                out[rec.id] = (rec, img.size, result)
        return [out[rec.id] for rec in batch]
