"""Batch composition: group keys per mode, score weighting, distinct items, determinism, sharding."""

import random
from collections import Counter

import pytest

from genemi.errors import ConfigError
from genemi.training.mining import (
    MINING_MODES,
    GroupRequest,
    Member,
    MiningBatchSampler,
    draw_members,
    mining_spec,
    score_weights,
)


def test_mode_defaults_reproduce_200_pairs_per_step():
    assert {name: spec.pairs_per_batch for name, spec in MINING_MODES.items()} == {
        "allinone": 200, "item_based": 200, "image_based": 200,
    }


def test_image_based_groups_by_image_not_like_item_based():
    assert MINING_MODES["item_based"].group_by == ("origin_name", "item")
    assert MINING_MODES["image_based"].group_by == ("origin_name",)
    assert MINING_MODES["image_based"].distinct_items


def test_mining_spec_overrides_and_unknown_mode():
    spec = mining_spec("item_based", groups_per_batch=4, pool_per_group=0)
    assert (spec.groups_per_batch, spec.pool_per_group, spec.variations_per_group) == (4, 0, 2)
    with pytest.raises(ConfigError, match="image_based"):
        mining_spec("per_pixel")


def test_score_weights_follow_the_original_formula():
    members = [Member(0, score=0.2), Member(1, score=1.0), Member(2, score=-0.3)]
    assert score_weights(members) == pytest.approx([0.5 + 0.5, 1.3 + 0.5, 0.5])
    assert score_weights([Member(0, score=None), Member(1, score=2.0)]) == [1.0, 1.0]


def test_score_weighted_draw_prefers_high_scores():
    spec = mining_spec("item_based", variations_per_group=1)
    members = [Member(0, score=0.0), Member(1, score=4.0)]
    counts = Counter(draw_members(members, spec, random.Random(i))[0].index for i in range(2000))
    # p = (0.5, 4.5) / 5
    assert counts[1] / 2000 == pytest.approx(0.9, abs=0.03)


def test_image_based_draw_picks_different_items_when_possible():
    spec = mining_spec("image_based")
    members = [Member(i, item=item, score=1.0) for i, item in enumerate(["cat", "cat", "cat", "dog", "dog"])]
    for seed in range(50):
        chosen = draw_members(members, spec, random.Random(seed))
        assert len(chosen) == 2 and {m.item for m in chosen} == {"cat", "dog"}


def test_image_based_fills_with_siblings_when_image_has_one_item():
    spec = mining_spec("image_based")
    members = [Member(i, item="cat") for i in range(3)]
    chosen = draw_members(members, spec, random.Random(0))
    assert len({m.index for m in chosen}) == 2


def test_small_groups_are_taken_whole():
    spec = mining_spec("item_based")
    members = [Member(7)]
    assert draw_members(members, spec, random.Random(0)) == members


def _epoch(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_sampler_is_deterministic_per_epoch_and_differs_across_epochs():
    spec = mining_spec("item_based", groups_per_batch=3)
    a, b = MiningBatchSampler(10, 5, spec, seed=1), MiningBatchSampler(10, 5, spec, seed=1)
    assert _epoch(a, 0) == _epoch(b, 0)
    assert _epoch(a, 0) != _epoch(a, 1)
    assert len(a) == 3 and all(len(batch) == 3 for batch in _epoch(a, 0))
    assert all(len(r.pool) == 8 for batch in _epoch(a, 0) for r in batch)


def test_sampler_walks_pool_permutations_without_repeats_until_exhausted():
    spec = mining_spec("item_based", groups_per_batch=2, pool_per_group=3)
    sampler = MiningBatchSampler(8, 12, spec, seed=0)
    drawn = [i for batch in _epoch(sampler, 0) for r in batch for i in r.pool]
    assert sorted(drawn[:12]) == list(range(12))


def test_sampler_splits_groups_disjointly_over_ranks():
    spec = mining_spec("allinone", groups_per_batch=2)
    ranks = [MiningBatchSampler(9, 0, spec, seed=3, rank=r, world_size=2) for r in range(2)]
    seen = [{req.group for batch in _epoch(s, 0) for req in batch} for s in ranks]
    assert not seen[0] & seen[1]
    assert len(ranks[0]) == len(ranks[1]) == 2
    assert all(req.pool == () for batch in _epoch(ranks[0], 0) for req in batch)


def test_sampler_mid_epoch_start_skips_done_batches():
    spec = mining_spec("allinone", groups_per_batch=2)
    sampler = MiningBatchSampler(8, 4, spec, seed=0)
    full = _epoch(sampler, 2)
    sampler.set_epoch(2, start_batch=3)
    assert list(sampler) == full[3:]


def test_sampler_rejects_empty_dataset():
    with pytest.raises(ConfigError, match="empty"):
        MiningBatchSampler(0, 0, mining_spec("allinone"))


def test_group_request_is_hashable_for_dataloader():
    assert hash(GroupRequest(1, (2, 3), 4)) == hash(GroupRequest(1, (2, 3), 4))
