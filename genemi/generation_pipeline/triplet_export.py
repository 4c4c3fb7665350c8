"""The whole-image negatives of a run as a TripletCLIP training set (part of ``genemi generate export``).

Reads ``negscores.jsonl`` (``negimages.jsonl`` when the filter is off: an unscored run) and keeps every painted
negative that passes: by default the filter ``negscore`` recorded (``passes``: the negative image matches its own
caption better than the source caption by more than ``--triplet-margin``), or the margin given here, recomputed
from the recorded ITM logits. Under the export folder:

* ``triplets.jsonl``: one :class:`~genemi.records.TripletRecord` per negative
  (``genemi train --dataset-type triplets --loss triplet --dataset triplets.jsonl --image-root <output-dir>
  --source-image-root <input-dir>``);
* ``triplets.csv``: tab separated, ``filepath``, ``title``, ``neg_image``, ``neg_caption`` (NegCLIP/TripletCLIP
  style), both image paths relative to the run's output folder
  (``--dataset-type csv --csv-neg-caption-key neg_caption --csv-neg-image-key neg_image --image-root <output-dir>``);
* ``wds-triplets/shard-*.tar``: per sample the source image (``jpg``/``png``/``webp``), ``txt`` (its caption),
  ``neg_image.<ext>``, ``neg_caption.txt`` and ``json`` (ids, kind, scores): TripletCLIP's WebDataset keys.

Sorted by negative id; written like the variation export (whole files renamed into place).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError
from genemi.generation_pipeline.dataset_files import image_payload, json_bytes, write_jsonl, write_shards, write_tsv
from genemi.generation_pipeline.scoring.negscore import margin_passes
from genemi.records import NegativePlan, PlannedNegative, TripletRecord

#: triplet formats (those of the variation export that apply) -> file or folder name
TRIPLET_FILES = {"jsonl": "triplets.jsonl", "csv": "triplets.csv", "webdataset": "wds-triplets"}
#: why a negative is not exported, in the order the checks run
TRIPLET_DROP_REASONS = ("failed", "not_painted", "not_scored", "low_margin", "missing_image", "missing_source")


@dataclass(frozen=True)
class TripletCandidate:
    plan: NegativePlan
    negative: PlannedNegative


def triplet_manifest(root: Path, unscored_ok: bool) -> Path | None:
    """``negscores.jsonl``, or (``unscored_ok``) ``negimages.jsonl`` of a run; None when the branch did not run."""
    from genemi.generation_pipeline import registry

    if "negscore" not in registry.STAGES:
        return None
    scored = root / registry.manifest("negscore")
    if scored.is_file():
        return scored
    painted = root / registry.manifest("t2i")
    if painted.is_file():
        if unscored_ok:
            return painted
        raise ConfigError(f"{scored} not found: run `genemi generate --stages negscore --output-dir {root}` first "
                          f"(or pass --no-filter to export the unscored {painted.name})")
    return None


def triplet_candidates(plans: Sequence[NegativePlan]) -> list[TripletCandidate]:
    return sorted((TripletCandidate(p, n) for p in plans for n in p.negatives), key=lambda c: c.negative.id)


def triplet_drop_reason(c: TripletCandidate, root: Path, source_root: Path | None, filtered: bool,
                        margin: float | None) -> str | None:
    """Why ``c`` is not exported (one of :data:`TRIPLET_DROP_REASONS`), or None. ``margin`` None: the ``passes``
    the run recorded; a number: recomputed from the recorded ITM logits."""
    neg = c.negative
    if c.plan.status != "ok" or neg.status != "ok" or not neg.caption:
        return "failed"
    if not neg.image:
        return "not_painted"
    if filtered:
        if neg.itm_own is None or neg.itm_source is None:
            return "not_scored"
        if not (neg.passes if margin is None else margin_passes(neg.itm_own, neg.itm_source, margin)):
            return "low_margin"
    if not (root / neg.image).is_file():
        return "missing_image"
    if source_root is not None and not (source_root / c.plan.image).is_file():
        return "missing_source"
    return None


def triplet_record(c: TripletCandidate) -> TripletRecord:
    n = c.negative
    return TripletRecord(id=n.id, image=c.plan.image, caption=n.source, neg_caption=n.caption, neg_image=n.image,
                         kind=n.kind, itm_own=n.itm_own, itm_source=n.itm_source, clip_own=n.clip_own,
                         clip_source=n.clip_source)


def triplet_sample(index: int, rec: TripletRecord, root: Path, source_root: Path) -> dict:
    ext, payload = image_payload(source_root / rec.image)
    neg_ext, neg_payload = image_payload(root / rec.neg_image)
    return {"__key__": f"{index:08d}", ext: payload, "txt": rec.caption.encode("utf-8"),
            f"neg_image.{neg_ext}": neg_payload, "neg_caption.txt": rec.neg_caption.encode("utf-8"),
            "json": json_bytes(rec.model_dump(mode="json", exclude_none=True))}


def export_triplets(root: Path, out: Path, formats: Sequence[str], manifest: Path, filtered: bool,
                    margin: float | None, source_root: Path | None, shard_size: int) -> dict:
    """Write the kept triplets of ``manifest`` in ``formats``; returns their part of the export summary. The CSV
    and the shards need the source images (``source_root``)."""
    from genemi.manifest import read_records

    if margin is not None and not float("-inf") < margin < float("inf"):
        raise ConfigError(f"--triplet-margin must be a finite number, not {margin}")
    plans = read_records(manifest, NegativePlan)
    candidates = triplet_candidates(plans)
    dropped = dict.fromkeys(TRIPLET_DROP_REASONS, 0)
    kept = []
    for c in candidates:
        reason = triplet_drop_reason(c, root, source_root, filtered, margin)
        if reason is None:
            kept.append(triplet_record(c))
        else:
            dropped[reason] += 1
    written = {}
    for fmt in (f for f in formats if f in TRIPLET_FILES):
        path = out / TRIPLET_FILES[fmt]
        if fmt == "jsonl":
            written[fmt] = write_jsonl(path, kept)
        elif fmt == "csv":
            rows = ([os.path.relpath(source_root / r.image, root), r.caption, r.neg_image, r.neg_caption]
                    for r in kept)
            written[fmt] = write_tsv(path, ["filepath", "title", "neg_image", "neg_caption"], rows)
        else:
            written[fmt] = write_shards(path, (triplet_sample(i, r, root, source_root) for i, r in enumerate(kept)),
                                        shard_size)
    return {"input": str(manifest), "filter": ("off" if not filtered else "recorded" if margin is None
                                               else f"margin > {margin:g}"),
            "images": len(plans), "negatives": len(candidates), "exported": len(kept), "dropped": dropped,
            "formats": written}
