"""What every benchmark provides: its inputs (images, texts), a cache key, and its official metric.

Tie rules. Official scorers break an exact tie between the right option and a wrong one differently:
``strict`` (SugarCrepe's ``>``, VALSE's softmax > 0.5, Winoground's definition) counts it as wrong; ``first``
(``argmax``: ARO, What'sUp, SPEC, CREPE; also CLIP_benchmark's way of scoring Winoground) picks the option
listed first, so the outcome depends on the official option order, which the benchmarks keep. Each benchmark
class names its scorer's rule in ``official_ties``; ``genemi eval --ties strict|first`` sets ``ties`` on every
benchmark.

Exact ties are counted two ways: ``ties``, items whose right option scores exactly what the *best* wrong
option scores (the tie rule decided the item), and ``ties_any``, items whose right option scores exactly what
*any* wrong option scores (an identical option; the tie rule decides the item's rank, and its top-1
decision too when no wrong option scores higher). ``ties <= ties_any``.

Per-item output. Every ``score`` records one row per item in an :class:`ItemLog` (item id, subset, every
option's score, the decision, ``tie`` and ``tie_any``); ``--save-item-scores`` writes them.
"""

from __future__ import annotations

import hashlib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

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
    #: items whose right option scored exactly what the best wrong option scored (decided by ``tie_rule``)
    ties: int = 0
    #: items whose right option scored exactly what some wrong option scored (includes ``ties``)
    ties_any: int = 0
    tie_rule: str = "strict"
    images_per_s: float = float("nan")
    #: how the benchmark was set up, where it changes the numbers (e.g. ARO Order's protocol and seeds)
    settings: dict = field(default_factory=dict)
    #: one row per evaluated item (not stored in the result JSON; see ``--save-item-scores``)
    rows: list[dict] = field(default_factory=list, repr=False)


TIE_RULES = ("strict", "first")


def picks(scores: Sequence[float] | np.ndarray, index: int, ties: str) -> bool:
    """Does the scorer choose option ``index``? ``strict``: only if it beats every other option;
    ``first``: ``numpy.argmax`` (the first of equal maxima wins)."""
    scores = np.asarray(scores, dtype=np.float64)
    if ties == "strict":
        return strictly_first(scores, index)
    if ties == "first":
        return int(np.argmax(scores)) == index
    raise ValueError(f"unknown tie rule {ties!r}; expected one of {TIE_RULES}")


def tied(scores: Sequence[float] | np.ndarray, index: int) -> bool:
    """Is option ``index`` exactly equal to the best of the other options (the tie rule decides)?"""
    scores = np.asarray(scores, dtype=np.float64)
    others = np.delete(scores, index)
    return bool(others.size and scores[index] == others.max())


def tied_any(scores: Sequence[float] | np.ndarray, index: int) -> bool:
    """Is option ``index`` exactly equal to any other option?"""
    scores = np.asarray(scores, dtype=np.float64)
    return bool((np.delete(scores, index) == scores[index]).any())


class ItemLog:
    """Decides items under one tie rule and keeps a row per item (and the counts of exact ties)."""

    def __init__(self, ties: str):
        if ties not in TIE_RULES:
            raise ValueError(f"unknown tie rule {ties!r}; expected one of {TIE_RULES}")
        self.rule, self.rows, self.ties, self.ties_any = ties, [], 0, 0

    def choose(self, item_id: object, scores: Sequence[float] | np.ndarray, index: int = 0,
               subset: str | None = None, **extra: object) -> bool:
        """One multiple-choice item: is option ``index`` (the right one) chosen? Records the row."""
        scores = np.asarray(scores, dtype=np.float64)
        ok, tie = picks(scores, index, self.rule), tied(scores, index)
        chosen = int(np.argmax(scores)) if self.rule == "first" or not tie else -1
        self.add(item_id, subset, tie, tied_any(scores, index), scores=[float(v) for v in scores], right=index,
                 chosen=chosen, correct=ok, **extra)
        return ok

    def add(self, item_id: object, subset: str | None, tie: bool, tie_any: bool | None = None,
            **columns: object) -> None:
        """A row of free-form columns (``scores`` lists become ``score_0``, ``score_1``... when written);
        ``tie_any`` defaults to ``tie`` (items of two options, or of pairwise comparisons)."""
        tie_any = bool(tie) if tie_any is None else bool(tie_any)
        self.ties += bool(tie)
        self.ties_any += tie_any
        self.rows.append({"subset": subset, "item_id": str(item_id), **columns, "tie": bool(tie), "tie_any": tie_any})

    def fill(self, result: "BenchmarkResult") -> "BenchmarkResult":
        result.ties, result.ties_any, result.tie_rule, result.rows = self.ties, self.ties_any, self.rule, self.rows
        return result


class Benchmark(Protocol):
    name: str
    #: the official scorer's tie rule, and the rule in force (``--ties``)
    official_ties: str
    ties: str

    def inputs(self) -> tuple[list[ImageRef], list[str]]:
        """Every image and text the metric needs."""

    def cache_key(self) -> str:
        """Changes whenever the annotation files or image roots change."""

    def score(self, emb: Embeddings) -> BenchmarkResult:
        """The official metric from the embeddings."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark as the registry lists it: its data options (a :class:`genemi.options.Section` dataclass whose
    fields carry their flags; its ``shared`` class attribute maps fields to :data:`SHARED_FLAGS`), the builder of
    its benchmark objects from those options, and a one-line description."""

    name: str
    options: type
    build: Callable[[Any], list]
    description: str


#: flags that fill one option of every benchmark whose options declare it in ``shared`` and whose data is given
#: otherwise (never configuring a benchmark alone): flag -> help
SHARED_FLAGS = {
    "--coco-val2017": "COCO val2017 images",
    "--crepe-images": "Visual Genome folder holding VG_100K/ and VG_100K_2/",
    "--embedded-image-cache": "where images embedded in Parquet files are extracted once (default: "
                              "$GENEMI_CACHE/embedded_images)",
}


def option_flags(options: type, key: str) -> str | None:
    """The flag that sets the data option at YAML key ``key`` (dotted inside nested sections) of a benchmark's
    options class: its own flag first, else the shared one; None when only the data config can."""
    from genemi.options import flag_at

    *parents, leaf = key.split(".")
    owner = options
    for name in parents:
        owner = typing.get_type_hints(owner).get(name, owner)
    return flag_at(options, key) or getattr(owner, "shared", {}).get(leaf)


def need(opts: Any, bench: str, *keys: str, root: type | None = None, path: str = "") -> list[Any]:
    """The values of a benchmark's required data options, or a ConfigError naming the missing ones, their
    flags and data-config keys (``root``/``path``: where ``opts`` sits inside a benchmark's options class)."""
    from genemi.errors import ConfigError

    missing = [k for k in keys if not getattr(opts, k, None)]
    if missing:
        prefix = f"{path}." if path else ""
        flags = [f for f in (option_flags(root or type(opts), prefix + k) for k in missing) if f]
        raise ConfigError(f"benchmark {bench!r} needs {', '.join(prefix + k for k in missing)} in its data config "
                          f"section {bench}" + (f" (or {', '.join(flags)})" if flags else ""))
    return [getattr(opts, k) for k in keys]


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
