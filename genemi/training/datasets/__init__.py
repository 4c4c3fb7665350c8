"""Training data registry: ``--dataset-type`` name -> builder of the loader for that format (see docs/training.md).

Each builder takes a :class:`DataRequest` (the data options, the mining spec, transform, tokenizer, batch
size, seed, rank and world size) and returns :class:`TrainData`, whose ``steps_per_epoch`` is the same on
every rank. Indexed formats build a :class:`PairTable` and share the map-style path of
:mod:`genemi.training.datasets.mined`; ``webdataset`` streams shards (:mod:`genemi.training.datasets.webdataset`).
"""

from __future__ import annotations

from typing import Callable

from genemi.errors import ConfigError
from genemi.training.datasets import coco, csv_pairs, text_negatives, triplets, variations, webdataset
from genemi.training.datasets.base import DataRequest, TrainData

#: name -> (builder(request) -> train data, one-line description)
DATASET_TYPES: dict[str, tuple[Callable[[DataRequest], TrainData], str]] = {
    "variations": (variations.build, "GeNeMi variation records (variation_annotation.json or variations .jsonl), "
                                     "grouped by --mode"),
    "coco": (coco.build, "COCO captions (Karpathy JSON or official captions_*.json), one pair per image"),
    "text_negatives": (text_negatives.build, "JSONL of captions with typed hard negatives, for --loss ceclip|negclip"),
    "csv": (csv_pairs.build, "open_clip CSV/TSV (--csv-img-key, --csv-caption-key, --csv-separator; a negative "
                             "per row with --csv-neg-caption-key [--csv-neg-image-key])"),
    "webdataset": (webdataset.build, "tar shards (jpg|png|webp + txt [+ json negatives] [+ neg_caption.txt + "
                                     "neg_image.jpg]) streamed, split over ranks and workers"),
    "triplets": (triplets.build, "JSONL of TripletRecord (genemi generate export's triplets.jsonl): image, caption, "
                                 "negative caption and its picture, for --loss triplet"),
}


def check_dataset_type(name: str) -> None:
    if name not in DATASET_TYPES:
        raise ConfigError(f"unknown dataset type {name!r}; available: {', '.join(DATASET_TYPES)}")


def build_train_data(request: DataRequest) -> TrainData:
    """The loader for ``request.cfg.dataset_type``."""
    check_dataset_type(request.cfg.dataset_type)
    return DATASET_TYPES[request.cfg.dataset_type][0](request)


__all__ = ["DATASET_TYPES", "DataRequest", "TrainData", "build_train_data", "check_dataset_type"]
