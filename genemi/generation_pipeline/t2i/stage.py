"""The ``t2i`` stage: every negative caption of ``negcaption`` painted as a new image (``negimages.jsonl`` +
``negatives/``).

All the ok negatives of a stage batch's images are painted together, in the backend's prompt batches
(``--t2i-batch-size``), each with its own seed (the negative's ``seed``), so an image does not depend on what it
was batched with. Each image is written atomically to ``negatives/<image id>/cap_<c>/neg_<k>.<png|jpg>`` (every
component sanitised, never outside ``negatives/``) before its manifest line is appended: after a kill, a rerun
paints the negatives of unrecorded lines again, with the same seeds, to the same files. Records that failed
upstream, and records without an ok negative, are carried as they are; a negative that cannot be painted (a
non-finite output, a caption the ``render`` backend cannot parse) fails alone.
"""

from __future__ import annotations

from pathlib import Path

from genemi.errors import DataError
from genemi.generation_pipeline.image_files import (contained_path, id_tail, remove_leftovers, safe_component,
                                                    write_image_atomic)
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.generation_pipeline.t2i.config import NEGATIVES
from genemi.records import Failure, NegativePlan, PlannedNegative


def negative_path(output_dir: Path, record_id: str, negative_id: str, ext: str) -> Path:
    """Where a negative's image goes: ``negatives/<image id>/cap_<c>/neg_<k>.<ext>`` for an id of the usual form,
    ``negatives/<image id>/<the rest of the id, as one component>.<ext>`` for any other; always inside
    ``output_dir/negatives`` (raises DataError otherwise)."""
    parts = id_tail(negative_id, record_id).split("/")
    if len(parts) != 2:
        parts = ["/".join(parts)]
    name = f"{safe_component(parts[-1])}.{ext}"
    return contained_path(output_dir, NEGATIVES, (record_id, *parts[:-1]), name, f"negative {negative_id!r}")


def _paintable(negative: PlannedNegative) -> bool:
    return negative.status == "ok"


class T2IStage(Stage):
    """Reads ``negcaption`` (one :class:`~genemi.records.NegativePlan` per image); writes the same plans with each
    painted negative's ``image`` and ``truncated``."""

    name = "t2i"

    def skip(self, item: StageItem[NegativePlan]) -> NegativePlan | None:
        rec = item.record
        if rec.status != "ok" or not any(_paintable(n) for n in rec.negatives):
            return rec  # failed upstream, or nothing to paint: carried as it is
        return None

    def process(self, items: list[StageItem[NegativePlan]]) -> None:
        jobs = [(item, k) for item in items for k, neg in enumerate(item.record.negatives)
                if _paintable(neg) and (neg.caption or "").strip()]
        for item in items:
            item.result = {}
        if not jobs:
            return
        negatives = [item.record.negatives[k] for item, k in jobs]
        with self.timed():
            paintings = self.backend.paint([n.caption for n in negatives], [n.seed for n in negatives])
        for (item, k), painting in zip(jobs, paintings, strict=True):
            item.result[k] = painting

    def build(self, item: StageItem[NegativePlan]) -> NegativePlan:
        rec = item.record
        ext = self.config.negative_format
        negatives = list(rec.negatives)
        cleaned: set[Path] = set()
        for k, neg in enumerate(negatives):
            if not _paintable(neg):
                continue
            painting = item.result.get(k)
            if painting is None:
                failure = Failure(stage=self.name, type="no_caption", message=f"{neg.id}: no negative caption to paint")
            elif painting.error is not None:
                failure = Failure.from_exception(self.name, painting.error)
            else:
                try:
                    path = negative_path(self.context.output_dir, rec.id, neg.id, ext)
                except DataError as exc:
                    failure = Failure.from_exception(self.name, exc)
                else:
                    if path.parent not in cleaned:
                        remove_leftovers(path.parent)
                        cleaned.add(path.parent)
                    write_image_atomic(path, painting.image, ext)
                    rel = path.relative_to(self.context.output_dir).as_posix()
                    negatives[k] = neg.model_copy(update={"image": rel, "truncated": painting.truncated})
                    continue
            truncated = painting.truncated if painting is not None else None
            negatives[k] = neg.model_copy(update={"status": "failed", "error": failure, "truncated": truncated})
        return rec.model_copy(update={"negatives": negatives})
