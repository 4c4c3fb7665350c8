"""``csv``: open_clip's CSV/TSV layout, one row per (image, caption)
(``--csv-img-key``, ``--csv-caption-key``, ``--csv-separator``), optionally with a hard negative per row in the
NegCLIP / TripletCLIP style: a negative caption column (``--csv-neg-caption-key``, e.g. ``neg_caption``) and
its picture (``--csv-neg-image-key``, e.g. ``neg_image``, relative to ``--image-root`` like the image). An empty
cell means the row has no negative (caption) or no negative image."""

from __future__ import annotations

from pathlib import Path

from genemi.caption_files import read_caption_entries
from genemi.training.datasets.base import DataRequest, PairSpec, TrainData, join_root
from genemi.training.datasets.coco import read_pool
from genemi.training.datasets.mined import flat_train_data


def read_csv_pairs(path: str | Path, image_root: Path | None, img_key: str, caption_key: str, separator: str,
                   encoding: str = "utf-8", neg_caption_key: str | None = None,
                   neg_image_key: str | None = None) -> list[PairSpec]:  # fmt: skip
    """One pair per row; with ``neg_caption_key`` the row's negative caption (and with ``neg_image_key`` its
    picture) travel with it (``neg_image_key`` is read only with ``neg_caption_key``: the picture of a caption)."""
    entries = read_caption_entries(path, "csv", csv_img_key=img_key, csv_caption_key=caption_key,
                                   csv_separator=separator, encoding=encoding)  # fmt: skip
    if not neg_caption_key:
        return [PairSpec(join_root(image_root, e.image), (e.caption,)) for e in entries]
    # The negative columns, read as a second (image, caption) column pair of the same rows, in the same order.
    negs = read_caption_entries(path, "csv", csv_img_key=neg_image_key or img_key, csv_caption_key=neg_caption_key,
                                csv_separator=separator, encoding=encoding)  # fmt: skip
    pairs = []
    for e, n in zip(entries, negs):
        has_neg = bool(n.caption.strip())
        neg_image = join_root(image_root, n.image) if neg_image_key and has_neg and n.image.strip() else None
        pairs.append(PairSpec(join_root(image_root, e.image), (e.caption,), (n.caption,) if has_neg else (),
                              (True,) if has_neg else (), neg_image))  # fmt: skip
    return pairs


def build(req: DataRequest) -> TrainData:
    cfg = req.cfg
    pairs = read_csv_pairs(req.dataset(), cfg.image_root, cfg.csv_img_key, cfg.csv_caption_key, cfg.csv_separator,
                           cfg.encoding, cfg.csv_neg_caption_key, cfg.csv_neg_image_key)  # fmt: skip
    return flat_train_data(req, pairs, read_pool(cfg))
