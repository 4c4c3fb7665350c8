"""Training data, the trainer's entry point: :func:`build_train_data` picks the reader for ``--dataset-type``
from :data:`~genemi.training.datasets.registry.DATASET_TYPES`.

One module per format under :mod:`genemi.training.datasets` (``variations``, ``coco``, ``text_negatives``,
``csv_pairs``, ``webdataset``, ``triplets``); the shared pieces live in ``datasets.base`` (pairs, loaded pairs,
the request), ``datasets.mined`` (the map-style path of the indexed formats) and ``datasets.collate`` (batches).
Their public names are re-exported here for callers of the single-module layout.

A missing or corrupt image is skipped with a warning and counted (``Batch.skipped``), never a crash.
"""

from __future__ import annotations

from typing import Callable

import torch

from genemi.text.normalize import normalize_caption
from genemi.training.datasets import DATASET_TYPES, build_train_data as _build
from genemi.training.datasets.base import (DataRequest, LoadedGroup, LoadedPair, PairSpec, PairTable, TrainData,
                                           load_pair, pair_with_image, singleton_table)
from genemi.training.datasets.coco import read_coco_pairs
from genemi.training.datasets.collate import Batch, PairCollator
from genemi.training.datasets.csv_pairs import read_csv_pairs
from genemi.training.datasets.mined import MinedPairDataset
from genemi.training.datasets.text_negatives import read_text_negative_pairs
from genemi.training.datasets.triplets import read_triplet_pairs
from genemi.training.datasets.variations import build_variation_table, filter_variations, read_variation_records
from genemi.training.datasets.webdataset import WebDatasetPairs, expand_shards, iter_tar_samples
from genemi.training.mining import MiningSpec


def build_train_data(data_cfg, spec: MiningSpec, transform: Callable, tokenizer: Callable[[list[str]], torch.Tensor],
                     batch_size: int, seed: int, rank: int = 0, world_size: int = 1, needs_negatives: bool = False,
                     pin_memory: bool = False, needs_negative_images: bool = False) -> TrainData:  # fmt: skip
    """The loader for ``data_cfg.dataset_type`` on this rank (for flat datasets each group is one pair)."""
    return _build(DataRequest(data_cfg, spec, transform, tokenizer, batch_size, seed, rank, world_size,
                              needs_negatives, needs_negative_images, pin_memory))  # fmt: skip


__all__ = [
    "DATASET_TYPES", "Batch", "DataRequest", "LoadedGroup", "LoadedPair", "MinedPairDataset", "PairCollator",
    "PairSpec", "PairTable", "TrainData", "WebDatasetPairs", "build_train_data", "build_variation_table",
    "expand_shards", "filter_variations", "iter_tar_samples", "load_pair", "normalize_caption", "pair_with_image",
    "read_coco_pairs", "read_csv_pairs", "read_text_negative_pairs", "read_triplet_pairs", "read_variation_records",
    "singleton_table",
]
