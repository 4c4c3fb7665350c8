"""What every dataset type shares: pairs read from disk, pairs loaded for a batch, and the request a reader serves.

A reader turns its files into :class:`PairSpec` (image path, candidate captions, optional typed negatives,
optional negative image: the picture of the first negative caption, TripletCLIP's ``I'``); loading picks one
caption and transforms the image (and, when the loss asks for them, the negative image) into a
:class:`LoadedPair`. A pair whose image cannot be used is recorded in :attr:`LoadedGroup.skipped` and warned
about once, never a crash; an unusable *negative* image is recorded and warned about the same way, and its
pair is kept without it (the loss then treats the row as one without a negative image). A dataset type's builder
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
    """An image path with its candidate captions, optional typed hard-negative captions and an optional
    negative image (the path of the picture of ``negatives[0]``)."""

    image: str
    captions: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    neg_valid: tuple[bool, ...] = ()
    neg_image: str | None = None


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

    @property
    def num_negative_images(self) -> int:
        return sum(p.neg_image is not None for p in self.pairs)


def singleton_table(pairs: list[PairSpec], pool: list[PairSpec] | None = None) -> PairTable:
    """Each pair its own group (plain contrastive batches)."""
    return PairTable(pairs, [[Member(i)] for i in range(len(pairs))], pool or [])


def join_root(root: Path | None, path: str, what: str = "--image-root") -> str:
    """``path`` under ``root`` unless it is absolute or there is no root; a relative path that climbs out of
    ``root`` is refused (:func:`genemi.images.under_root`)."""
    from genemi.images import under_root

    return str(Path(path) if root is None else under_root(root, path, what))


@dataclass
class LoadedPair:
    image: torch.Tensor
    caption: str
    negatives: tuple[str, ...]
    neg_valid: tuple[bool, ...]
    neg_image: torch.Tensor | None = None  # the picture of negatives[0], transformed like ``image``


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


def negative_image_or_skip(path: str, load: Callable[[], torch.Tensor], out: LoadedGroup) -> torch.Tensor | None:
    """``load()`` (the transformed negative image), or ``None`` after recording in ``out`` that it could not be
    used (counted and warned once per ``path``, like a skipped image; its pair trains without it)."""
    try:
        return load()
    except ImageError as exc:
        skip_pair(out, path, f"{exc} (negative image; its pair is kept without it)")
        return None


def load_or_skip(pair: PairSpec, transform: Callable, rng: random.Random, normalize: bool, out: LoadedGroup,
                 negative_images: bool = False) -> None:  # fmt: skip
    """Append the loaded pair to ``out``, or record it as skipped when its image cannot be used. With
    ``negative_images`` the pair's negative image is loaded too (see :func:`negative_image_or_skip`)."""
    try:
        loaded = load_pair(pair, transform, rng, normalize)
    except ImageError as exc:
        skip_pair(out, pair.image, str(exc))
        return
    if negative_images and pair.neg_image:
        loaded.neg_image = negative_image_or_skip(pair.neg_image, lambda: transform(load_rgb(pair.neg_image)), out)
    out.pairs.append(loaded)


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
    needs_negative_images: bool = False  # the loss needs negative images (the pictures of the negative captions)
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
