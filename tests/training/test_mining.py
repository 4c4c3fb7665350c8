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


class _Echo:
    """A map-style dataset that returns the request it is indexed with (as MinedPairDataset is indexed)."""

    def __getitem__(self, request):
        return request

    def __len__(self):
        return 0


def test_group_requests_reach_loader_workers_intact():
    """The sampler's requests travel to DataLoader worker processes and come back equal, and requests are values:
    equal ones are one dict key, a different pool or seed another."""
    from torch.utils.data import DataLoader

    sampler = MiningBatchSampler(8, 12, mining_spec("item_based", groups_per_batch=2, pool_per_group=2), seed=3)
    sampler.set_epoch(1)
    batches = list(sampler)
    loader = DataLoader(_Echo(), batch_sampler=sampler, num_workers=2, collate_fn=list, timeout=20)
    assert list(loader) == batches and len(batches) >= 2
    assert all(isinstance(r, GroupRequest) and len(r.pool) == 2 for b in batches for r in b)
    keys = {GroupRequest(1, (2, 3), 4): "a", GroupRequest(1, (2, 3), 4): "b", GroupRequest(1, (2, 3), 5): "c",
            GroupRequest(1, (3, 2), 4): "d"}
    assert list(keys.values()) == ["b", "c", "d"]


# --- batch composition through the real loader (build_train_data -> DataLoader -> PairCollator) ------------

SOURCES, ITEMS, VARIATIONS, POOL = 6, 2, 3, 40


@pytest.fixture(scope="module")
def coded_dataset(tmp_path_factory):
    """Variations whose 1x1 image encodes (kind, index) in its pixel: red = variation index + 1, green = pool
    index + 1; the truth about each variation (source, item) is kept here, independently of genemi's tables."""
    import json

    from PIL import Image

    root = tmp_path_factory.mktemp("coded")
    (root / "img").mkdir()
    truth, records, coco = {}, [], []
    for s in range(SOURCES):
        for i in range(ITEMS):
            for v in range(VARIATIONS):
                idx = len(records)
                Image.new("RGB", (1, 1), (idx + 1, 0, 0)).save(root / "img" / f"v{idx}.png")
                truth[idx] = (s, i)
                records.append({"origin_name": f"src{s}", "name": f"src{s}_item{i}_var{v}", "item": f"item{i}",
                                "source": f"src{s}.png", "save": f"img/v{idx}.png", "short": f"new{idx}",
                                "captions": [f"variation {idx}"], "itm_score": [1.0], "iva_score": 50.0})
    for j in range(POOL):
        Image.new("RGB", (1, 1), (0, j + 1, 0)).save(root / "img" / f"c{j}.png")
        coco.append({"image": f"img/c{j}.png", "caption": f"pool {j}", "image_id": str(j)})
    (root / "variations.json").write_text(json.dumps(records))
    (root / "coco.json").write_text(json.dumps(coco))
    return root, truth


def _decode_pixel(img):
    import torch

    return torch.tensor(list(img.getpixel((0, 0))), dtype=torch.float32)


def _loader_batches(coded_dataset, mode, groups_per_batch, epoch=0):
    import torch

    from genemi.training.config import DataConfig
    from genemi.training.data import build_train_data

    root, _ = coded_dataset
    cfg = DataConfig(dataset=root / "variations.json", image_root=root, coco_dataset=root / "coco.json",
                     coco_image_dir=root, itm_threshold=None, iva_threshold=None, workers=0)
    spec = mining_spec(mode, groups_per_batch=groups_per_batch)
    data = build_train_data(cfg, spec, _decode_pixel, lambda caps: torch.zeros(len(caps), 1, dtype=torch.long),
                            batch_size=8, seed=0)
    data.sampler.set_epoch(epoch)
    batches = []
    for batch in data.loader:
        rgb = batch.images.long()
        rows = [("var", int(r) - 1) if r else ("pool", int(g) - 1) for r, g, _ in rgb.tolist()]
        batches.append(rows)
    return batches


@pytest.mark.parametrize("mode,groups,members,pool", [
    ("allinone", 4, 1, 1), ("item_based", 3, 2, 8), ("image_based", 3, 2, 8),
])
def test_loader_batches_are_composed_as_the_mode_says(coded_dataset, mode, groups, members, pool):
    _, truth = coded_dataset
    num_groups = {"allinone": SOURCES * ITEMS * VARIATIONS, "item_based": SOURCES * ITEMS,
                  "image_based": SOURCES}[mode]
    batches = _loader_batches(coded_dataset, mode, groups)
    assert len(batches) == num_groups // groups
    seen_groups, pool_stream = [], []
    for rows in batches:
        assert len(rows) == groups * (members + pool)
        pool_rows = [i for kind, i in rows if kind == "pool"]
        assert len(pool_rows) == groups * pool
        pool_stream.extend(pool_rows)
        for g in range(groups):
            chunk = rows[g * (members + pool):(g + 1) * (members + pool)]
            assert [kind for kind, _ in chunk] == ["var"] * members + ["pool"] * pool, chunk
            variations = [i for _, i in chunk[:members]]
            assert len(set(variations)) == members  # distinct variations, each other's hard negatives
            sources = {truth[i][0] for i in variations}
            items = {truth[i][1] for i in variations}
            assert len(sources) == 1  # one group never mixes source images
            if mode == "item_based":
                assert len(items) == 1  # ... nor items
                seen_groups.append((sources.pop(), items.pop()))
            elif mode == "image_based":
                assert len(items) == members  # different items of the same image
                seen_groups.append(sources.pop())
            else:
                seen_groups.append(variations[0])
    assert len(seen_groups) == len(set(seen_groups))  # each group at most once per epoch
    # the pool (COCO) is walked in shuffled passes: no pair again before every pair has been used
    for start in range(0, len(pool_stream), POOL):
        window = pool_stream[start:start + POOL]
        assert len(set(window)) == len(window)
        if len(window) == POOL:
            assert sorted(window) == list(range(POOL))
    if mode == "allinone":  # every variation trained on once per epoch (36 groups, 9 full batches)
        assert sorted(seen_groups) == list(range(SOURCES * ITEMS * VARIATIONS))


def test_loader_batch_order_changes_with_the_epoch_and_repeats_for_the_same_epoch(coded_dataset):
    first = _loader_batches(coded_dataset, "item_based", 3, epoch=0)
    assert first == _loader_batches(coded_dataset, "item_based", 3, epoch=0)
    assert first != _loader_batches(coded_dataset, "item_based", 3, epoch=1)
