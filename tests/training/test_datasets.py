"""The dataset-type registry, each reader through it, WebDataset splitting and epoch length, and --encoding."""

import json
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from genemi.errors import ConfigError, DataError, ManifestError
from genemi.training import train
from genemi.training.config import DataConfig
from genemi.training.datasets import DATASET_TYPES, build_train_data
from genemi.training.datasets.base import DataRequest
from genemi.training.datasets.webdataset import WebDatasetPairs
from genemi.training.mining import mining_spec
from genemi.training.data import read_coco_pairs, read_csv_pairs, read_text_negative_pairs, read_variation_records
from tests.training.wds_shards import caption, write_shards


def to_tensor(img):
    return torch.from_numpy(np.asarray(img.resize((8, 8)), dtype=np.float32).copy()).permute(2, 0, 1)


def tokens(texts):
    return torch.zeros(len(texts), 4, dtype=torch.long)


def request(cfg, batch_size=4, rank=0, world_size=1, needs_negatives=False, mode="item_based", tokenizer=tokens,
            needs_negative_images=False):  # fmt: skip
    return DataRequest(cfg, mining_spec(mode, groups_per_batch=4), to_tensor, tokenizer, batch_size, seed=0, rank=rank,
                       world_size=world_size, needs_negatives=needs_negatives,
                       needs_negative_images=needs_negative_images)  # fmt: skip


def captions_of(stream):
    return [p.caption for group in stream for p in group.pairs]


def byte_tokens(texts):
    """Captions as padded byte codes, so they can be read back from batches made in loader workers."""
    return torch.tensor([list(t.encode().ljust(64, b"\0")) for t in texts], dtype=torch.long)


def batch_captions(batch):
    return [bytes(row.tolist()).rstrip(b"\0").decode() for row in batch.texts]


# --- the registry -----------------------------------------------------------------------------------------


def test_dataset_type_flag_and_config_come_from_the_registry():
    action = next(a for a in train.build_parser()._actions if a.dest == "data__dataset_type")
    assert list(action.choices) == list(DATASET_TYPES) == ["variations", "coco", "text_negatives", "csv", "webdataset",
                                                          "triplets"]
    assert all(description in action.help for _, description in DATASET_TYPES.values())
    with pytest.raises(ConfigError, match="--dataset-type 'parquet': choose variations or coco"):
        DataConfig(dataset_type="parquet")


def _variation_steps(shapes):
    groups = {(r.origin_name, r.item) for r in read_variation_records(shapes.variations_json)}
    return len(groups) // 4


@pytest.mark.parametrize("name,path,negatives", [
    ("variations", "variations_json", False), ("coco", "coco_json", False),
    ("text_negatives", "negatives_jsonl", True), ("csv", "csv", False), ("webdataset", "shards", True),
])
def test_each_reader_through_the_registry(shapes, name, path, negatives):
    cfg = DataConfig(dataset_type=name, dataset=getattr(shapes, path), image_root=shapes.images, workers=0,
                     itm_threshold=None, iva_threshold=None)
    data = build_train_data(request(cfg, needs_negatives=negatives))
    want_steps = _variation_steps(shapes) if name == "variations" else shapes.num_sources // 4
    batches = list(data.loader)
    assert data.steps_per_epoch == want_steps == len(batches)
    assert all(b.skipped == 0 for b in batches)
    if name == "variations":  # four groups of up to two sibling variations
        assert all(4 <= len(b) <= 8 for b in batches)
    else:
        assert [len(b) for b in batches] == [4] * want_steps
    assert data.num_negatives == (4 if negatives else 0)
    if negatives:
        assert batches[0].neg_texts.shape[:2] == (4, 4)


# --- webdataset -------------------------------------------------------------------------------------------


def wds_cfg(pattern, **kw):
    return DataConfig(dataset_type="webdataset", dataset=pattern, workers=kw.pop("workers", 0), **kw)


def test_ranks_split_shards_by_genemis_rank_without_a_process_group(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")  # what the library's own node splitter would read
    monkeypatch.setenv("WORLD_SIZE", "1")
    pattern = write_shards(tmp_path, [5, 9, 2])
    parts = [captions_of(WebDatasetPairs(pattern, to_tensor, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(caption(s, j) for s, n in enumerate([5, 9, 2]) for j in range(n))


def test_uneven_shards_give_every_rank_the_same_steps_each_epoch(tmp_path):
    pattern = write_shards(tmp_path, [5, 9, 2])  # no split gives the two ranks equal samples
    for rank in (0, 1):
        data = build_train_data(request(wds_cfg(pattern), batch_size=2, rank=rank, world_size=2))
        assert data.steps_per_epoch == 4 and data.stats["samples"] == 16  # ceil(16 / (2 x 2))
        for epoch in (0, 1, 2):
            data.sampler.set_epoch(epoch)
            assert [len(b) for b in data.loader] == [2, 2, 2, 2]


def test_train_num_samples_and_sizes_json_set_the_epoch(tmp_path):
    pattern = write_shards(tmp_path, [5, 9, 2])
    data = build_train_data(request(wds_cfg(pattern, train_num_samples=10), batch_size=2, world_size=2))
    assert data.steps_per_epoch == 3 == len(list(data.loader))  # ceil(10 / 4)
    (tmp_path / "sizes.json").write_text(json.dumps({"shard-000.tar": 40, "shard-001.tar": 40, "shard-002.tar": 20}))
    data = build_train_data(request(wds_cfg(pattern), batch_size=2, world_size=2))
    assert data.stats["samples"] == 100 and data.steps_per_epoch == 25


def test_two_loader_workers_read_each_sample_once_per_epoch(tmp_path):
    pattern = write_shards(tmp_path, [3, 4, 2, 5])
    stream = WebDatasetPairs(pattern, to_tensor)  # one pass, no epoch length
    loader = DataLoader(stream, batch_size=None, num_workers=2, collate_fn=lambda group: group)
    seen = captions_of(loader)
    assert sorted(seen) == sorted(caption(s, j) for s, n in enumerate([3, 4, 2, 5]) for j in range(n))
    # through the registry: 4 shards of 3 over 2 workers, an epoch of 12 samples reads each exactly once
    pattern = write_shards(tmp_path / "even", [3, 3, 3, 3])
    data = build_train_data(request(wds_cfg(pattern, workers=2), batch_size=2, tokenizer=byte_tokens))
    for epoch in (0, 1):
        data.sampler.set_epoch(epoch)
        batches = list(data.loader)
        assert len(batches) == data.steps_per_epoch == 6
        got = [c for b in batches for c in batch_captions(b)]
        assert sorted(got) == sorted(caption(s, j) for s in range(4) for j in range(3))


def test_too_few_or_missing_shards_are_clear_errors(tmp_path):
    pattern = write_shards(tmp_path, [4, 4, 4])
    with pytest.raises(DataError, match=r"3 webdataset shard\(s\) cannot feed 2 process\(es\) x 2 loader worker\(s\)"
                                        r".*--workers 1 or fewer, or --dataset-resampled"):
        build_train_data(request(wds_cfg(pattern, workers=2), batch_size=2, world_size=2))
    with pytest.raises(DataError, match=r"1 webdataset shard\(s\) cannot feed 2 .*more shards, or --dataset-resampled"):
        build_train_data(request(wds_cfg(str(tmp_path / "shard-000.tar")), batch_size=2, world_size=2))
    with pytest.raises(DataError, match=r"1 webdataset shards not found, e.g. .*shard-007\.tar"):
        build_train_data(request(wds_cfg(f"{pattern}::{tmp_path / 'shard-007.tar'}")))
    resampled = build_train_data(request(wds_cfg(pattern, workers=2, dataset_resampled=True), batch_size=2,
                                         world_size=2))  # fmt: skip
    assert resampled.steps_per_epoch == 4  # ceil(12 / 4) = 3, rounded up to 2 workers


def test_resampled_stream_is_deterministic_per_epoch_and_changes_between_epochs(tmp_path):
    pattern = write_shards(tmp_path, [4, 4, 4])
    stream = WebDatasetPairs(pattern, to_tensor, seed=3, samples_per_worker=10, resampled=True)
    first = captions_of(stream)
    assert len(first) == 10 and captions_of(stream) == first
    stream.set_epoch(1)
    assert captions_of(stream) != first


def test_corrupt_shard_images_are_skipped_warned_and_counted(tmp_path, caplog):
    pattern = write_shards(tmp_path, [3, 3], corrupt={(1, 2)})
    with caplog.at_level(logging.WARNING):
        groups = list(WebDatasetPairs(pattern, to_tensor))
    assert sum(len(g.pairs) for g in groups) == 5 and sum(len(g.skipped) for g in groups) == 1
    assert any("shard-001.tar:00100002.png" in r.getMessage() for r in caplog.records)
    data = build_train_data(request(wds_cfg(pattern), batch_size=3))
    assert sum(b.skipped for b in data.loader) == 1


# --- --encoding -------------------------------------------------------------------------------------------


LATIN = "café crème"


def _latin1_files(tmp_path):
    csv = tmp_path / "pairs.tsv"
    csv.write_bytes(f"filepath\ttitle\na.png\t{LATIN}\n".encode("latin-1"))
    karpathy = tmp_path / "coco.json"
    karpathy.write_bytes(json.dumps([{"image": "a.png", "caption": LATIN}], ensure_ascii=False).encode("latin-1"))
    negs = tmp_path / "negatives.jsonl"
    record = {"id": "a", "image": "a.png", "caption": LATIN, "negatives": [{"type": "colour", "text": "x"}]}
    negs.write_bytes((json.dumps(record, ensure_ascii=False) + "\n").encode("latin-1"))
    return csv, karpathy, negs


def test_non_utf8_caption_files_name_file_line_and_byte_and_point_at_encoding(tmp_path):
    csv, karpathy, negs = _latin1_files(tmp_path)
    with pytest.raises(DataError, match=r"pairs\.tsv:2: byte offset 24 \(0xe9\).*pass --encoding"):
        read_csv_pairs(csv, None, "filepath", "title", "\t")
    with pytest.raises(DataError, match=r"coco\.json:1: byte offset \d+ \(0xe9\).*pass --encoding"):
        read_coco_pairs(karpathy, None)
    with pytest.raises(ManifestError, match=r"negatives\.jsonl:1: byte \d+ of the line \(0xe9\).*pass --encoding"):
        read_text_negative_pairs(negs, None)
    assert read_csv_pairs(csv, None, "filepath", "title", "\t", "latin-1")[0].captions == (LATIN,)
    assert read_coco_pairs(karpathy, None, "latin-1")[0].captions == (LATIN,)
    assert read_text_negative_pairs(negs, None, "latin-1")[0].captions == (LATIN,)


def test_train_encoding_flag_reaches_the_readers(tmp_path, shapes):
    csv, _, _ = _latin1_files(tmp_path)
    pairs = read_csv_pairs(shapes.csv, None, "filepath", "title", "\t")
    rows = [f"{p.image}\t{LATIN} {i}" for i, p in enumerate(pairs)]
    csv.write_bytes(("filepath\ttitle\n" + "\n".join(rows) + "\n").encode("latin-1"))

    def cfg(*extra):
        return train.resolve_config(train.build_parser().parse_args(
            ["--dataset-type", "csv", "--dataset", str(csv), "--image-root", str(shapes.images), "--workers", "0",
             *extra]))

    assert cfg().data.encoding == "utf-8" and cfg("--encoding", "latin-1").data.encoding == "latin-1"
    with pytest.raises(DataError, match=r"pairs\.tsv:2: .*--encoding"):
        build_train_data(request(cfg().data))
    seen = []
    latin = cfg("--encoding", "latin-1").data
    latin.normalize_captions = False
    for _ in build_train_data(request(latin, tokenizer=seen.extend)).loader:
        pass
    assert sorted(seen) == sorted(f"{LATIN} {i}" for i in range(shapes.num_sources))
    with pytest.raises(ConfigError, match="--encoding 'klingon': unknown text encoding"):
        cfg("--encoding", "klingon")


def test_shard_captions_follow_the_encoding(tmp_path):
    pattern = write_shards(tmp_path, [1], suffix=" " + LATIN, encoding="latin-1")
    with pytest.raises(DataError, match=r"shard-000\.tar:00000000\.txt: byte offset 36 \(0xe9\).*pass --encoding"):
        list(WebDatasetPairs(pattern, to_tensor))
    got = captions_of(WebDatasetPairs(pattern, to_tensor, encoding="latin-1", normalize_captions=False))
    assert got == [f"{caption(0, 0)} {LATIN}"]


def test_webdataset_only_flags_are_refused_elsewhere():
    with pytest.raises(ConfigError, match="apply to --dataset-type webdataset only"):
        DataConfig(dataset_type="csv", train_num_samples=100)
    with pytest.raises(ConfigError, match="--train-num-samples must be at least 1"):
        DataConfig(dataset_type="webdataset", train_num_samples=0)
