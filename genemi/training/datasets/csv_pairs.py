"""``csv``: open_clip's CSV/TSV layout, one row per (image, caption)
(``--csv-img-key``, ``--csv-caption-key``, ``--csv-separator``)."""

from __future__ import annotations

from pathlib import Path

from genemi.caption_files import read_caption_entries
from genemi.training.datasets.base import DataRequest, PairSpec, TrainData, join_root
from genemi.training.datasets.coco import read_pool
from genemi.training.datasets.mined import flat_train_data


def read_csv_pairs(path: str | Path, image_root: Path | None, img_key: str, caption_key: str, separator: str,
                   encoding: str = "utf-8") -> list[PairSpec]:  # fmt: skip
    """One pair per row."""
    entries = read_caption_entries(path, "csv", csv_img_key=img_key, csv_caption_key=caption_key,
                                   csv_separator=separator, encoding=encoding)  # fmt: skip
    return [PairSpec(join_root(image_root, e.image), (e.caption,)) for e in entries]


def build(req: DataRequest) -> TrainData:
    cfg = req.cfg
    pairs = read_csv_pairs(req.dataset(), cfg.image_root, cfg.csv_img_key, cfg.csv_caption_key, cfg.csv_separator,
                           cfg.encoding)  # fmt: skip
    return flat_train_data(req, pairs, read_pool(cfg))
