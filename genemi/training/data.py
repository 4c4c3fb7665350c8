"""Training data: one reader per on-disk format, one pair table, one dataset that loads mined groups.

Formats (``--dataset-type``):

* ``variations``: GeNeMi variation records, either the original ``variation_annotation.json`` (a JSON
  list) or genemi's ``.jsonl`` manifest of :class:`~genemi.records.VariationRecord`.
  The image of a record is the **variation** (``save``), not ``source`` (the original used ``source``).
* ``coco``: COCO Karpathy JSON (``[{image, caption, image_id}]``, BLIP's layout; or ``captions`` lists),
  or an official ``captions_*.json``; grouped per image, one random caption per access.
* ``text_negatives``: JSONL of :class:`~genemi.records.TextNegativeRecord`
  (caption + typed hard negatives + validity), for ``--loss ceclip|negclip``.
* ``csv``: open_clip-style CSV/TSV (``--csv-img-key``, ``--csv-caption-key``, ``--csv-separator``).
* ``webdataset``: tar shards (``shard-{000..099}.tar``) with ``jpg|png|webp`` + ``txt`` (+ optional
  ``json`` with ``negatives``) per sample, streamed; for data too large to index.

A missing or corrupt image is skipped with a warning and counted (``Batch.skipped``), never a crash.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from genemi.caption_files import read_caption_entries, read_json
from genemi.errors import DataError, ImageError, ManifestError
from genemi.records import TextNegativeRecord, VariationRecord, variation_from_legacy
from genemi.score_filters import passes
from genemi.images import load_rgb
from genemi.text.normalize import normalize_caption
from genemi.manifest import read_records
from genemi.training.mining import GroupRequest, Member, MiningSpec, draw_members

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
    """Everything the dataset needs: pairs, mining groups over them, and an optional pool (COCO)."""

    pairs: list[PairSpec]
    groups: list[list[Member]]
    pool: list[PairSpec] = field(default_factory=list)
    sources: dict[int, PairSpec] = field(default_factory=dict)  # group -> unedited source pair
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def num_negatives(self) -> int:
        return max((len(p.negatives) for p in [*self.pairs, *self.pool]), default=0)


def _join(root: Path | None, path: str) -> str:
    return str(Path(path) if root is None or Path(path).is_absolute() else Path(root) / path)


# --- variations -------------------------------------------------------------------------------------


def read_variation_records(path: str | Path) -> list[VariationRecord]:
    """Read the original ``variation_annotation.json`` or a genemi ``.jsonl`` variation manifest."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return read_records(path, VariationRecord)
    data = read_json(path)
    if isinstance(data, dict) and "records" in data:
        data = data["records"]
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a JSON list of variation records")
    records = []
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise ManifestError(f"{path}: record {i} is not an object")
        try:
            records.append(variation_from_legacy(obj))
        except Exception as exc:  # pydantic.ValidationError
            raise ManifestError(f"{path}: record {i} ({obj.get('name', '?')}): {exc}") from exc
    return records


def filter_variations(
    records: Sequence[VariationRecord], itm_threshold: float | None, iva_threshold: float | None
) -> tuple[list[VariationRecord], dict[str, int]]:
    """Keep ok records with mean ITM > ``itm_threshold`` and IVA > ``iva_threshold`` (None disables a filter).

    A record without the score a filter needs is dropped by that filter.
    """
    kept, stats = [], {"records": len(records), "failed": 0, "low_itm": 0, "low_iva": 0, "no_caption": 0}
    for rec in records:
        if rec.status != "ok":
            stats["failed"] += 1
        elif not rec.captions:
            stats["no_caption"] += 1
        elif not passes(rec.mean_itm, itm_threshold):
            stats["low_itm"] += 1
        elif not passes(rec.iva_score, iva_threshold):
            stats["low_iva"] += 1
        else:
            kept.append(rec)
    stats["kept"] = len(kept)
    return kept, stats


def build_variation_table(
    records: Sequence[VariationRecord],
    spec: MiningSpec,
    image_root: Path | None,
    source_root: Path | None = None,
    include_source: bool = False,
) -> PairTable:
    """Group variation records by ``spec.group_by`` into a pair table (groups in first-seen order)."""
    pairs: list[PairSpec] = []
    grouped: dict[tuple, list[Member]] = {}
    first: dict[tuple, VariationRecord] = {}
    for rec in records:
        key = tuple(str(getattr(rec, k)) for k in spec.group_by)
        grouped.setdefault(key, []).append(Member(len(pairs), rec.item, rec.mean_itm))
        first.setdefault(key, rec)
        pairs.append(PairSpec(_join(image_root, rec.save), tuple(rec.captions)))
    table = PairTable(pairs, list(grouped.values()))
    if include_source:
        missing = 0
        for g, key in enumerate(grouped):
            rec = first[key]
            captions = tuple(rec.original_captions) or ((rec.tag2text_caption,) if rec.tag2text_caption else ())
            if captions:
                table.sources[g] = PairSpec(_join(source_root, rec.source), captions)
            else:
                missing += 1
        if missing:
            logger.warning("--include-source: %d groups have no original caption; their source is left out", missing)
    return table


# --- flat caption formats ----------------------------------------------------------------------------


def read_coco_pairs(path: str | Path, image_root: Path | None) -> list[PairSpec]:
    """COCO captions grouped per image (Karpathy list with ``caption``/``captions``, or official COCO)."""
    by_image: dict[str, list[str]] = defaultdict(list)
    for entry in read_caption_entries(path):
        by_image[entry.image].append(entry.caption)
    return [PairSpec(_join(image_root, img), tuple(caps)) for img, caps in by_image.items()]


def read_text_negative_pairs(path: str | Path, image_root: Path | None) -> list[PairSpec]:
    """Caption + typed hard negatives (JSONL), one pair each; negatives keep their file order (type order).

    Every record must carry the same negative types in the same order (the losses index negatives by
    position): a file that mixes layouts, e.g. written with ``--types ceclip`` and then the default, is refused.
    """
    records = read_records(path, TextNegativeRecord)
    layouts: dict[tuple[str, ...], int] = {}
    for r in records:
        key = tuple(n.type for n in r.negatives)
        layouts[key] = layouts.get(key, 0) + 1
    if len(layouts) > 1:
        (a, na), (b, nb) = sorted(layouts.items(), key=lambda kv: -kv[1])[:2]
        raise DataError(f"{path}: records carry different negative layouts ({na} with {len(a)} negatives "
                        f"[{', '.join(a[:4])}{', ...' if len(a) > 4 else ''}], {nb} with {len(b)} "
                        f"[{', '.join(b[:4])}{', ...' if len(b) > 4 else ''}]); regenerate the file with one --types")
    return [
        PairSpec(_join(image_root, r.image), (r.caption,), tuple(n.text for n in r.negatives),
                 tuple(n.valid for n in r.negatives))
        for r in records
    ]


def read_csv_pairs(
    path: str | Path, image_root: Path | None, img_key: str, caption_key: str, separator: str
) -> list[PairSpec]:
    """open_clip's CSV/TSV layout: one row per (image, caption)."""
    entries = read_caption_entries(path, "csv", csv_img_key=img_key, csv_caption_key=caption_key, csv_separator=separator)
    return [PairSpec(_join(image_root, e.image), (e.caption,)) for e in entries]


def singleton_table(pairs: list[PairSpec], pool: list[PairSpec] | None = None) -> PairTable:
    """Each pair its own group (plain contrastive batches)."""
    return PairTable(pairs, [[Member(i)] for i in range(len(pairs))], pool or [])


# --- loading -------------------------------------------------------------------------------------------


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


def _load_or_skip(pair, transform, rng, normalize, out: LoadedGroup) -> None:
    try:
        out.pairs.append(load_pair(pair, transform, rng, normalize))
    except ImageError as exc:
        out.skipped.append(str(exc))
        if pair.image not in _warned:
            _warned.add(pair.image)
            logger.warning("skipping pair: %s", exc)


class MinedPairDataset(Dataset):
    """Map-style dataset indexed by :class:`GroupRequest` (from :class:`MiningBatchSampler`)."""

    def __init__(self, table: PairTable, spec: MiningSpec, transform: Callable, normalize_captions: bool = True):
        self.table, self.spec, self.transform, self.normalize = table, spec, transform, normalize_captions

    def __len__(self) -> int:
        return len(self.table.groups)

    def __getitem__(self, request: GroupRequest) -> LoadedGroup:
        rng = random.Random(request.seed)
        out = LoadedGroup([], [])
        for member in draw_members(self.table.groups[request.group], self.spec, rng):
            _load_or_skip(self.table.pairs[member.index], self.transform, rng, self.normalize, out)
        if request.group in self.table.sources:
            _load_or_skip(self.table.sources[request.group], self.transform, rng, self.normalize, out)
        for idx in request.pool:
            _load_or_skip(self.table.pool[idx], self.transform, rng, self.normalize, out)
        return out


# --- webdataset ----------------------------------------------------------------------------------------

_BRACES = re.compile(r"\{(\d+)\.\.(\d+)\}")
_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def expand_shards(pattern: str) -> list[str]:
    """``a-{000..002}.tar`` -> three names (zero padding kept); ``::`` separates several patterns."""
    out: list[str] = []
    for part in pattern.split("::"):
        match = _BRACES.search(part)
        if not match:
            out.append(part)
            continue
        lo, hi = match.group(1), match.group(2)
        for i in range(int(lo), int(hi) + 1):
            out.extend(expand_shards(part[: match.start()] + str(i).zfill(len(lo)) + part[match.end():]))
    return out


def iter_tar_samples(path: str) -> Iterator[dict[str, bytes]]:
    """Group consecutive tar members by key (name up to the first dot after the last slash)."""
    current: dict[str, bytes] = {}
    key = None
    with tarfile.open(path, "r|*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            dirname, _, base = member.name.rpartition("/")
            stem, _, ext = base.partition(".")
            sample_key = f"{dirname}/{stem}"
            if key is not None and sample_key != key:
                yield current
                current = {}
            key = sample_key
            fh = tar.extractfile(member)
            current["__key__"] = sample_key.encode()
            current[ext.lower()] = fh.read() if fh else b""
    if current:
        yield current


class WebDatasetPairs(IterableDataset):
    """Streams pairs from tar shards; shards are split over ranks and workers and shuffled per epoch."""

    def __init__(self, shards: str, transform: Callable, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle_buffer: int = 1000, normalize_captions: bool = True):  # fmt: skip
        self.urls = expand_shards(shards)
        missing = [u for u in self.urls if not Path(u).is_file()]
        if missing:
            raise DataError(f"{len(missing)} webdataset shards not found, e.g. {missing[0]}")
        self.transform, self.seed, self.rank, self.world_size = transform, seed, rank, world_size
        self.shuffle_buffer, self.normalize, self.epoch = shuffle_buffer, normalize_captions, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[LoadedGroup]:
        rng = random.Random(hash((self.seed, self.epoch)))
        urls = list(self.urls)
        rng.shuffle(urls)
        info = get_worker_info()
        wid, nworkers = (info.id, info.num_workers) if info else (0, 1)
        mine = urls[self.rank * nworkers + wid :: self.world_size * nworkers]
        buffer: list[LoadedGroup] = []
        for url in mine:
            for sample in iter_tar_samples(url):
                item = self._decode(sample, rng)
                if item is None:
                    continue
                buffer.append(item)
                if len(buffer) >= self.shuffle_buffer:
                    yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer

    def _decode(self, sample: dict[str, bytes], rng: random.Random) -> LoadedGroup | None:
        from PIL import Image

        key = sample.get("__key__", b"?").decode()
        ext = next((e for e in _IMAGE_EXTS if e in sample), None)
        if ext is None or "txt" not in sample:
            return LoadedGroup([], [f"{key}: sample without image or txt"])
        try:
            with Image.open(io.BytesIO(sample[ext])) as img:
                image = self.transform(img.convert("RGB"))
        except (OSError, ValueError) as exc:
            return LoadedGroup([], [f"{key}.{ext}: {exc}"])
        negatives, valid = (), ()
        if "json" in sample:
            meta = json.loads(sample["json"])
            negs = meta.get("negatives", [])
            negatives = tuple(n["text"] if isinstance(n, dict) else str(n) for n in negs)
            valid = tuple(bool(n.get("valid", True)) if isinstance(n, dict) else True for n in negs)
        pair = PairSpec(key, (sample["txt"].decode("utf-8").strip(),), negatives, valid)
        return LoadedGroup([pair_with_image(pair, image, rng, self.normalize)], [])


# --- batching ------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """A training batch: ``images [N,3,H,W]``, ``texts [N,L]``, optional ``neg_texts [N,K,L]`` + ``neg_valid [N,K]``."""

    images: torch.Tensor
    texts: torch.Tensor
    neg_texts: torch.Tensor | None
    neg_valid: torch.Tensor | None
    skipped: int

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device, non_blocking: bool = True) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch(move(self.images), move(self.texts), move(self.neg_texts), move(self.neg_valid), self.skipped)


class PairCollator:
    """Flatten loaded groups into a :class:`Batch` and tokenize captions (and ``num_negatives`` negatives)."""

    def __init__(self, tokenizer: Callable[[list[str]], torch.Tensor], num_negatives: int = 0):
        self.tokenizer, self.num_negatives = tokenizer, num_negatives

    def __call__(self, groups: Sequence[LoadedGroup]) -> Batch:
        pairs = [p for g in groups for p in g.pairs]
        skipped = sum(len(g.skipped) for g in groups)
        if not pairs:
            return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), None, None, skipped)
        images = torch.stack([p.image for p in pairs])
        texts = self.tokenizer([p.caption for p in pairs])
        neg_texts = neg_valid = None
        k = self.num_negatives
        if k:
            flat, valid = [], []
            for p in pairs:
                negs = list(p.negatives[:k]) + [""] * (k - len(p.negatives[:k]))
                ok = list(p.neg_valid[:k]) + [False] * (k - len(p.neg_valid[:k]))
                ok = [v and bool(t.strip()) for v, t in zip(ok, negs)]
                flat.extend(negs)
                valid.append(ok)
            neg_texts = self.tokenizer(flat).view(len(pairs), k, -1)
            neg_valid = torch.tensor(valid, dtype=torch.bool)
        return Batch(images, texts, neg_texts, neg_valid, skipped)


# --- assembly ------------------------------------------------------------------------------------------


@dataclass
class TrainData:
    """What the loop iterates: the loader, the object to tell the epoch, and what was read."""

    loader: torch.utils.data.DataLoader
    sampler: Any  # has set_epoch(epoch, start_batch)
    num_negatives: int
    steps_per_epoch: int | None  # None for streamed webdataset
    stats: dict[str, int]


def build_pair_table(data_cfg, spec: MiningSpec) -> PairTable:
    """Read ``data_cfg.dataset`` (+ the COCO pool) into a :class:`PairTable`."""
    kind = data_cfg.dataset_type
    if data_cfg.dataset is None and kind != "coco":
        raise DataError(f"--dataset is required for --dataset-type {kind}")
    pool = read_coco_pairs(data_cfg.coco_dataset, data_cfg.coco_image_dir) if data_cfg.coco_dataset else []
    if kind == "variations":
        records, stats = filter_variations(
            read_variation_records(data_cfg.dataset), data_cfg.itm_threshold, data_cfg.iva_threshold
        )
        source_root = data_cfg.source_image_root or data_cfg.coco_image_dir or data_cfg.image_root
        table = build_variation_table(records, spec, data_cfg.image_root, source_root, data_cfg.include_source)
        table.pool, table.stats = pool, {**stats, "groups": len(table.groups), "pool": len(pool)}
        return table
    if kind == "coco":
        path = data_cfg.dataset or data_cfg.coco_dataset
        if path is None:
            raise DataError("--dataset-type coco needs --dataset or --coco-dataset")
        pairs = read_coco_pairs(path, data_cfg.image_root or data_cfg.coco_image_dir)
        pool = [] if data_cfg.dataset is None else pool
    elif kind == "text_negatives":
        pairs = read_text_negative_pairs(data_cfg.dataset, data_cfg.image_root)
    elif kind == "csv":
        pairs = read_csv_pairs(
            data_cfg.dataset, data_cfg.image_root, data_cfg.csv_img_key, data_cfg.csv_caption_key,
            data_cfg.csv_separator,
        )  # fmt: skip
    else:
        raise DataError(f"unsupported dataset type for a pair table: {kind}")
    table = singleton_table(pairs, pool)
    table.stats = {"records": len(pairs), "groups": len(pairs), "pool": len(pool)}
    return table


def build_train_data(data_cfg, spec: MiningSpec, transform, tokenizer, batch_size: int, seed: int,
                     rank: int = 0, world_size: int = 1, needs_negatives: bool = False,
                     pin_memory: bool = False) -> TrainData:  # fmt: skip
    """Build the loader for any dataset type; for flat datasets each group is one pair."""
    from torch.utils.data import DataLoader

    from genemi.training.mining import MiningBatchSampler

    workers = data_cfg.workers
    loader_kw: dict[str, Any] = dict(num_workers=workers, pin_memory=pin_memory, persistent_workers=False)
    if workers > 0:
        loader_kw["prefetch_factor"] = 4
    if data_cfg.dataset_type == "webdataset":
        if data_cfg.dataset is None:
            raise DataError("--dataset (a shard pattern) is required for --dataset-type webdataset")
        ds = WebDatasetPairs(str(data_cfg.dataset), transform, seed, rank, world_size,
                             normalize_captions=data_cfg.normalize_captions)  # fmt: skip
        k = data_cfg.max_negatives or (4 if needs_negatives else 0)
        loader = DataLoader(ds, batch_size=batch_size, collate_fn=PairCollator(tokenizer, k), **loader_kw)
        return TrainData(loader, ds, k, None, {"shards": len(ds.urls)})
    if data_cfg.dataset_type != "variations":
        from dataclasses import replace

        spec = replace(spec, group_by=(), variations_per_group=1, pool_per_group=spec.pool_per_group
                       if data_cfg.coco_dataset and data_cfg.dataset else 0,
                       groups_per_batch=batch_size, sample_by_score=False, distinct_items=False)  # fmt: skip
    table = build_pair_table(data_cfg, spec)
    k = table.num_negatives if data_cfg.max_negatives is None else min(data_cfg.max_negatives, table.num_negatives)
    if needs_negatives and k == 0:
        raise DataError("the loss needs hard-negative captions but the dataset has none")
    sampler = MiningBatchSampler(len(table.groups), len(table.pool), spec, seed, rank, world_size)
    if len(sampler) == 0:
        raise DataError(
            f"{len(table.groups)} groups are fewer than one batch ({spec.groups_per_batch} groups x "
            f"{world_size} processes): lower the batch size or add data"
        )
    dataset = MinedPairDataset(table, sampler.spec, transform, data_cfg.normalize_captions)
    collate = PairCollator(tokenizer, k if needs_negatives else 0)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, **loader_kw)
    return TrainData(loader, sampler, k if needs_negatives else 0, len(sampler), table.stats)
