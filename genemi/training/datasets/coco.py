"""``coco``: COCO captions, one pair per image with a random caption per access; also the ``--coco-dataset`` pool.

Reads a Karpathy JSON list (``[{image, caption, image_id}]``, BLIP's layout, or ``captions`` lists) or an
official ``captions_*.json`` (see :mod:`genemi.caption_files`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from genemi.caption_files import read_caption_entries
from genemi.errors import DataError
from genemi.training.datasets.base import DataRequest, PairSpec, TrainData, join_root
from genemi.training.datasets.mined import flat_train_data


def read_coco_pairs(path: str | Path, image_root: Path | None, encoding: str = "utf-8") -> list[PairSpec]:
    """COCO captions grouped per image (Karpathy list with ``caption``/``captions``, or official COCO)."""
    by_image: dict[str, list[str]] = defaultdict(list)
    for entry in read_caption_entries(path, encoding=encoding):
        by_image[entry.image].append(entry.caption)
    return [PairSpec(join_root(image_root, img, f"{path} (--coco-image-dir)"), tuple(caps))
            for img, caps in by_image.items()]


def read_pool(cfg) -> list[PairSpec]:
    """The ``--coco-dataset`` pairs mixed into each group (none without the flag)."""
    return read_coco_pairs(cfg.coco_dataset, cfg.coco_image_dir, cfg.encoding) if cfg.coco_dataset else []


def build(req: DataRequest) -> TrainData:
    cfg = req.cfg
    path = cfg.dataset or cfg.coco_dataset
    if path is None:
        raise DataError("--dataset-type coco needs --dataset or --coco-dataset")
    pairs = read_coco_pairs(path, cfg.image_root or cfg.coco_image_dir, cfg.encoding)
    return flat_train_data(req, pairs, read_pool(cfg) if cfg.dataset else [])  # the pool is the data itself otherwise
