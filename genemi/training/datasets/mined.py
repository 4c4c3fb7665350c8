"""The map-style path every indexed format takes: a :class:`PairTable`, batches composed by
:class:`~genemi.training.mining.MiningBatchSampler`, groups loaded by :class:`MinedPairDataset`.

Groups are split evenly over ranks (the remainder is dropped), so every rank runs the same number of steps.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable

from torch.utils.data import DataLoader, Dataset

from genemi.errors import DataError
from genemi.training.datasets.base import (DataRequest, LoadedGroup, PairSpec, PairTable, TrainData, load_or_skip,
                                           singleton_table)
from genemi.training.datasets.collate import PairCollator
from genemi.training.mining import GroupRequest, Member, MiningBatchSampler, MiningSpec, draw_members


class MinedPairDataset(Dataset):
    """Map-style dataset indexed by :class:`GroupRequest` (from :class:`MiningBatchSampler`)."""

    def __init__(self, table: PairTable, spec: MiningSpec, transform: Callable, normalize_captions: bool = True,
                 negative_images: bool = False):  # fmt: skip
        self.table, self.spec, self.transform, self.normalize = table, spec, transform, normalize_captions
        self.negative_images = negative_images  # also load the pairs' negative images

    def __len__(self) -> int:
        return len(self.table.groups)

    def __getitem__(self, request: GroupRequest) -> LoadedGroup:
        rng = random.Random(request.seed)
        out = LoadedGroup([], [])
        pairs = [self.table.pairs[m.index] for m in draw_members(self.table.groups[request.group], self.spec, rng)]
        if request.group in self.table.sources:
            pairs.append(self.table.sources[request.group])
        for pair in pairs + [self.table.pool[idx] for idx in request.pool]:
            load_or_skip(pair, self.transform, rng, self.normalize, out, self.negative_images)
        return out


def mined_train_data(req: DataRequest, table: PairTable) -> TrainData:
    """The loader over ``table`` with batches composed by ``req.spec``."""
    cfg = req.cfg
    k = table.num_negatives if cfg.max_negatives is None else min(cfg.max_negatives, table.num_negatives)
    if req.needs_negatives and k == 0:
        raise DataError("the loss needs hard-negative captions but the dataset has none")
    if req.needs_negative_images:
        if table.num_negative_images == 0:
            raise DataError(f"the loss needs negative images but no record of {cfg.dataset} names one")
        k = 1  # the caption the negative image depicts
    sampler = MiningBatchSampler(len(table.groups), len(table.pool), req.spec, req.seed, req.rank, req.world_size)
    if len(sampler) == 0:
        raise DataError(
            f"{len(table.groups)} groups are fewer than one batch ({req.spec.groups_per_batch} groups x "
            f"{req.world_size} processes): lower the batch size or add data"
        )
    dataset = MinedPairDataset(table, sampler.spec, req.transform, cfg.normalize_captions, req.needs_negative_images)
    k = k if req.needs_negatives else 0
    collate = PairCollator(req.tokenizer, k, negative_images=req.needs_negative_images)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, **req.loader_kwargs())
    return TrainData(loader, sampler, k, len(sampler), table.stats)


def flat_train_data(req: DataRequest, pairs: list[PairSpec], pool: list[PairSpec],
                    groups: list[list[Member]] | None = None) -> TrainData:  # fmt: skip
    """Formats without mining groups: ``req.batch_size`` groups per step, one pair drawn from each (each pair is
    its own group unless ``groups`` says otherwise), plus ``--coco-per-group`` pool pairs each when a pool is
    given."""
    spec = replace(req.spec, group_by=(), variations_per_group=1, pool_per_group=req.spec.pool_per_group if pool else 0,
                   groups_per_batch=req.batch_size, sample_by_score=False, distinct_items=False)  # fmt: skip
    table = singleton_table(pairs, pool) if groups is None else PairTable(pairs, groups, pool)
    table.stats = {"records": len(pairs), "groups": len(table.groups), "pool": len(pool)}
    return mined_train_data(replace(req, spec=spec), table)
