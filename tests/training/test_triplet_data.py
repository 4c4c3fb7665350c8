"""Whole-image hard negatives in the data: the triplets, csv and webdataset readers, negative images in batches,
rows without a negative, unreadable negative images, and the refusal of --loss triplet without negative images."""

import json
import logging
from pathlib import Path

import pytest
import torch

from genemi.errors import ConfigError, DataError
from genemi.images import load_rgb
from genemi.training import train
from genemi.training.config import DataConfig, TrainConfig
from genemi.training.datasets import build_train_data
from genemi.training.datasets.webdataset import WebDatasetPairs
from genemi.training.data import read_csv_pairs, read_triplet_pairs
from genemi.training.losses import LossConfig
from genemi.training.mining import Member
from tests.training.test_datasets import batch_captions, byte_tokens, request, to_tensor, wds_cfg
from tests.training.triplet_data import write_triplet_shards


def _decode(tokens):
    return bytes(tokens.tolist()).rstrip(b"\0").decode()


def _triplet_request(cfg, **kw):
    return request(cfg, needs_negatives=True, needs_negative_images=True, tokenizer=byte_tokens, **kw)


def _rows(batch):
    """(caption, negative caption or None, negative image or None) per row of a batch."""
    neg_images = iter(batch.neg_images)
    out = []
    for i, caption in enumerate(batch_captions(batch)):
        neg = _decode(batch.neg_texts[i, 0]) if batch.neg_valid[i, 0] else None
        out.append((caption, neg, next(neg_images) if batch.neg_image_valid[i] else None))
    assert next(neg_images, None) is None  # neg_images holds exactly the rows marked valid
    return out


def test_triplet_paths_follow_the_variations_convention_and_group_per_source_image(triplets):
    pairs, groups = read_triplet_pairs(triplets.jsonl, Path("/run"), Path("/coco"))
    first = triplets.records[0]
    assert pairs[0].image == f"/coco/{first.image}" and pairs[0].neg_image == f"/run/{first.neg_image}"
    assert pairs[0].captions == (first.caption,) and pairs[0].negatives == (first.neg_caption,)
    assert len(pairs) == 2 * triplets.num_sources and len(groups) == triplets.num_sources
    assert groups[0] == [Member(0), Member(1)] and pairs[1].image == pairs[0].image
    # the source root: --source-image-root, else --coco-image_dir, else --image-root
    cfg = DataConfig(dataset_type="triplets", image_root=Path("/run"))
    assert cfg.source_root == Path("/run")
    cfg.coco_image_dir = Path("/coco")
    assert cfg.source_root == Path("/coco")
    cfg.source_image_root = Path("/src")
    assert cfg.source_root == Path("/src")


def test_triplet_batches_carry_each_rows_negative_caption_and_its_picture(shapes, triplets):
    cfg = DataConfig(dataset_type="triplets", dataset=triplets.jsonl, image_root=shapes.images, workers=0,
                     normalize_captions=False)  # fmt: skip
    data = build_train_data(_triplet_request(cfg))
    assert data.steps_per_epoch == triplets.num_sources // 4 and data.num_negatives == 1
    by_pair = {(r.caption, r.neg_caption): r for r in triplets.records}
    seen = set()
    for epoch in range(3):
        data.sampler.set_epoch(epoch)
        sources = []
        for batch in data.loader:
            assert batch.neg_texts.shape[:2] == (4, 1) and batch.neg_images.shape == (4, 3, 8, 8)
            for caption, neg, neg_image in _rows(batch):
                rec = by_pair[(caption, neg)]
                assert torch.equal(neg_image, to_tensor(load_rgb(shapes.images / rec.neg_image)))
                sources.append(rec.image)
                seen.add(rec.id)
        assert sorted(sources) == sorted({r.image for r in triplets.records})  # each source image once an epoch
    assert len(seen) > triplets.num_sources  # epochs draw different negatives of an image


def test_pool_pairs_and_unreadable_negative_images_are_rows_without_a_negative(tmp_path, shapes, triplets, caplog):
    broken = [r.model_copy(update={"neg_image": "variations/missing.png"}) if r.image == triplets.records[0].image
              else r for r in triplets.records]  # fmt: skip
    path = tmp_path / "triplets.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in broken))
    cfg = DataConfig(dataset_type="triplets", dataset=path, image_root=shapes.images, coco_dataset=shapes.coco_json,
                     coco_image_dir=shapes.images, workers=0, normalize_captions=False)  # fmt: skip
    data = build_train_data(_triplet_request(cfg, mode="allinone"))  # one pool pair per triplet
    with caplog.at_level(logging.WARNING):
        batches = list(data.loader)
    rows = [row for b in batches for row in _rows(b)]
    assert len(rows) == 2 * triplets.num_sources
    pool, triplet_rows = rows[1::2], rows[0::2]  # a group's member, then its pool pair
    assert all(neg is None and image is None for _, neg, image in pool)
    broken_rows = [r for r in triplet_rows if r[2] is None]
    assert len(broken_rows) == 1 and broken_rows[0][1] is not None  # its negative caption stays
    assert sum(b.skipped for b in batches) == 1
    assert any("variations/missing.png" in r.getMessage() and "negative image" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_csv_negative_columns(shapes, triplets):
    first = triplets.records[0]
    pairs = read_csv_pairs(triplets.tsv, shapes.images, "filepath", "title", "\t", neg_caption_key="neg_caption",
                           neg_image_key="neg_image")  # fmt: skip
    assert len(pairs) == triplets.num_sources
    assert pairs[0].negatives == (first.neg_caption,) and pairs[0].neg_valid == (True,)
    assert pairs[0].neg_image == str(shapes.images / first.neg_image)
    assert pairs[-1].negatives == () and pairs[-1].neg_image is None  # empty cells: no negative
    captions_only = read_csv_pairs(triplets.tsv, shapes.images, "filepath", "title", "\t",
                                   neg_caption_key="neg_caption")
    assert captions_only[0].negatives == (first.neg_caption,) and all(p.neg_image is None for p in captions_only)
    cfg = DataConfig(dataset_type="csv", dataset=triplets.tsv, image_root=shapes.images, workers=0,
                     csv_neg_caption_key="neg_caption", csv_neg_image_key="neg_image")  # fmt: skip
    batches = list(build_train_data(_triplet_request(cfg)).loader)
    valid = torch.cat([b.neg_image_valid for b in batches])
    assert valid.tolist().count(False) == 1 and sum(b.neg_images.shape[0] for b in batches) == len(valid) - 1
    cfg.csv_neg_image_key = None  # captions only: a loss on negative images finds none
    with pytest.raises(DataError, match="the loss needs negative images but no record of .*triplets.tsv names one"):
        build_train_data(_triplet_request(cfg))


def test_webdataset_negative_image_keys(tmp_path, shapes, triplets, caplog):
    pattern = write_triplet_shards(tmp_path / "shards", shapes, triplets.records, corrupt_negative=4)
    by_neg = {r.neg_caption: r for r in triplets.records}
    with caplog.at_level(logging.WARNING):
        groups = list(WebDatasetPairs(pattern, to_tensor, normalize_captions=False, negative_images=True))
    pairs = [p for g in groups for p in g.pairs]
    assert len(pairs) == triplets.num_sources and sum(len(g.skipped) for g in groups) == 1
    for p in pairs:
        index = int(p.negatives[1].split()[-1])
        assert p.negatives[0] in by_neg and p.negatives[1] == f"text negative {index}"  # the painted caption first
        if index == 4:  # its negative image is no image: the pair stays, without it
            assert p.neg_image is None
        else:
            assert torch.equal(p.neg_image, to_tensor(load_rgb(shapes.images / by_neg[p.negatives[0]].neg_image)))
    assert {int(p.negatives[1].split()[-1]) % 3 for p in pairs} == {0, 1, 2}  # both spellings were read
    assert any("negative image" in r.getMessage() for r in caplog.records)
    assert all(p.neg_image is None for g in WebDatasetPairs(pattern, to_tensor) for p in g.pairs)  # not decoded
    batch = next(iter(build_train_data(_triplet_request(wds_cfg(pattern), batch_size=3)).loader))
    assert batch.neg_texts.shape[:2] == (3, 1) and batch.neg_image_valid.shape == (3,)
    plain = write_triplet_shards(tmp_path / "plain", shapes, triplets.records, with_negatives=False)
    with pytest.raises(DataError, match=r"needs negative images, but the first sample of .*shard-000\.tar has none"):
        build_train_data(_triplet_request(wds_cfg(plain)))


def test_triplet_loss_without_negative_images_is_refused_in_one_line(shapes, triplets, capsys):
    base = ["--loss", "triplet", "--image-root", str(shapes.images), "--workers", "0", "--device", "cpu"]
    for extra in (["--dataset-type", "variations", "--dataset", str(shapes.variations_json)],
                  ["--dataset-type", "coco", "--dataset", str(shapes.coco_json)],
                  ["--dataset-type", "text_negatives", "--dataset", str(shapes.negatives_jsonl)],
                  ["--dataset-type", "csv", "--dataset", str(triplets.tsv), "--csv-neg-caption-key", "neg_caption"]):
        assert train.main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("genemi train: error: --loss triplet needs negative images") and "\n" not in err
        assert f"--dataset-type {extra[1]} " in err and "--dataset-type triplets" in err
    with pytest.raises(ConfigError, match="--csv-neg-image-key needs --csv-neg-caption-key"):
        DataConfig(dataset_type="csv", csv_neg_image_key="neg_image")
    for kind, extra in (("triplets", {}), ("webdataset", {}), ("csv", {"csv_neg_caption_key": "n",
                                                                      "csv_neg_image_key": "i"})):
        TrainConfig(data=DataConfig(dataset_type=kind, **extra), loss=LossConfig(name="triplet"))
    # the caption-negative losses now accept the types that carry negative captions
    TrainConfig(data=DataConfig(dataset_type="csv", csv_neg_caption_key="n"), loss=LossConfig(name="negclip"))
    TrainConfig(data=DataConfig(dataset_type="triplets"), loss=LossConfig(name="ceclip"))
    with pytest.raises(ConfigError, match="--loss negclip needs hard-negative captions"):
        TrainConfig(data=DataConfig(dataset_type="csv"), loss=LossConfig(name="negclip"))
