"""Batch composition for hard-negative mining: which pairs share a softmax.

A batch is ``groups_per_batch`` groups; each contributes up to ``variations_per_group`` members of the group
(for GeNeMi: variations) and ``pool_per_group`` pairs from a pool of ordinary pairs (COCO). Members of one
group are each other's hard negatives under the symmetric CLIP loss, in both directions.

=============  =========================  ==========  ====  ==============  ==============
mode           group by                   members     COCO  groups / batch  pairs / step
=============  =========================  ==========  ====  ==============  ==============
allinone       each variation alone       1           1     100             200
item_based     source image + item        2 (score)   8     20              200
image_based    source image               2 (score,   8     20              200
                                          distinct
                                          items)
=============  =========================  ==========  ====  ==============  ==============

``image_based`` implements the intended meaning: variations of *different* items of the same image. The
original code grouped it exactly like ``item_based`` (a bug); genemi fixes that.

All randomness is a pure function of ``(seed, epoch, batch, group)``, so data order does not depend on
the number of workers and an interrupted run resumes with the same batches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from genemi.errors import ConfigError

#: Score-weighted sampling: p_i ∝ s_i − min_j s_j + SCORE_EPSILON (the original's prob_eps).
SCORE_EPSILON = 0.5


@dataclass(frozen=True)
class MiningSpec:
    """How one mode groups and samples (see the module table)."""

    group_by: tuple[str, ...]
    variations_per_group: int
    pool_per_group: int
    groups_per_batch: int
    sample_by_score: bool
    distinct_items: bool = False

    def __post_init__(self) -> None:
        for flag, value, least in (("--variations-per-group", self.variations_per_group, 1),
                                   ("--groups-per-batch", self.groups_per_batch, 1),
                                   ("--coco-per-group", self.pool_per_group, 0)):
            if value < least:
                raise ConfigError(f"{flag} must be at least {least}, not {value}")

    @property
    def pairs_per_batch(self) -> int:
        return self.groups_per_batch * (self.variations_per_group + self.pool_per_group)


#: ``--mode`` name -> spec (defaults reproduce the paper's 200 pairs per step)
MINING_MODES: dict[str, MiningSpec] = {
    "allinone": MiningSpec(("name",), 1, 1, 100, sample_by_score=False),
    "item_based": MiningSpec(("origin_name", "item"), 2, 8, 20, sample_by_score=True),
    "image_based": MiningSpec(("origin_name",), 2, 8, 20, sample_by_score=True, distinct_items=True),
}


def mining_spec(
    mode: str,
    groups_per_batch: int | None = None,
    variations_per_group: int | None = None,
    pool_per_group: int | None = None,
    sample_by_score: bool | None = None,
) -> MiningSpec:
    """The mode's spec with any explicitly given counts replaced."""
    if mode not in MINING_MODES:
        raise ConfigError(f"unknown mining mode {mode!r}; choose one of {', '.join(MINING_MODES)}")
    changes = {
        "groups_per_batch": groups_per_batch,
        "variations_per_group": variations_per_group,
        "pool_per_group": pool_per_group,
        "sample_by_score": sample_by_score,
    }
    return replace(MINING_MODES[mode], **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class Member:
    """A candidate pair inside a group: its index in the pair table, its item and its score."""

    index: int
    item: str = ""
    score: float | None = None


def score_weights(members: Sequence[Member]) -> list[float]:
    """p_i ∝ s_i − min s + 0.5; uniform when any score is missing."""
    scores = [m.score for m in members]
    if any(s is None for s in scores):
        return [1.0] * len(members)
    low = min(scores)
    return [s - low + SCORE_EPSILON for s in scores]


def _weighted_sample(rng: random.Random, items: list, weights: list[float], k: int) -> list:
    """k distinct items, each drawn with probability proportional to its weight among those left."""
    items, weights, chosen = list(items), list(weights), []
    for _ in range(min(k, len(items))):
        i = rng.choices(range(len(items)), weights=weights)[0]
        chosen.append(items.pop(i))
        weights.pop(i)
    return chosen


def draw_members(members: Sequence[Member], spec: MiningSpec, rng: random.Random) -> list[Member]:
    """Choose the members of a group that go into this batch.

    Groups no larger than ``variations_per_group`` are taken whole (as the original). With
    ``distinct_items`` (image_based), items are drawn first and one member per item, so the chosen
    variations show different items; slots left when the image has fewer items are filled with
    other members.
    """
    k = spec.variations_per_group
    if len(members) <= k:
        return list(members)
    weights = score_weights(members) if spec.sample_by_score else [1.0] * len(members)
    if not spec.distinct_items:
        return _weighted_sample(rng, list(members), weights, k)
    by_item: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        by_item.setdefault(m.item, []).append(i)
    items = _weighted_sample(rng, sorted(by_item), [1.0] * len(by_item), k)
    picked: list[int] = []
    for item in items:
        idx = by_item[item]
        picked.append(_weighted_sample(rng, idx, [weights[i] for i in idx], 1)[0])
    if len(picked) < k:
        rest = [i for i in range(len(members)) if i not in picked]
        picked += _weighted_sample(rng, rest, [weights[i] for i in rest], k - len(picked))
    return [members[i] for i in picked]


@dataclass(frozen=True)
class GroupRequest:
    """What the dataset must load for one group of a batch."""

    group: int
    pool: tuple[int, ...]
    seed: int


def _mix(*parts: int) -> int:
    value = 0x9E3779B97F4A7C15
    for p in parts:
        value = (value ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        value ^= value >> 31
    return value & 0x7FFFFFFFFFFFFFFF


class MiningBatchSampler(Sampler[list[GroupRequest]]):
    """Yields one list of :class:`GroupRequest` per batch for this rank.

    Groups are shuffled per epoch and split evenly over ranks (the remainder that would give ranks
    unequal batch counts is dropped, like ``drop_last``). Pool pairs are drawn by walking shuffled
    permutations of the pool, reshuffled when exhausted.
    """

    def __init__(
        self,
        num_groups: int,
        pool_size: int,
        spec: MiningSpec,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ):
        if num_groups < 1:
            raise ConfigError("no training groups: the dataset is empty after filtering")
        if pool_size == 0:
            spec = replace(spec, pool_per_group=0)
        self.num_groups, self.pool_size, self.spec = num_groups, pool_size, spec
        self.seed, self.rank, self.world_size, self.drop_last = seed, rank, world_size, drop_last
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's order; ``start_batch`` skips batches already trained (mid-epoch resume)."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        per_rank = self.num_groups // self.world_size
        full, rest = divmod(per_rank, self.spec.groups_per_batch)
        return full if (self.drop_last or rest == 0) else full + 1

    def __iter__(self) -> Iterator[list[GroupRequest]]:
        gen = torch.Generator().manual_seed(_mix(self.seed, self.epoch, 1))
        order = torch.randperm(self.num_groups, generator=gen).tolist()
        per_rank = self.num_groups // self.world_size
        mine = order[self.rank * per_rank : (self.rank + 1) * per_rank]
        pool = self._pool_stream()
        g = self.spec.groups_per_batch
        for b in range(len(self)):
            groups = mine[b * g : (b + 1) * g]
            requests = [
                GroupRequest(grp, tuple(next(pool) for _ in range(self.spec.pool_per_group)),
                             _mix(self.seed, self.epoch, b, grp))
                for grp in groups
            ]  # fmt: skip
            if b >= self.start_batch:
                yield requests

    def _pool_stream(self) -> Iterator[int]:
        if self.spec.pool_per_group == 0:
            return
        gen = torch.Generator().manual_seed(_mix(self.seed, self.epoch, self.rank, 2))
        while True:
            yield from torch.randperm(self.pool_size, generator=gen).tolist()
