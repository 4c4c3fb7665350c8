"""What every dataset type shares: pairs read from disk, pairs loaded for a batch, and the request a reader serves.

A reader turns its files into :class:`PairSpec` (image path, candidate captions, optional typed negatives);
loading picks one caption and transforms the image into a :class:`LoadedPair`. A pair whose image cannot be
used is recorded in :attr:`LoadedGroup.skipped` and warned about once, never a crash. A dataset type's builder
(see :data:`genemi.training.datasets.DATASET_TYPES`) takes a :class:`DataRequest` and returns
:class:`TrainData`, which the loop iterates.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from genemi.errors import DataError, ImageError
from genemi.images import load_rgb
from genemi.text.normalize import normalize_caption
from genemi.training.mining import Member, MiningSpec

if TYPE_CHECKING:
    from genemi.training.config import DataConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairSpec:
    """An image path with its candidate captions and optional typed hard-negative captions."""

    image: str
    captions: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    neg_valid: tuple[bool, ...] = ()


@dataclass
class PairTable:
    """Everything a map-style dataset needs: pairs, mining groups over them, and an optional pool (COCO)."""

    pairs: list[PairSpec]
    groups: list[list[Member]]
    pool: list[PairSpec] = field(default_factory=list)
    sources: dict[int, PairSpec] = field(default_factory=dict)  # group -> unedited source pair
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def num_negatives(self) -> int:
        return max((len(p.negatives) for p in [*self.pairs, *self.pool]), default=0)


def singleton_table(pairs: list[PairSpec], pool: list[PairSpec] | None = None) -> PairTable:
    """Each pair its own group (plain contrastive batches)."""
    return PairTable(pairs, [[Member(i)] for i in range(len(pairs))], pool or [])


def join_root(root: Path | None, path: str) -> str:
    """``path`` under ``root`` unless it is absolute or there is no root."""
    return str(Path(path) if root is None or Path(path).is_absolute() else Path(root) / path)


@dataclass
class LoadedPair:
    image: torch.Tensor
    caption: str
    negatives: tuple[str, ...]
    neg_valid: tuple[bool, ...]


@dataclass
class LoadedGroup:
    pairs: list[LoadedPair]
    skipped: list[str]  # "path: reason" of images that could not be used


_warned: set[str] = set()


def skip_pair(out: LoadedGroup, key: str, reason: str) -> None:
    """Record an unusable pair in ``out`` (it is counted in ``Batch.skipped``); warn once per ``key``."""
    out.skipped.append(reason)
    if key not in _warned:
        _warned.add(key)
        logger.warning("skipping pair: %s", reason)


def pair_with_image(pair: PairSpec, image: torch.Tensor, rng: random.Random, normalize: bool) -> LoadedPair:
    """Choose one of the pair's captions and (optionally) normalise it and its negatives."""
    caption = pair.captions[rng.randrange(len(pair.captions))]
    negatives = pair.negatives
    if normalize:
        caption = normalize_caption(caption)
        negatives = tuple(normalize_caption(n) for n in negatives)
    return LoadedPair(image, caption, negatives, pair.neg_valid)


def load_pair(pair: PairSpec, transform: Callable, rng: random.Random, normalize: bool) -> LoadedPair:
    """Load the image (raises ``ImageError``) and choose one caption."""
    return pair_with_image(pair, transform(load_rgb(pair.image)), rng, normalize)


def load_or_skip(pair: PairSpec, transform: Callable, rng: random.Random, normalize: bool, out: LoadedGroup) -> None:
    """Append the loaded pair to ``out``, or record it as skipped when its image cannot be used."""
    try:
        out.pairs.append(load_pair(pair, transform, rng, normalize))
    except ImageError as exc:
        skip_pair(out, pair.image, str(exc))


@dataclass(frozen=True)
class DataRequest:
    """What the trainer asks of a dataset type: the data options and how this process cuts its batches."""

    cfg: "DataConfig"
    spec: MiningSpec
    transform: Callable
    tokenizer: Callable[[list[str]], torch.Tensor]
    batch_size: int  # pairs per step and process for flat datasets
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    needs_negatives: bool = False  # the loss needs hard-negative captions
    pin_memory: bool = False

    def dataset(self) -> Path:
        """``--dataset``, which every type but ``coco`` requires."""
        if self.cfg.dataset is None:
            raise DataError(f"--dataset is required for --dataset-type {self.cfg.dataset_type}")
        return Path(self.cfg.dataset)

    def loader_kwargs(self) -> dict[str, Any]:
        """DataLoader options shared by every type (worker processes are started anew each epoch)."""
        kw: dict[str, Any] = dict(num_workers=self.cfg.workers, pin_memory=self.pin_memory, persistent_workers=False)
        if self.cfg.workers > 0:
            kw["prefetch_factor"] = 4
        return kw


@dataclass
class TrainData:
    """What the loop iterates: the loader, the object to tell the epoch, and what was read."""

    loader: torch.utils.data.DataLoader
    sampler: Any  # has set_epoch(epoch, start_batch)
    num_negatives: int
    steps_per_epoch: int  # batches per epoch on this process, the same on every rank
    stats: dict[str, int]
