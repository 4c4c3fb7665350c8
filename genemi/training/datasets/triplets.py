"""``triplets``: JSONL of :class:`~genemi.records.TripletRecord` (``genemi generate export``'s ``triplets.jsonl``),
the whole-image hard negatives of TripletCLIP: a source image with its caption, a rewritten caption that is
false of it, and that caption painted as a new image, for ``--loss triplet`` (``negclip``/``ceclip`` can train on
the captions alone).

Paths follow the ``variations`` reader's convention: ``image`` (the source) is relative to
``--source-image-root`` (default ``--coco-image_dir``, then ``--image-root``), ``neg_image`` to ``--image-root``
(the generation run's output folder). The records of one source image form one group: each epoch draws one of
its negatives per pass (seeded), so an image is never twice in a batch and an epoch is one pass over the
source images (as ``coco`` draws one of an image's captions).
"""

from __future__ import annotations

from pathlib import Path

from genemi.caption_files import iter_json_objects
from genemi.manifest import validate_records
from genemi.records import TripletRecord
from genemi.training.datasets.base import DataRequest, PairSpec, TrainData, join_root
from genemi.training.datasets.coco import read_pool
from genemi.training.datasets.mined import flat_train_data
from genemi.training.mining import Member


def read_triplet_records(path: str | Path, encoding: str = "utf-8") -> list[TripletRecord]:
    return validate_records(path, iter_json_objects(path, encoding), TripletRecord)


def read_triplet_pairs(path: str | Path, image_root: Path | None, source_root: Path | None,
                       encoding: str = "utf-8") -> tuple[list[PairSpec], list[list[Member]]]:  # fmt: skip
    """One pair per record (the negative caption is its only negative, ``neg_image`` its picture), and the
    records grouped by source image (groups in first-seen order)."""
    pairs: list[PairSpec] = []
    groups: dict[str, list[Member]] = {}
    for r in read_triplet_records(path, encoding):
        groups.setdefault(r.image, []).append(Member(len(pairs)))
        pairs.append(PairSpec(join_root(source_root, r.image), (r.caption,), (r.neg_caption,), (True,),
                              join_root(image_root, r.neg_image)))  # fmt: skip
    return pairs, list(groups.values())


def build(req: DataRequest) -> TrainData:
    cfg = req.cfg
    pairs, groups = read_triplet_pairs(req.dataset(), cfg.image_root, cfg.source_root, cfg.encoding)
    return flat_train_data(req, pairs, read_pool(cfg), groups)
