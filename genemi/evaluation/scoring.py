"""The scoring core: embed every unique image and text once (batched, AMP on CUDA, optional cache), then
look similarities up. Benchmarks only ever see :class:`Embeddings`.

An :class:`Embedder` turns images and texts into L2-normalised vectors. :class:`ClipEmbedder` wraps a
genemi/open_clip model; tests inject embedders with hand-made vectors to check every metric exactly.
Comparisons are strict (``>``): a tie counts as a failure, as in the official scripts.
"""

from __future__ import annotations

import hashlib
import logging
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
    """An image file, optionally cropped to the box ``(x, y, w, h)`` (ARO's VG crops)."""

    path: str
    box: tuple[float, float, float, float] | None = None

    @property
    def key(self) -> str:
        return self.path if self.box is None else f"{self.path}@{','.join(f'{v:g}' for v in self.box)}"


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

    def sims(self, image: ImageRef, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of one image with each text (float64 accumulation)."""
        return self.text_matrix(texts).astype(np.float64) @ self.image(image).astype(np.float64)

    def text_sims(self, text: str, others: Sequence[str]) -> np.ndarray:
        return self.text_matrix(others).astype(np.float64) @ self.text(text).astype(np.float64)


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
    def __init__(self, images: Sequence[ImageRef], transform, size: int):
        self.images, self.transform, self.size = images, transform, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from genemi.images import load_rgb

        ref = self.images[index]
        try:
            img = load_rgb(ref.path)
            if ref.box is not None:
                x, y, w, h = ref.box
                img = img.crop((x, y, x + w, y + h))
            return self.transform(img), ""
        except ImageError as exc:
            return torch.zeros(3, self.size, self.size), str(exc)


class ClipEmbedder:
    """Embeds with a :class:`~genemi.models.clip.ClipBundle`: eval transform, batched, AMP on CUDA."""

    def __init__(self, bundle, device: str | torch.device = "cpu", batch_size: int = 256, workers: int = 2,
                 precision: str = "auto", progress: bool = True, key: str | None = None):
        self.bundle, self.device, self.batch_size, self.workers = bundle, torch.device(device), batch_size, workers
        self.model = bundle.model.to(self.device).eval()
        self.transform = bundle.transform(is_train=False)
        self.progress = progress
        if precision == "auto":
            precision = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.key = key or model_key(bundle)

    def _autocast(self):
        if self.dtype is None:
            import contextlib

            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @torch.no_grad()
    def embed_images(self, images: Sequence[ImageRef]) -> tuple[np.ndarray, list[str | None]]:
        from tqdm import tqdm

        size = self.bundle.preprocess_cfg.get("size", 224)
        size = size[0] if isinstance(size, (list, tuple)) else size
        loader = torch.utils.data.DataLoader(
            _ImageDataset(images, self.transform, size), batch_size=self.batch_size, num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
        )
        vecs, errors = [], []
        for pixels, errs in tqdm(loader, desc="images", unit="batch", disable=not self.progress, leave=False):
            with self._autocast():
                feats = self.model.encode_image(pixels.to(self.device, non_blocking=True))
            vecs.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
            errors += [e or None for e in errs]
        for e in errors:
            if e:
                logger.warning("%s", e)
        return torch.cat(vecs).numpy(), errors

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        from tqdm import tqdm

        from genemi.models.clip import encode_text_trimmed

        # longest first: batches of similar length waste less padding (results are reordered back)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        chunks = []
        for start in tqdm(range(0, len(texts), self.batch_size), desc="texts", unit="batch",
                          disable=not self.progress, leave=False):
            idx = order[start : start + self.batch_size]
            tokens = self.bundle.tokenizer([texts[i] for i in idx]).to(self.device)
            with self._autocast():
                feats = encode_text_trimmed(self.model, tokens)
            chunks.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu())
        out = torch.cat(chunks)
        result = torch.empty_like(out)
        result[torch.tensor(order)] = out
        return result.numpy()


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
