"""CREPE (Ma et al., CVPR 2023): systematicity and productivity, image-to-text retrieval among hard negatives.

Official code: ``RAIVNLab/CREPE`` (``crepe_compo_eval_open_clip.py``, ``crepe_eval_utils.py``, commit
``1fa81c425f442396fe304f170c8eb6dc0747c814``). Data: the repository's ``data/prod_hard_negatives.zip`` and
``data/syst_hard_negatives.zip``, images from Visual Genome.

* Files (CSV with a header; pandas-style quoting): columns ``image_id``, ``caption``, ``x``, ``y``, ``width``,
  ``height`` and a column of hard negatives written as a Python list literal (read with ``ast.literal_eval``).
  Productivity: ``<root>/<type>/prod_vg_hard_negs_<type>_complexity_<n>.csv``, type in atom/swap/negate,
  n = 4..12, negatives in ``hard_negs``. Systematicity: ``<root>/syst_vg_hard_negs_<split>_in_<pretraining>.csv``,
  split in seen_compounds/unseen_compounds, pretraining in cc12m/yfcc/laion, negatives in
  ``valid_hard_negs_<type>`` with type in atom/comp/combined (every type reads the same two files).
* Image: ``<images>/VG_100K/<image_id>.jpg``, else ``<images>/VG_100K_2/<image_id>.jpg`` (genemi also accepts
  ``<images>/<image_id>.jpg``), cropped to the box ``(x, y, width, height)``.
* Retrieval set of a row: its caption (placed first) and that row's hard negatives only; no other row's texts
  or images take part. The official rank is the caption's position in ``torch.argsort(scores,
  descending=True)``; Recall@K = rank < K (K = 1, 3, 5, 10), mean rank = mean + 1, median rank =
  floor(median) + 1; the official script reports fractions, genemi percent.
* Ties (``official_ties = "first"``): the caption is option 0, so under ``first`` a candidate scoring exactly
  the caption's score ranks below it (rank = candidates scoring strictly higher); ``strict`` ranks every
  such candidate above it. torch's default (unstable) CPU sort keeps equal scores in input order only for
  short rows (up to 16 candidates), so ``first`` is what the official script did on sets of that size; from
  17 candidates on it put the caption after a tied copy in about half the cases (measured: 45-55% over 400
  random rows each of 17, 20, 30 and 60). Such rows are counted as ties (``tie_any``) and named in the notes.
* Rows with an empty negative list are evaluated as the official script does (a set of one: always a hit);
  their count is listed in the notes.
"""

from __future__ import annotations

import ast
import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

import numpy as np

from genemi.caption_files import read_text
from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks.base import (
    TIE_RULES,
    BenchmarkResult,
    ItemLog,
    MissingTracker,
    digest,
    mean,
    BenchmarkSpec,
    need,
)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option

PROD_TYPES = ("atom", "swap", "negate")
PROD_COMPLEXITIES = tuple(range(4, 13))
SYST_TYPES = ("atom", "comp", "combined")
SYST_SPLITS = {"seen": "seen_compounds", "unseen": "unseen_compounds"}
SYST_PRETRAINING = ("cc12m", "yfcc", "laion")
RECALL_KS = (1, 3, 5, 10)
#: from this many candidates on, torch's default CPU sort (``torch.argsort``, not stable) no longer keeps equal
#: scores in input order: a negative tied with the caption lands before it about half the time (measured)
UNSTABLE_SORT_SIZE = 17
VG_FOLDERS = ("VG_100K", "VG_100K_2")
BASE_COLUMNS = ("image_id", "caption", "x", "y", "width", "height")


@dataclass(frozen=True)
class CrepeRow:
    """One CSV row: its line, image (cropped), caption and hard negatives per negative column."""

    line: int
    image_id: str
    image: ImageRef
    caption: str
    negatives: Mapping[str, tuple[str, ...]]


def _number(value: str, column: str, where: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise ManifestError(f"{where}: column {column!r} is not a number: {value!r}") from None
    if not math.isfinite(out):
        raise ManifestError(f"{where}: column {column!r} is not a finite number: {value!r}")
    return out


def _negatives(value: str, column: str, where: str) -> tuple[str, ...]:
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        raise ManifestError(f"{where}: column {column!r} is not a Python list literal ({type(exc).__name__}): "
                            f"{value[:80]!r}") from None
    if not isinstance(parsed, (list, tuple)) or not all(isinstance(t, str) for t in parsed):
        raise ManifestError(f"{where}: column {column!r} must be a list of strings, got {value[:80]!r}")
    return tuple(parsed)


class _VGImages:
    """Finds ``<image_id>.jpg`` in ``VG_100K``, then ``VG_100K_2`` (the official order), then the folder itself."""

    def __init__(self, root: Path):
        self.root, self.found = root, {}

    def __call__(self, image_id: str) -> Path:
        if image_id not in self.found:
            name = f"{image_id}.jpg"
            candidates = [self.root / d / name for d in VG_FOLDERS] + [self.root / name]
            self.found[image_id] = next((p for p in candidates if p.is_file()), candidates[0])
        return self.found[image_id]


def read_crepe_csv(path: Path, negative_columns: Sequence[str], images: _VGImages) -> list[CrepeRow]:
    """The rows of one CREPE CSV; errors name the file and line."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ManifestError(f"{path}:1: unreadable CSV header: {exc}") from None
    if not header:
        raise ManifestError(f"{path}: empty file (expected a CSV header with {', '.join(BASE_COLUMNS)})")
    header = [h.strip() for h in header]
    lacking = [c for c in (*BASE_COLUMNS, *negative_columns) if c not in header]
    if lacking:
        raise ManifestError(f"{path}:1: CSV header lacks column(s) {', '.join(lacking)} (has {', '.join(header)})")
    index = {c: header.index(c) for c in (*BASE_COLUMNS, *negative_columns)}
    rows: list[CrepeRow] = []
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ManifestError(f"{path}:{line}: malformed CSV: {exc}") from None
        if not fields or all(not f.strip() for f in fields):
            continue  # blank line (pandas skips them too)
        where = f"{path}:{line}"
        if len(fields) != len(header):
            raise ManifestError(f"{where}: {len(fields)} fields for a header of {len(header)} columns")
        image_id, caption = fields[index["image_id"]].strip(), fields[index["caption"]]
        if not image_id:
            raise ManifestError(f"{where}: empty 'image_id'")
        if not caption.strip():
            raise ManifestError(f"{where}: empty 'caption'")
        x, y, w, h = (_number(fields[index[c]], c, where) for c in ("x", "y", "width", "height"))
        if w <= 0 or h <= 0:
            raise ManifestError(f"{where}: the crop box has width {w:g} and height {h:g} (both must be > 0)")
        negatives = {c: _negatives(fields[index[c]], c, where) for c in negative_columns}
        rows.append(CrepeRow(line, image_id, ImageRef(str(images(image_id)), (x, y, w, h)), caption, negatives))
    return rows


def caption_rank(scores: Sequence[float] | np.ndarray, ties: str) -> int:
    """0-based rank of option 0 (the caption): candidates scoring strictly higher, plus (``strict``) equal."""
    scores = np.asarray(scores, dtype=np.float64)
    others = scores[1:]
    if ties == "first":
        return int((others > scores[0]).sum())
    if ties == "strict":
        return int((others >= scores[0]).sum())
    raise ValueError(f"unknown tie rule {ties!r}; expected one of {TIE_RULES}")


def recall_metrics(prefix: str, ranks: Sequence[int], set_sizes: Sequence[int]) -> dict[str, float]:
    """Recall@K (percent), mean/median rank (1-based, as the official script) and the chance R@1."""
    r = np.asarray(ranks, dtype=np.float64)
    if not r.size:
        nan = float("nan")
        return {**{f"{prefix}/R@{k}": nan for k in RECALL_KS}, f"{prefix}/mean_rank": nan,
                f"{prefix}/median_rank": nan, f"{prefix}/chance_R@1": nan, f"{prefix}/evaluated": 0.0}
    out = {f"{prefix}/R@{k}": float(100.0 * (r < k).mean()) for k in RECALL_KS}
    out[f"{prefix}/mean_rank"] = float(r.mean() + 1)
    out[f"{prefix}/median_rank"] = float(np.floor(np.median(r)) + 1)
    out[f"{prefix}/chance_R@1"] = float(100.0 * np.mean([1.0 / n for n in set_sizes]))
    out[f"{prefix}/evaluated"] = float(r.size)
    return out


class _CrepeBase:
    """Shared scoring: each (subset, file, negative column) is one retrieval test."""

    official_ties = ties = "first"  # the caption is placed first; see the module docstring
    name = ""

    def __init__(self, images: str | Path):
        self.images = Path(images)
        self._find = _VGImages(self.images)
        #: subset -> (file, negative column, rows)
        self.tests: dict[str, tuple[Path, str, list[CrepeRow]]] = {}
        self.notes: list[str] = []

    def inputs(self):
        images = [r.image for _, _, rows in self.tests.values() for r in rows]
        texts = [t for _, col, rows in self.tests.values() for r in rows for t in (r.caption, *r.negatives[col])]
        return images, texts

    def _score_tests(self, emb: Embeddings) -> tuple[dict[str, float], ItemLog, MissingTracker, int, int, list[str]]:
        log, missing = ItemLog(self.ties), MissingTracker(emb)
        metrics: dict[str, float] = {}
        items = evaluated = 0
        notes = list(self.notes)
        for subset, (path, column, rows) in self.tests.items():
            ranks, sizes, empty, unstable = [], [], 0, 0
            for row in rows:
                items += 1
                if not missing.ok(row.image):
                    continue
                options = [row.caption, *row.negatives[column]]
                scores = emb.sims(row.image, options)
                rank = caption_rank(scores, self.ties)
                log.choose(f"{path.name}:{row.line}", scores, 0, subset=subset, rank=rank, image_id=row.image_id)
                ranks.append(rank)
                sizes.append(len(options))
                empty += len(options) == 1
                unstable += len(options) >= UNSTABLE_SORT_SIZE and log.rows[-1]["tie_any"]
            evaluated += len(ranks)
            metrics.update(recall_metrics(subset, ranks, sizes))
            if unstable:
                notes.append(f"{subset}: {unstable} row(s) of {UNSTABLE_SORT_SIZE} or more candidates have a negative "
                             "scoring exactly the caption's score: the official sort is not stable at that size and "
                             "puts the caption after such a copy about half the time; they are counted as ties "
                             "(tie_any) and ranked by the tie rule")
            if empty:
                notes.append(f"{subset}: {empty} row(s) of {path.name} have no hard negatives in {column!r} "
                             "(a retrieval set of one, always a hit, as the official script counts them)")
        return metrics, log, missing, items, evaluated, notes

    def _result(self, emb: Embeddings, summary, headline: list[str]) -> BenchmarkResult:
        metrics, log, missing, items, evaluated, notes = self._score_tests(emb)
        metrics.update(summary(metrics))
        return log.fill(BenchmarkResult(self.name, metrics, headline, items, evaluated, missing.count,
                                        missing.examples, notes))


def _choose(given: Sequence[str] | None, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    if not given:
        return tuple(allowed)
    given = [given] if isinstance(given, str) else list(given)
    bad = [g for g in given if g not in allowed]
    if bad:
        raise ConfigError(f"{what}: unknown value(s) {', '.join(map(str, bad))}; expected {', '.join(allowed)}")
    return tuple(g for g in allowed if g in given)  # official order


class CrepeProductivity(_CrepeBase):
    """Productivity: per negative type (atom, swap, negate) and complexity (4..12), Recall@K of the caption."""

    name = "crepe_productivity"

    def __init__(self, root: str | Path, images: str | Path, types: Sequence[str] | None = None,
                 complexities: Sequence[int] | None = None):
        super().__init__(images)
        self.root = Path(root)
        self.types = _choose(types, PROD_TYPES, "crepe_productivity types")
        try:
            self.complexities = tuple(sorted({int(c) for c in complexities})) if complexities else PROD_COMPLEXITIES
        except (TypeError, ValueError):
            raise ConfigError(f"crepe_productivity complexities must be integers, not {complexities!r}") from None
        absent = []
        for t in self.types:
            for n in self.complexities:
                path = self.root / t / f"prod_vg_hard_negs_{t}_complexity_{n}.csv"
                if not path.is_file():
                    absent.append(str(path.relative_to(self.root)))
                    continue
                self.tests[f"{t}/complexity_{n}"] = (path, "hard_negs", read_crepe_csv(path, ["hard_negs"], self._find))
        if not self.tests:
            raise DataError(f"CREPE productivity: no prod_vg_hard_negs_<type>_complexity_<n>.csv under "
                            f"{self.root}/<atom|swap|negate>/ (the unzipped prod_hard_negatives folder)")
        if absent:
            self.notes.append(f"{len(absent)} productivity file(s) absent, e.g. {', '.join(absent[:3])}")

    def cache_key(self) -> str:
        return digest(*(p for p, _, _ in self.tests.values()), str(self.images))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        def summary(metrics):
            # genemi's summary (not a number of the paper, which plots R@1 per complexity)
            return {f"{t}/mean_R@1": mean([metrics[f"{t}/complexity_{n}/R@1"] for n in self.complexities
                                           if f"{t}/complexity_{n}" in self.tests]) for t in self.types}

        headline = [f"{s}/R@1" for s in self.tests] + [f"{t}/mean_R@1" for t in self.types]
        return self._result(emb, summary, headline)


class CrepeSystematicity(_CrepeBase):
    """Systematicity for one pretraining split (cc12m, yfcc or laion): R@K on seen and unseen compounds with
    HN-Atom, HN-Comp and HN-Combined negatives (the paper's table reports R@1)."""

    def __init__(self, root: str | Path, images: str | Path, pretraining: str, types: Sequence[str] | None = None):
        super().__init__(images)
        if pretraining not in SYST_PRETRAINING:
            raise ConfigError(f"crepe_systematicity pretraining must be one of {', '.join(SYST_PRETRAINING)} (the "
                              f"split matching the model's pretraining data), not {pretraining!r}")
        self.root, self.pretraining = Path(root), pretraining
        self.name = f"crepe_systematicity_{pretraining}"
        self.types = _choose(types, SYST_TYPES, "crepe_systematicity types")
        columns = [f"valid_hard_negs_{t}" for t in self.types]
        self.files: list[Path] = []
        for short, split in SYST_SPLITS.items():
            path = self.root / f"syst_vg_hard_negs_{split}_in_{pretraining}.csv"
            if not path.is_file():
                self.notes.append(f"{path.name} absent: no {short}-compound results")
                continue
            rows = read_crepe_csv(path, columns, self._find)
            self.files.append(path)
            for t, col in zip(self.types, columns):
                self.tests[f"{t}/{short}"] = (path, col, rows)
        if not self.files:
            raise DataError(f"CREPE systematicity: neither syst_vg_hard_negs_seen_compounds_in_{pretraining}.csv "
                            f"nor ..._unseen_compounds_in_{pretraining}.csv in {self.root} "
                            "(the unzipped syst_hard_negatives folder)")

    def cache_key(self) -> str:
        return digest(*self.files, str(self.images), ",".join(self.types))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        headline = [f"{t}/{s}/R@1" for t in self.types for s in SYST_SPLITS if f"{t}/{s}" in self.tests]
        return self._result(emb, lambda metrics: {}, headline)


# --- data options (flags included) and registry entries -------------------------------------------------------

@dataclass
class CrepeProductivityData(Section):
    shared: ClassVar[dict[str, str]] = {"images": "--crepe-images"}
    root: str | None = option(None, "CREPE productivity: the unzipped prod_hard_negatives/ (atom/ swap/ negate/)",
                              flag="--crepe-prod-root", metavar="DIR")
    images: str | None = option(None, "Visual Genome folder holding VG_100K/ and VG_100K_2/", flag=False)
    types: list[str] | None = option(None, "CREPE productivity negative types", flag="--crepe-prod-types",
                                     choices=PROD_TYPES, default_text="all")
    complexities: list[int] | None = option(None, "CREPE productivity complexities", flag="--crepe-complexities",
                                            default_text="4-12")


@dataclass
class CrepeSystematicityData(Section):
    shared: ClassVar[dict[str, str]] = {"images": "--crepe-images"}
    root: str | None = option(None, "CREPE systematicity: the unzipped syst_hard_negatives/",
                              flag="--crepe-syst-root", metavar="DIR")
    images: str | None = option(None, "Visual Genome folder holding VG_100K/ and VG_100K_2/", flag=False)
    pretraining: str | list[str] | None = option(
        None, f"CREPE systematicity split(s): {', '.join(SYST_PRETRAINING)} (comma list); only meaningful for "
        "models pretrained on that data", flag="--crepe-pretraining")
    types: list[str] | None = option(None, "CREPE systematicity negative types", flag="--crepe-syst-types",
                                     choices=SYST_TYPES, default_text="all")


def build_productivity(opts: CrepeProductivityData) -> list[CrepeProductivity]:
    """Registry builder: ``root`` (prod_hard_negatives), ``images`` (VG), optional ``types``, ``complexities``."""
    root, images = need(opts, "crepe_productivity", "root", "images")
    return [CrepeProductivity(root, images, opts.types, opts.complexities)]


def build_systematicity(opts: CrepeSystematicityData) -> list[CrepeSystematicity]:
    """Registry builder: ``root`` (syst_hard_negatives), ``images`` (VG), ``pretraining``, optional ``types``."""
    root, images, pretraining = need(opts, "crepe_systematicity", "root", "images", "pretraining")
    splits = [p.strip() for p in pretraining.split(",") if p.strip()] if isinstance(pretraining, str) else list(pretraining)
    return [CrepeSystematicity(root, images, p, opts.types) for p in splits]


CREPE_PRODUCTIVITY = BenchmarkSpec(
    "crepe_productivity", CrepeProductivityData, build_productivity,
    "CREPE productivity: R@1/3/5/10 per negative type (atom/swap/negate) and complexity 4-12")
CREPE_SYSTEMATICITY = BenchmarkSpec(
    "crepe_systematicity", CrepeSystematicityData, build_systematicity,
    "CREPE systematicity (cc12m/yfcc/laion split): R@K, HN-Atom/Comp/Combined, seen/unseen")
