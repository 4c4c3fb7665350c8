"""The ``--dataset-type`` registry: name -> the builder of the loader for that format, imported only when used
(so the training configuration can check a name without importing every reader)."""

from __future__ import annotations

import importlib

from genemi.errors import ConfigError

#: name -> ("module:build", one-line description); ``build(DataRequest) -> TrainData``
DATASET_TYPES: dict[str, tuple[str, str]] = {
    "variations": ("genemi.training.datasets.variations:build",
                   "GeNeMi variation records (variation_annotation.json or variations .jsonl), grouped by --mode"),
    "coco": ("genemi.training.datasets.coco:build",
             "COCO captions (Karpathy JSON or official captions_*.json), one pair per image"),
    "text_negatives": ("genemi.training.datasets.text_negatives:build",
                       "JSONL of captions with typed hard negatives, for --loss ceclip|negclip"),
    "csv": ("genemi.training.datasets.csv_pairs:build",
            "open_clip CSV/TSV (--csv-img-key, --csv-caption-key, --csv-separator; a negative per row with "
            "--csv-neg-caption-key [--csv-neg-image-key])"),
    "webdataset": ("genemi.training.datasets.webdataset:build",
                   "tar shards (jpg|png|webp + txt [+ json negatives] [+ neg_caption.txt + neg_image.jpg]) streamed, "
                   "split over ranks and workers"),
    "triplets": ("genemi.training.datasets.triplets:build",
                 "JSONL of TripletRecord (genemi generate export's triplets.jsonl): image, caption, negative caption "
                 "and its picture, for --loss triplet"),
}


def check_dataset_type(name: str) -> None:
    if name not in DATASET_TYPES:
        raise ConfigError(f"unknown dataset type {name!r}; available: {', '.join(DATASET_TYPES)}")


def build_train_data(request):
    """The loader (:class:`~genemi.training.datasets.base.TrainData`) for a
    :class:`~genemi.training.datasets.base.DataRequest`'s ``cfg.dataset_type``."""
    check_dataset_type(request.cfg.dataset_type)
    module, _, function = DATASET_TYPES[request.cfg.dataset_type][0].partition(":")
    return getattr(importlib.import_module(module), function)(request)
