"""What every benchmark provides: its inputs (images, texts), a cache key, and its official metric."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from genemi.evaluation.scoring import Embeddings, ImageRef, file_digest


@dataclass
class BenchmarkResult:
    """Metrics in percent; ``headline`` names the metrics a paper table reports, in order."""

    name: str
    metrics: dict[str, float]
    headline: list[str]
    items: int = 0
    evaluated: int = 0
    missing_images: int = 0
    missing_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Benchmark(Protocol):
    name: str

    def inputs(self) -> tuple[list[ImageRef], list[str]]:
        """Every image and text the metric needs."""

    def cache_key(self) -> str:
        """Changes whenever the annotation files or image roots change."""

    def score(self, emb: Embeddings) -> BenchmarkResult:
        """The official metric from the embeddings."""


def require_fields(item: object, fields: Sequence[str], where: str) -> None:
    """Raise ManifestError naming the file/item and the first missing field."""
    from genemi.errors import ManifestError

    for name in fields:
        if not isinstance(item, dict) or name not in item:
            raise ManifestError(f"{where} has no {name!r}")


def strictly_first(scores: Sequence[float] | np.ndarray, index: int = 0) -> bool:
    """True iff ``scores[index]`` is strictly greater than every other score (a tie is a failure)."""
    scores = np.asarray(scores)
    others = np.delete(scores, index)
    return bool(others.size == 0 or scores[index] > others.max())


def percent(values: Sequence[bool] | np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(100.0 * values.mean()) if values.size else float("nan")


def mean(values: Sequence[float]) -> float:
    values = [v for v in values if v == v]  # drop NaN (empty subsets)
    return float(sum(values) / len(values)) if values else float("nan")


def digest(*parts: str | Path) -> str:
    """Cache key over annotation files (``Path``: their content) and plain strings (image roots, options).

    Image roots are passed as strings on purpose: hashing a folder of 5,000 COCO images on every call
    would cost more than the evaluation it guards.
    """
    h = hashlib.sha256()
    for part in parts:
        h.update((file_digest(part) if isinstance(part, Path) else str(part)).encode())
    return h.hexdigest()[:20]


class MissingTracker:
    """Counts items skipped because their image could not be read (and keeps a few examples)."""

    def __init__(self, emb: Embeddings):
        self.emb, self.count, self.examples = emb, 0, []

    def ok(self, *images: ImageRef) -> bool:
        bad = [i for i in images if not self.emb.has_image(i)]
        if bad:
            self.count += 1
            if len(self.examples) < 5:
                self.examples.append(self.emb.image_errors.get(bad[0].key, f"image not embedded: {bad[0].key}"))
        return not bad
