"""``variations``: GeNeMi variation records, grouped for hard-negative mining (``--mode``).

Reads the original ``variation_annotation.json`` (a JSON list) or genemi's ``.jsonl`` manifest of
:class:`~genemi.records.VariationRecord`. The image of a record is the **variation** (``save``), not
``source`` (the original used ``source``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from genemi.caption_files import iter_json_objects, read_json
from genemi.errors import ManifestError
from genemi.manifest import validate_records
from genemi.records import VariationRecord, variation_from_legacy
from genemi.score_filters import DEFAULT_IVA_SCOPE, iva_of, passes
from genemi.training.datasets.base import DataRequest, PairSpec, PairTable, TrainData, join_root
from genemi.training.datasets.coco import read_pool
from genemi.training.datasets.mined import mined_train_data
from genemi.training.mining import Member, MiningSpec

logger = logging.getLogger(__name__)


def read_variation_records(path: str | Path, encoding: str = "utf-8") -> list[VariationRecord]:
    """Read the original ``variation_annotation.json`` or a genemi ``.jsonl`` variation manifest."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return validate_records(path, iter_json_objects(path, encoding), VariationRecord)
    data = read_json(path, encoding)
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a JSON list of variation records")
    records = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise ManifestError(f"{path}: record {i} is not an object")
        try:
            records.append(variation_from_legacy(obj))
        except Exception as exc:  # pydantic.ValidationError
            raise ManifestError(f"{path}: record {i} ({obj.get('name', '?')}): {exc}") from exc
    return records


def filter_variations(
    records: Sequence[VariationRecord], itm_threshold: float | None, iva_threshold: float | None,
    iva_scope: str = DEFAULT_IVA_SCOPE,
) -> tuple[list[VariationRecord], dict[str, int]]:
    """Keep ok records with mean ITM > ``itm_threshold`` and IVA (of ``iva_scope``) > ``iva_threshold`` (None
    disables a filter).

    A record without the score a filter needs is dropped by that filter.
    """
    kept, stats = [], {"records": len(records), "failed": 0, "low_itm": 0, "low_iva": 0, "no_caption": 0}
    for rec in records:
        if rec.status != "ok":
            stats["failed"] += 1
        elif not rec.captions:
            stats["no_caption"] += 1
        elif not passes(rec.mean_itm, itm_threshold):
            stats["low_itm"] += 1
        elif not passes(iva_of(rec, iva_scope), iva_threshold):
            stats["low_iva"] += 1
        else:
            kept.append(rec)
    stats["kept"] = len(kept)
    return kept, stats


def build_variation_table(
    records: Sequence[VariationRecord],
    spec: MiningSpec,
    image_root: Path | None,
    source_root: Path | None = None,
    include_source: bool = False,
) -> PairTable:
    """Group variation records by ``spec.group_by`` into a pair table (groups in first-seen order)."""
    pairs: list[PairSpec] = []
    grouped: dict[tuple, list[Member]] = {}
    first: dict[tuple, VariationRecord] = {}
    for rec in records:
        key = tuple(str(getattr(rec, k)) for k in spec.group_by)
        grouped.setdefault(key, []).append(Member(len(pairs), rec.item, rec.mean_itm))
        first.setdefault(key, rec)
        pairs.append(PairSpec(join_root(image_root, rec.save), tuple(rec.captions)))
    table = PairTable(pairs, list(grouped.values()))
    if include_source:
        missing = 0
        for g, key in enumerate(grouped):
            rec = first[key]
            captions = tuple(rec.original_captions) or ((rec.tag2text_caption,) if rec.tag2text_caption else ())
            if captions:
                table.sources[g] = PairSpec(join_root(source_root, rec.source, "--source-image-root"), captions)
            else:
                missing += 1
        if missing:
            logger.warning("--include-source: %d groups have no original caption; their source is left out", missing)
    return table


def build(req: DataRequest) -> TrainData:
    cfg = req.cfg
    records, stats = filter_variations(read_variation_records(req.dataset(), cfg.encoding), cfg.itm_threshold,
                                       cfg.iva_threshold, cfg.iva_scope)  # fmt: skip
    table = build_variation_table(records, req.spec, cfg.image_root, cfg.source_root, cfg.include_source)
    table.pool = read_pool(cfg)
    table.stats = {**stats, "groups": len(table.groups), "pool": len(table.pool)}
    return mined_train_data(req, table)
