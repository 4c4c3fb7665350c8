"""``webdataset``: tar shards streamed with the ``webdataset`` library, for data too large to index.

Each sample is ``KEY.jpg|jpeg|png|webp`` + ``KEY.txt`` (+ ``KEY.json`` whose ``negatives`` lists strings or
``{text, valid}`` objects), as ``genemi generate export --formats webdataset`` writes them. A whole-image hard
negative (TripletCLIP) adds ``KEY.neg_caption.txt`` (or ``KEY.neg_caption`` / ``KEY.neg_txt``), the rewritten
caption, and ``KEY.neg_image.jpg|jpeg|png|webp`` (or ``KEY.neg_jpg`` ...), its picture; the negative caption
comes first among the sample's negatives, and a negative image without a negative caption is ignored.

Splitting: every epoch the shard list is shuffled with ``(seed, epoch)`` (the same order on every rank), then
rank ``r`` of ``R`` takes every ``R``-th shard from ``r`` (genemi's own rank, from the launcher's variables)
and each DataLoader worker every ``W``-th of those, so no sample is read twice in a pass. Samples are shuffled
in a buffer seeded by ``(seed, epoch, rank, worker)``. ``--dataset-resampled`` instead draws shards with
replacement per worker (``wds.ResampledShards``, seeded the same way).

Epoch length (open_clip's rule): ``N`` samples (``--train-num-samples``; else ``sizes.json`` next to the
shards; else counted from the shards' tar headers once at start) give ``ceil(N / (batch x ranks))`` batches
per rank, rounded up to a multiple of the worker count. Every worker streams exactly its share
(``with_epoch``), repeating its shards when they run short, so every rank runs the same number of steps
however unevenly samples are spread over shards; ranks never wait on each other at the end of an epoch.
"""

from __future__ import annotations

import io
import json
import logging
import math
import random
import tarfile
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.shardlists import expand_urls
from webdataset.tariterators import base_plus_ext
from webdataset.utils import make_seed

from genemi.caption_files import read_json
from genemi.errors import DataError, ImageError
from genemi.training.datasets.base import (DataRequest, LoadedGroup, PairSpec, TrainData, negative_image_or_skip,
                                           pair_with_image, skip_pair)
from genemi.training.datasets.collate import PairCollator

logger = logging.getLogger(__name__)

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
#: a sample's negative caption (TripletCLIP's T'), first found wins
NEG_CAPTION_EXTS = ("neg_caption.txt", "neg_caption", "neg_txt")
#: its picture (TripletCLIP's I'), first found wins
NEG_IMAGE_EXTS = tuple(f"neg_image.{e}" for e in IMAGE_EXTS) + tuple(f"neg_{e}" for e in IMAGE_EXTS)
#: open_clip's per-shard sample counts: ``{"shard-000.tar": 10000, ...}`` next to the shards
SIZES_FILE = "sizes.json"
#: samples held for shuffling within a worker's stream
SHUFFLE_BUFFER = 1000


def expand_shards(pattern: str) -> list[str]:
    """``a-{000..002}.tar`` -> three names (zero padding kept); ``::`` separates several patterns."""
    return expand_urls(pattern)


def shard_urls(shards: str | Sequence[str]) -> list[str]:
    """The shard files of a pattern (or list); missing ones are an error."""
    urls = expand_shards(shards) if isinstance(shards, str) else [str(u) for u in shards]
    missing = [u for u in urls if not Path(u).is_file()]
    if missing:
        raise DataError(f"{len(missing)} webdataset shards not found, e.g. {missing[0]}")
    return urls


def iter_tar_samples(url: str) -> Iterator[dict[str, Any]]:
    """One shard's samples as the library groups them: ``{"__key__", "__url__", ext: bytes, ...}``."""
    return wds.tarfile_samples([{"url": str(url)}])


def count_samples(urls: Sequence[str]) -> int:
    """Samples in ``urls``: from ``sizes.json`` next to the shards when it lists all of them, else one pass
    over the tar headers (nothing is read but headers, nothing is written)."""
    sizes_path = Path(urls[0]).parent / SIZES_FILE
    if sizes_path.is_file():
        sizes = read_json(sizes_path)
        names = [Path(u).name for u in urls]
        if isinstance(sizes, dict) and all(n in sizes for n in names):
            return sum(int(sizes[n]) for n in names)
        logger.warning("%s does not list every shard; counting samples from the tar headers", sizes_path)
    total = 0
    for url in urls:
        try:
            with tarfile.open(url) as tar:
                total += len({base_plus_ext(m.name)[0] for m in tar if m.isreg()} - {None})
        except (OSError, tarfile.TarError) as exc:
            raise DataError(f"{url}: cannot read the shard to count its samples ({exc}); "
                            "pass --train-num-samples") from exc  # fmt: skip
    return total


def epoch_length(num_samples: int, batch_size: int, world_size: int, workers: int) -> tuple[int, int]:
    """``(batches per rank, samples per loader worker)`` of an epoch of about ``num_samples`` samples."""
    workers = max(1, workers)
    batches = math.ceil(num_samples / (batch_size * world_size))
    per_worker = math.ceil(batches / workers)
    return per_worker * workers, per_worker * batch_size


def _split_by_rank(src: Iterable, rank: int, world_size: int) -> Iterator:
    """The node splitter: genemi's rank and world size, whether or not torch.distributed is initialised."""
    return islice(src, rank, None, world_size)


def _stream_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of this loader worker's stream in ``epoch`` (also ResampledShards' ``worker_seed``)."""
    info = get_worker_info()
    return make_seed(seed, epoch, rank, info.id if info else 0)


def _warn_and_continue(exn: Exception) -> bool:
    logger.warning("webdataset: %s (skipped)", exn)
    return True


class WebDatasetPairs(IterableDataset):
    """Streams :class:`LoadedGroup` items (one pair each) from tar shards, split over ranks and workers.

    ``samples_per_worker`` fixes the epoch: every worker yields exactly that many samples, repeating its
    shards if needed (``None``: one pass over this worker's shards, for reading a set back).
    """

    def __init__(self, shards: str | Sequence[str], transform: Callable, seed: int = 0, rank: int = 0,
                 world_size: int = 1, shuffle_buffer: int = SHUFFLE_BUFFER, normalize_captions: bool = True,
                 samples_per_worker: int | None = None, resampled: bool = False,
                 encoding: str = "utf-8", negative_images: bool = False):  # fmt: skip
        self.urls = shard_urls(shards)
        self.transform, self.seed, self.rank, self.world_size = transform, seed, rank, world_size
        self.shuffle_buffer, self.normalize, self.encoding = shuffle_buffer, normalize_captions, encoding
        self.samples_per_worker, self.resampled, self.epoch = samples_per_worker, resampled, 0
        self.negative_images = negative_images  # also decode the samples' negative images

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's shard order and shuffling (a stream restarts at epoch boundaries only)."""
        self.epoch = epoch

    def pipeline(self) -> wds.DataPipeline:
        """This worker's stream for the current epoch."""
        rng = random.Random(_stream_seed(self.seed, self.epoch, self.rank))
        if self.resampled:
            shards: list = [wds.ResampledShards(self.urls, deterministic=True,
                                                worker_seed=partial(_stream_seed, self.seed, self.epoch, self.rank))]
        else:
            shards = [wds.SimpleShardList(self.urls, seed=make_seed(self.seed, self.epoch)),
                      partial(_split_by_rank, rank=self.rank, world_size=self.world_size), wds.split_by_worker]
        stream = wds.DataPipeline(
            *shards,
            wds.tarfile_to_samples(handler=_warn_and_continue),
            wds.shuffle(self.shuffle_buffer, initial=min(100, self.shuffle_buffer), rng=rng),
            wds.map(partial(self._decode, rng=rng)),
        )
        return stream.with_epoch(self.samples_per_worker) if self.samples_per_worker else stream

    def __iter__(self) -> Iterator[LoadedGroup]:
        count = 0
        for item in self.pipeline():
            count += 1
            yield item
        if self.samples_per_worker and count < self.samples_per_worker:
            info = get_worker_info()
            worker = info.id if info else 0
            raise DataError(f"webdataset: the shards of rank {self.rank}, loader worker {worker} ran dry "
                            f"after {count} of its {self.samples_per_worker} samples this epoch (a pass over them "
                            "gave no readable sample; see the warnings above)")

    def _decode(self, sample: dict[str, Any], rng: random.Random) -> LoadedGroup:
        key = f"{sample.get('__url__', '?')}:{sample.get('__key__', '?')}"
        out = LoadedGroup([], [])
        ext = next((e for e in IMAGE_EXTS if e in sample), None)
        if ext is None or "txt" not in sample:
            skip_pair(out, key, f"{key}: sample without image or txt")
            return out
        caption = self._text(sample, "txt", key).strip()
        try:
            meta = json.loads(self._text(sample, "json", key)) if "json" in sample else {}
        except json.JSONDecodeError as exc:
            skip_pair(out, key, f"{key}.json: invalid JSON ({exc.msg})")
            return out
        try:
            image = self._image(sample[ext], f"{key}.{ext}")
        except ImageError as exc:
            skip_pair(out, f"{key}.{ext}", str(exc))
            return out
        negs = meta.get("negatives", []) if isinstance(meta, dict) else []
        negatives = tuple(n["text"] if isinstance(n, dict) else str(n) for n in negs)
        valid = tuple(bool(n.get("valid", True)) if isinstance(n, dict) else True for n in negs)
        neg_caption_ext = next((e for e in NEG_CAPTION_EXTS if e in sample), None)
        neg_image_ext = next((e for e in NEG_IMAGE_EXTS if e in sample), None) if neg_caption_ext else None
        if neg_caption_ext:
            negatives = (self._text(sample, neg_caption_ext, key).strip(), *negatives)
            valid = (True, *valid)
        pair = pair_with_image(PairSpec(key, (caption,), negatives, valid), image, rng, self.normalize)
        if self.negative_images and neg_image_ext:
            name = f"{key}.{neg_image_ext}"
            pair.neg_image = negative_image_or_skip(name, lambda: self._image(sample[neg_image_ext], name), out)
        out.pairs.append(pair)
        return out

    def _text(self, sample: dict[str, Any], ext: str, key: str) -> str:
        raw = sample[ext]
        try:
            return raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise DataError(f"{key}.{ext}: byte offset {exc.start} (0x{raw[exc.start]:02x}) is not valid "
                            f"{self.encoding}; pass --encoding (e.g. latin-1) or re-encode the captions as UTF-8"
                            ) from exc

    def _image(self, data: bytes, name: str):
        """The transformed image; ``ImageError`` naming it when the bytes are no image."""
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as img:
                return self.transform(img.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{name}: {exc}") from exc


def check_negative_images(url: str) -> None:
    """Refuse shards whose first sample has no negative image with its caption (a loss on negative images would
    silently train on none); later samples without one are rows without a negative."""
    first = next(iter(iter_tar_samples(url)), {})
    if not any(e in first for e in NEG_CAPTION_EXTS) or not any(e in first for e in NEG_IMAGE_EXTS):
        keys = ", ".join(sorted(k for k in first if not k.startswith("__"))) or "none"
        raise DataError(f"the loss needs negative images, but the first sample of {url} has none (its files: {keys}; "
                        "expected neg_image.<jpg|jpeg|png|webp> or neg_<jpg|...>, with neg_caption.txt, neg_caption "
                        "or neg_txt)")


def build(req: DataRequest) -> TrainData:
    """The streamed loader; its epoch has the same number of batches on every rank (see the module notes)."""
    cfg = req.cfg
    urls = shard_urls(str(req.dataset()))
    workers = max(1, cfg.workers)
    if not cfg.dataset_resampled and len(urls) < req.world_size * workers:
        fewer = f"--workers {len(urls) // req.world_size} or fewer, " if len(urls) >= req.world_size else ""
        raise DataError(
            f"{len(urls)} webdataset shard(s) cannot feed {req.world_size} process(es) x {workers} loader worker(s): "
            f"each worker needs a shard of its own. Use more shards, {fewer}or --dataset-resampled"
        )
    num_samples = cfg.train_num_samples or count_samples(urls)
    if num_samples < 1:
        raise DataError(f"the webdataset shards {cfg.dataset} hold no samples")
    if req.needs_negative_images:
        check_negative_images(urls[0])
    batches, per_worker = epoch_length(num_samples, req.batch_size, req.world_size, cfg.workers)
    dataset = WebDatasetPairs(urls, req.transform, req.seed, req.rank, req.world_size,
                              normalize_captions=cfg.normalize_captions, samples_per_worker=per_worker,
                              resampled=cfg.dataset_resampled, encoding=cfg.encoding,
                              negative_images=req.needs_negative_images)  # fmt: skip
    # a loss on negative images takes one negative caption: the one the negative image depicts
    k = 1 if req.needs_negative_images else cfg.max_negatives or (4 if req.needs_negatives else 0)
    collate = PairCollator(req.tokenizer, k, negative_images=req.needs_negative_images)
    loader = DataLoader(dataset, batch_size=req.batch_size, collate_fn=collate, **req.loader_kwargs())
    stats = {"shards": len(urls), "samples": num_samples, "epoch_samples": batches * req.batch_size * req.world_size}
    return TrainData(loader, dataset, k, batches, stats)
