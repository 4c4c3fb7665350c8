"""Dataset readers, filters, the variation-image fix, bad images and collation."""

import json

import numpy as np
import pytest
import torch

from genemi.errors import DataError, ManifestError
from genemi.training.data import (
    MinedPairDataset,
    PairCollator,
    WebDatasetPairs,
    build_variation_table,
    expand_shards,
    filter_variations,
    normalize_caption,
    read_coco_pairs,
    read_csv_pairs,
    read_text_negative_pairs,
    read_variation_records,
)
from genemi.training.mining import GroupRequest, mining_spec

def to_tensor(img):
    return torch.from_numpy(np.asarray(img, dtype=np.float32).copy())


def test_legacy_json_and_jsonl_manifest_read_the_same_records(shapes):
    legacy = read_variation_records(shapes.variations_json)
    manifest = read_variation_records(shapes.variations_jsonl)
    assert len(legacy) == len(manifest) == shapes.num_variations
    assert [r.save for r in legacy] == [r.save for r in manifest]
    assert manifest[0].id == "00000/item_00/var_0"


def test_variation_table_uses_the_variation_image_not_the_source(shapes):
    records = read_variation_records(shapes.variations_json)
    table = build_variation_table(records, mining_spec("item_based"), shapes.images)
    first = table.pairs[0]
    assert first.image.endswith(records[0].save) and "variations/" in first.image
    assert first.captions == tuple(records[0].captions)


def test_filters_use_strict_greater_than_and_count_drops(shapes):
    records = read_variation_records(shapes.variations_json)
    kept, stats = filter_variations(records, itm_threshold=0.0, iva_threshold=14.0)
    assert all(r.mean_itm > 0 and r.iva_score > 14 for r in kept)
    assert stats["kept"] + stats["low_itm"] + stats["low_iva"] == len(records)
    everything, _ = filter_variations(records, None, None)
    assert len(everything) == len(records)
    edge = records[0].model_copy(update={"itm_score": [0.0], "iva_score": 20.0})
    assert filter_variations([edge], 0.0, 14.0)[0] == []


def test_grouping_per_mode(shapes):
    records = read_variation_records(shapes.variations_json)
    per_item = build_variation_table(records, mining_spec("item_based"), shapes.images)
    per_image = build_variation_table(records, mining_spec("image_based"), shapes.images)
    alone = build_variation_table(records, mining_spec("allinone"), shapes.images)
    assert len(per_image.groups) == shapes.num_sources
    assert len(alone.groups) == len(records)
    assert shapes.num_sources < len(per_item.groups) <= 2 * shapes.num_sources
    for group in per_item.groups:
        assert len({records[m.index].origin_name for m in group}) == 1
        assert len({records[m.index].item for m in group}) == 1


def test_include_source_adds_the_unedited_image_with_its_caption(shapes):
    records = read_variation_records(shapes.variations_json)
    table = build_variation_table(records, mining_spec("item_based"), shapes.images, shapes.images, True)
    assert len(table.sources) == len(table.groups)
    src = table.sources[0]
    assert "sources/" in src.image and src.captions == tuple(records[0].original_captions)


def test_coco_karpathy_grouped_per_image(shapes):
    pairs = read_coco_pairs(shapes.coco_json, shapes.images)
    assert len(pairs) == shapes.num_sources
    assert all(len(p.captions) == 2 for p in pairs)


def test_official_coco_captions_format(tmp_path):
    path = tmp_path / "captions_train2014.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                                "annotations": [{"id": 5, "image_id": 1, "caption": "x"},
                                                {"id": 6, "image_id": 1, "caption": "y"}]}))
    (pair,) = read_coco_pairs(path, tmp_path)
    assert pair.captions == ("x", "y")


def test_text_negatives_and_csv(shapes):
    negs = read_text_negative_pairs(shapes.negatives_jsonl, shapes.images)
    assert len(negs) == shapes.num_sources and len(negs[0].negatives) == 4
    assert negs[0].neg_valid == (True, True, True, False)
    rows = read_csv_pairs(shapes.csv, shapes.images, "filepath", "title", "\t")
    assert len(rows) == shapes.num_sources
    with pytest.raises(ManifestError, match="column 'caption'"):
        read_csv_pairs(shapes.csv, shapes.images, "filepath", "caption", "\t")


def test_malformed_manifest_names_file_and_line(tmp_path, shapes):
    bad = tmp_path / "variations.jsonl"
    lines = shapes.variations_jsonl.read_text().splitlines()
    lines[2] = lines[2].replace('"item"', '"itme"')
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match=r"variations\.jsonl:3"):
        read_variation_records(bad)


def test_missing_dataset_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_coco_pairs(tmp_path / "nope.json", None)


def test_normalize_caption_is_the_original_pre_caption():
    assert normalize_caption('A  "Red" car; parked (left)!') == "a red car parked left"
    assert len(normalize_caption("w " * 80).split()) == 50


def test_corrupt_and_missing_images_are_skipped_and_counted(shapes, tmp_path):
    records = read_variation_records(shapes.variations_json)[:6]
    root = tmp_path / "imgs"
    (root / "variations").mkdir(parents=True)
    for rec in records[:3]:
        (root / rec.save).write_bytes((shapes.images / rec.save).read_bytes())
    (root / records[3].save).write_bytes(b"not a png")  # corrupt; records 4-5 missing
    table = build_variation_table(records, mining_spec("allinone"), root)
    ds = MinedPairDataset(table, mining_spec("allinone"), to_tensor)
    loaded = [ds[GroupRequest(g, (), g)] for g in range(len(table.groups))]
    assert sum(len(g.pairs) for g in loaded) == 3
    assert sum(len(g.skipped) for g in loaded) == 3
    batch = PairCollator(lambda texts: torch.zeros(len(texts), 4, dtype=torch.long))(loaded)
    assert len(batch) == 3 and batch.skipped == 3


def test_collator_pads_negatives_and_marks_padding_invalid():
    from genemi.training.data import LoadedGroup, LoadedPair

    tok = lambda texts: torch.arange(len(texts) * 3).view(len(texts), 3)  # noqa: E731
    groups = [LoadedGroup([LoadedPair(torch.zeros(3, 2, 2), "a", ("b",), (True,)),
                           LoadedPair(torch.zeros(3, 2, 2), "c", (), ())], [])]
    batch = PairCollator(tok, num_negatives=2)(groups)
    assert batch.neg_texts.shape == (2, 2, 3)
    assert batch.neg_valid.tolist() == [[True, False], [False, False]]


def test_expand_shards_keeps_padding():
    assert expand_shards("x/s-{008..010}.tar") == ["x/s-008.tar", "x/s-009.tar", "x/s-010.tar"]
    assert expand_shards("a.tar::b-{1..2}.tar") == ["a.tar", "b-1.tar", "b-2.tar"]


def test_webdataset_streams_every_sample_with_negatives(shapes):
    ds = WebDatasetPairs(shapes.shards, to_tensor, seed=0)
    samples = list(ds)
    assert len(samples) == shapes.num_sources
    assert all(len(s.pairs) == 1 and len(s.pairs[0].negatives) == 4 for s in samples)
    # two shards over two ranks: one shard each, nothing read twice
    counts = [len(list(WebDatasetPairs(shapes.shards, to_tensor, rank=r, world_size=2))) for r in range(2)]
    assert counts == [shapes.num_sources // 2] * 2
