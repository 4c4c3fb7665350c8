"""The scoring core: embed every unique image and text once (batched, AMP on CUDA, optional cache), then
look similarities up. Benchmarks only ever see :class:`Embeddings`.

An :class:`Embedder` turns images and texts into L2-normalised vectors. :class:`ClipEmbedder` wraps a
genemi/open_clip model; tests inject embedders with hand-made vectors to check every metric exactly.

Exact ties. Identical inputs get bit-identical scores, so every tie rule works as documented: the embedder
gives inputs the model cannot tell apart (equal token rows, equal pixel tensors) the same vector, and a
similarity is computed by :func:`pairwise_dots`, whose value depends only on the two vectors, never on where
they stand in a matrix (a BLAS matrix-vector product sums rows in position-dependent kernels: 277 of 2,000
duplicated rows differed by ~1e-17). Full matrices (retrieval, zero-shot) use :func:`unique_product`, one
BLAS product over the unique rows and columns.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np
import torch

from genemi.errors import ImageError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRef:
    """An image file, optionally cropped to the box ``(x, y, w, h)`` (ARO's VG crops); with ``member``, ``path``
    is a zip archive and the image is that member, read from the archive directly (ColorSwap's images.zip)."""

    path: str
    box: tuple[float, float, float, float] | None = None
    member: str | None = None

    @property
    def key(self) -> str:
        key = self.path if self.member is None else f"{self.path}!{self.member}"
        return key if self.box is None else f"{key}@{','.join(f'{v:g}' for v in self.box)}"


#: open zip archives of this process, by (process id, path, size, modification time): DataLoader workers must
#: not share a handle, and a rewritten archive is opened again
_ZIPS: dict[tuple, zipfile.ZipFile] = {}


def _zip(path: str) -> zipfile.ZipFile:
    stat = os.stat(path)
    key = (os.getpid(), path, stat.st_size, stat.st_mtime_ns)
    if key not in _ZIPS:
        for old in [k for k in _ZIPS if k[:2] == key[:2]]:
            _ZIPS.pop(old).close()
        _ZIPS[key] = zipfile.ZipFile(path)
    return _ZIPS[key]


def zip_members(path: str | Path) -> list[str]:
    """The file members of a zip archive (``DataError`` naming it when it is not one)."""
    from genemi.errors import DataError

    try:
        return [i.filename for i in _zip(str(path)).infolist() if not i.is_dir()]
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable zip archive: {exc}") from exc


def image_exists(ref: ImageRef) -> bool:
    """Is there a file (or zip member) to read? Says nothing about whether it decodes."""
    if not os.path.isfile(ref.path):
        return False
    if ref.member is None:
        return True
    try:
        _zip(ref.path).getinfo(ref.member)
    except (KeyError, OSError, zipfile.BadZipFile):
        return False
    return True


def load_image(ref: ImageRef):
    """``ref`` as an RGB PIL image (cropped to its box), or ``ImageError`` naming the file (and member)."""
    from genemi.images import load_rgb

    if ref.member is None:
        img = load_rgb(ref.path)
    else:
        img = _load_member(ref.path, ref.member)
    if ref.box is not None:
        x, y, w, h = ref.box
        img = img.crop((x, y, x + w, y + h))
    return img


def _load_member(path: str, member: str):
    """A zip member decoded as :func:`genemi.images.load_rgb` decodes a file (size guard, EXIF, RGB)."""
    from genemi.images import decode_rgb

    where = f"{path}!{member}"
    try:
        data = _zip(path).read(member)
    except KeyError:
        raise ImageError(f"image not found: {where}") from None
    except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
        raise ImageError(f"cannot read image {where}: {exc}") from exc
    return decode_rgb(io.BytesIO(data), where)


class Embedder(Protocol):
    #: identifies model weights + preprocessing, for the embedding cache
    key: str

    def embed_images(self, images: Sequence[ImageRef]) -> tuple[np.ndarray, list[str | None]]:
        """``[N, D]`` float32 normalised rows, and per image ``None`` or the reason it could not be read."""

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``[M, D]`` float32 normalised rows."""


class Embeddings:
    """Embeddings of a benchmark's unique images and texts, with O(1) similarity lookups."""

    def __init__(self, images: dict[str, int], image_vecs: np.ndarray, image_errors: dict[str, str],
                 texts: dict[str, int], text_vecs: np.ndarray):
        self._images, self._image_vecs, self.image_errors = images, image_vecs, image_errors
        self._texts, self._text_vecs = texts, text_vecs
        self.from_cache = False  # True when read from an EmbeddingCache instead of computed

    @property
    def num_images(self) -> int:
        return len(self._images)

    def has_image(self, image: ImageRef) -> bool:
        return image.key in self._images and image.key not in self.image_errors

    def image(self, image: ImageRef) -> np.ndarray:
        return self._image_vecs[self._images[image.key]]

    def text(self, text: str) -> np.ndarray:
        return self._text_vecs[self._texts[text]]

    def image_matrix(self, images: Sequence[ImageRef]) -> np.ndarray:
        return self._image_vecs[[self._images[i.key] for i in images]]

    def text_matrix(self, texts: Sequence[str]) -> np.ndarray:
        return self._text_vecs[[self._texts[t] for t in texts]]

    def scores(self, images: Sequence[ImageRef], texts: Sequence[str]) -> np.ndarray:
        """``[len(images), len(texts)]`` cosine similarities (:func:`pairwise_dots`: identical inputs score
        bit-identically wherever they stand)."""
        return pairwise_dots(self.image_matrix(images), self.text_matrix(texts))

    def sims(self, image: ImageRef, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of one image with each text."""
        return self.scores([image], texts)[0]

    def image_sims(self, text: str, images: Sequence[ImageRef]) -> np.ndarray:
        """Cosine similarity of one text with each image (text-to-image retrieval sets)."""
        return self.scores(images, [text])[:, 0]

    def text_sims(self, text: str, others: Sequence[str]) -> np.ndarray:
        """Cosine similarity of one text with each other text (symmetric: s(a, b) == s(b, a) exactly)."""
        return pairwise_dots(self.text_matrix([text]), self.text_matrix(others))[0]


#: bound on the float64 temporary of :func:`pairwise_dots` (elements), processed in row blocks beyond it
_PAIRWISE_BLOCK = 1 << 22


def pairwise_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[i, j] = a[i] . b[j]`` in float64, a value that depends only on the two vectors: each product is
    formed in float64 (exact for float32 inputs), then numpy's pairwise sum runs along the vector, the same
    way for every pair. So identical rows score bit-identically wherever they stand and ``a . b == b . a``,
    which a BLAS product does not promise. For the few options of an item; see :func:`unique_product` for
    full matrices."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float64)
    step = max(1, _PAIRWISE_BLOCK // max(1, b.shape[0] * a.shape[1]))
    for start in range(0, a.shape[0], step):
        block = a[start : start + step]
        out[start : start + step] = np.multiply(block[:, None, :], b[None, :, :], dtype=np.float64).sum(axis=-1)
    return out


def _unique_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The distinct rows of ``m`` (first occurrences, in order) and, if any row repeats, each row's index
    among them (None when every row is distinct)."""
    first: dict[bytes, int] = {}
    keep: list[int] = []
    inverse = np.empty(len(m), dtype=np.int64)
    for row, vec in enumerate(np.ascontiguousarray(m)):
        key = vec.tobytes()
        if key not in first:
            first[key] = len(keep)
            keep.append(row)
        inverse[row] = first[key]
    if len(keep) == len(m):
        return m, None
    return m[keep], inverse


def unique_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` in float64 for full score matrices (retrieval, zero-shot): one BLAS product over the
    distinct rows of ``a`` and of ``b``, expanded back, so each distinct pair is computed once and identical
    rows or columns score bit-identically."""
    ua, ia = _unique_rows(a)
    ub, ib = _unique_rows(b)
    out = ua.astype(np.float64) @ ub.astype(np.float64).T
    if ia is not None:
        out = out[ia]
    if ib is not None:
        out = out[:, ib]
    return out


def embed(embedder: Embedder, images: Iterable[ImageRef], texts: Iterable[str], cache: "EmbeddingCache | None" = None,
          batch_key: str | None = None) -> Embeddings:
    """Embed the unique ``images`` and ``texts`` (from the cache when it has them)."""
    uniq_images = list({i.key: i for i in images}.values())
    uniq_texts = list(dict.fromkeys(texts))
    stored = cache.load(embedder.key, batch_key) if cache is not None and batch_key else None
    if stored is not None and set(stored["images"]) >= {i.key for i in uniq_images} and set(stored["texts"]) >= set(uniq_texts):
        logger.info("embeddings from cache (%d images, %d texts)", len(uniq_images), len(uniq_texts))
        image_index = {k: n for n, k in enumerate(stored["images"])}
        text_index = {t: n for n, t in enumerate(stored["texts"])}
        cached = Embeddings(image_index, stored["image_vecs"], stored["image_errors"], text_index, stored["text_vecs"])
        cached.from_cache = True
        return cached
    image_vecs, errors = embedder.embed_images(uniq_images) if uniq_images else (np.zeros((0, 1), np.float32), [])
    text_vecs = embedder.embed_texts(uniq_texts) if uniq_texts else np.zeros((0, 1), np.float32)
    image_errors = {i.key: e for i, e in zip(uniq_images, errors) if e is not None}
    result = Embeddings({i.key: n for n, i in enumerate(uniq_images)}, image_vecs, image_errors,
                        {t: n for n, t in enumerate(uniq_texts)}, text_vecs)
    if cache is not None and batch_key:
        cache.save(embedder.key, batch_key, [i.key for i in uniq_images], image_vecs, image_errors, uniq_texts, text_vecs)
    return result


# --- CLIP -----------------------------------------------------------------------------------------------


class _ImageDataset(torch.utils.data.Dataset):
    """Transformed pixels, the reason an image could not be read ("" if it could), and a digest of the pixels
    (identical model inputs are given one embedding)."""

    def __init__(self, images: Sequence[ImageRef], transform, size: int):
        self.images, self.transform, self.size = images, transform, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        try:
            pixels = self.transform(load_image(self.images[index]))
        except ImageError as exc:
            return torch.zeros(3, self.size, self.size), str(exc), ""
        return pixels, "", hashlib.blake2b(pixels.numpy().tobytes(), digest_size=16).hexdigest()


def share_identical(vecs: np.ndarray | torch.Tensor, keys: Sequence[object]):
    """Give every row whose key (its model input) repeats an earlier row's the earlier row's vector, in place:
    a batched forward pass may embed two identical inputs ~1e-7 apart, and identical inputs must tie exactly.
    Rows with an empty key (unreadable images) are left alone."""
    first: dict[object, int] = {}
    for row, key in enumerate(keys):
        if key:
            j = first.setdefault(key, row)
            if j != row:
                vecs[row] = vecs[j]
    return vecs


def _cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def default_workers(device: str | torch.device) -> int:
    """Image-loading processes when none are asked for. CPU: 0, images are decoded in the main process between
    forward passes (loader processes compete with the forward pass for the same cores: 1 worker measured 1.4x
    slower for ViT-B-32 on the 2-core box, docs/performance.md). CUDA: one per spare core, at most 8, so the GPU
    is not left waiting for decoding."""
    if torch.device(device).type == "cpu":
        return 0
    return min(8, max(0, _cores() - 1))


def idle_cores(window: float = 0.1) -> float | None:
    """How many CPU cores stood idle over ``window`` seconds (Linux ``/proc/stat``; None elsewhere). Sampled
    while this process waits, so it counts what the rest of the machine leaves free."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        return ticks[3] + ticks[4], sum(ticks)

    try:
        idle0, total0 = sample()
        time.sleep(window)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (idle1 - idle0) / (total1 - total0)


def default_threads(device: str | torch.device) -> int | None:
    """torch threads while embedding when none are asked for (None: leave torch's setting). CPU: the cores
    found idle when embedding starts (:func:`idle_cores`), at least 1 and at most the cores this process may
    use; without ``/proc/stat`` one per core but one. An ``OMP_NUM_THREADS`` in the environment is obeyed
    instead. Measured on the shared 2-core box: with other processes busy, 1 thread ran the harness 1.4-2.9x
    faster than 2; with the box quiet, 2 threads ran ViT-B-32 1.3x faster than 1 (docs/performance.md).
    CUDA: torch's setting (the forward pass runs on the GPU)."""
    if torch.device(device).type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    idle = idle_cores()
    cores = _cores()
    if idle is None:
        return max(1, cores - 1)
    return max(1, min(cores, round(idle)))


class ClipEmbedder:
    """Embeds with a :class:`~genemi.models.clip.ClipBundle`: eval transform, batched, AMP on CUDA.

    ``workers=None`` picks :func:`default_workers` for the device; ``threads=None`` picks
    :func:`default_threads` each time embedding starts. The thread count applies while embedding and is
    restored afterwards."""

    def __init__(self, bundle, device: str | torch.device = "cpu", batch_size: int = 256, workers: int | None = None,
                 precision: str = "auto", progress: bool = True, key: str | None = None, threads: int | None = None):
        self.bundle, self.device, self.batch_size = bundle, torch.device(device), batch_size
        self.workers = default_workers(self.device) if workers is None else workers
        self.threads = threads  # None: default_threads() when each embedding starts (the machine's load then)
        self.threads_used: int | None = None
        self.model = bundle.model.to(self.device).eval()
        self.transform = bundle.transform(is_train=False)
        self.progress = progress
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self._key = key

    @property
    def key(self) -> str:
        """The model's cache key, computed on first use (it hashes the weights: only caches and reports need it)."""
        if self._key is None:
            self._key = model_key(self.bundle)
        return self._key

    def _autocast(self):
        if self.dtype is None:
            import contextlib

            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @contextmanager
    def _threads(self):
        """``self.threads`` (else :func:`default_threads`) torch threads for the duration (restored after)."""
        previous = torch.get_num_threads()
        threads = self.threads or default_threads(self.device)
        self.threads_used = threads or previous  # reported by benchmarks/eval_throughput.py
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    @torch.no_grad()
    def embed_images(self, images: Sequence[ImageRef]) -> tuple[np.ndarray, list[str | None]]:
        from tqdm import tqdm

        size = self.bundle.preprocess_cfg.get("size", 224)
        size = size[0] if isinstance(size, (list, tuple)) else size
        loader = torch.utils.data.DataLoader(
            _ImageDataset(images, self.transform, size), batch_size=self.batch_size, num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
        )
        vecs, errors, digests = [], [], []
        with self._threads():
            for pixels, errs, keys in tqdm(loader, desc="images", unit="batch", disable=not self.progress,
                                           leave=False):
                with self._autocast():
                    feats = self.model.encode_image(pixels.to(self.device, non_blocking=True))
                vecs.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
                errors += [e or None for e in errs]
                digests += list(keys)
        for e in errors:
            if e:
                logger.warning("%s", e)
        return share_identical(torch.cat(vecs).numpy(), digests), errors

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        from tqdm import tqdm

        from genemi.models.clip import encode_text_trimmed

        if not texts:
            return np.zeros((0, 1), np.float32)
        tokens = self.bundle.tokenizer(list(texts))
        keys = [row.tobytes() for row in tokens.numpy()]
        # most tokens first (open_clip pads with 0): a batch is trimmed to its longest text, so batches of equal
        # length waste no padding; results are reordered back
        order = torch.argsort((tokens != 0).sum(1), descending=True, stable=True)
        chunks = []
        with self._threads():
            for start in tqdm(range(0, len(texts), self.batch_size), desc="texts", unit="batch",
                              disable=not self.progress, leave=False):
                idx = order[start : start + self.batch_size]
                with self._autocast():
                    feats = encode_text_trimmed(self.model, tokens[idx].to(self.device))
                chunks.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
        out = torch.cat(chunks)
        result = torch.empty_like(out)
        result[order] = out
        return share_identical(result.numpy(), keys)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file (or of a folder's files, by relative name), hex; computed once per file version
    (path, size, modification time) per process, since runs ask for the same keys once per model."""
    p = Path(path).resolve()
    stat = p.stat()
    return _file_digest(p, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _file_digest(p: Path, size: int, mtime_ns: int, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def model_key(bundle) -> str:
    """Cache key of a model: weights file hash + architecture + activation + preprocessing."""
    h = hashlib.sha256()
    ckpt = bundle.checkpoint
    if ckpt is not None and getattr(ckpt, "path", None):
        h.update(file_digest(ckpt.path).encode())
    else:  # no file: hash the weights themselves
        for name, tensor in sorted(bundle.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().float().numpy().tobytes())
    h.update(repr((bundle.name, sorted(bundle.model_cfg.items(), key=str), sorted(bundle.preprocess_cfg.items(), key=str))).encode())
    return h.hexdigest()[:20]


class EmbeddingCache:
    """``<dir>/<model key>/<benchmark key>.pt``: embeddings of one model on one benchmark's inputs."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _path(self, model: str, bench: str) -> Path:
        return self.root / model / f"{bench}.pt"

    def load(self, model: str, bench: str) -> dict | None:
        path = self._path(model, bench)
        if not path.exists():
            return None
        try:
            data = torch.load(path, weights_only=True)
            data["image_vecs"], data["text_vecs"] = data["image_vecs"].numpy(), data["text_vecs"].numpy()
            return data
        except Exception as exc:  # a corrupt cache file is recomputed, never fatal
            logger.warning("ignoring unreadable embedding cache %s: %s", path, exc)
            return None

    def save(self, model: str, bench: str, images: list[str], image_vecs: np.ndarray, image_errors: dict[str, str],
             texts: list[str], text_vecs: np.ndarray) -> None:
        path = self._path(model, bench)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"images": images, "image_vecs": torch.from_numpy(np.ascontiguousarray(image_vecs)),
                    "image_errors": image_errors, "texts": texts,
                    "text_vecs": torch.from_numpy(np.ascontiguousarray(text_vecs))}, tmp)
        tmp.replace(path)
