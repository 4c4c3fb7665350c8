"""SugarCrepe (Hsieh et al., NeurIPS 2023) and SugarCrepe++ (Dumpala et al., 2024).

SugarCrepe: per subset, accuracy = fraction of items with s(image, caption) > s(image, negative_caption),
as ``main_eval.py``; family means (replace / swap / add) and the overall mean are unweighted means of the
subset accuracies, as the papers' tables. Files: ``<root>/<subset>.json``, a JSON object of
``{filename, caption, negative_caption}``; images: COCO val2017.

SugarCrepe++: ``<root>/<subset>.json``, a JSON list of ``{id, filename, caption, caption2,
negative_caption}``. ITT = both positives beat the negative (image-to-text), TOT = s(caption, caption2)
exceeds both s(caption, negative) and s(caption2, negative) (text only), as the benchmark defines them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from genemi.caption_files import read_json
from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import (
    BenchmarkResult,
    MissingTracker,
    digest,
    mean,
    percent,
    require_fields,
    strictly_first,
)
from genemi.evaluation.scoring import Embeddings, ImageRef

SUGARCREPE_SUBSETS = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att")
SUGARCREPE_PP_SUBSETS = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")
FAMILIES = {"replace": ("replace_obj", "replace_att", "replace_rel"), "swap": ("swap_obj", "swap_att"),
            "add": ("add_obj", "add_att")}


def _subset_files(root: Path, subsets, what: str) -> dict[str, Path]:
    files = {s: root / f"{s}.json" for s in subsets}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if len(missing) == len(files):
        raise DataError(f"{what}: no subset files in {root} (expected {', '.join(f'{s}.json' for s in subsets)})")
    return {s: p for s, p in files.items() if p.is_file()}


class _SubsetFiles(ABC):
    """A benchmark made of ``<root>/<subset>.json`` files over one image folder."""

    name = ""
    title = ""
    subsets: tuple[str, ...] = ()

    def __init__(self, root: str | Path, images: str | Path, subsets: tuple[str, ...] | None = None):
        self.root, self.images = Path(root), Path(images)
        self.files = _subset_files(self.root, subsets or self.subsets, self.title)
        self.items = {s: self._read(p) for s, p in self.files.items()}

    @abstractmethod
    def _read(self, path: Path) -> list:
        """The items of one subset file (each benchmark has its own layout)."""

    def cache_key(self) -> str:
        return digest(*self.files.values(), str(self.images))


class SugarCrepe(_SubsetFiles):
    name, title, subsets = "sugarcrepe", "SugarCrepe", SUGARCREPE_SUBSETS

    def _read(self, path: Path) -> list[tuple[str, str, str, str]]:
        data = read_json(path)
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: expected a JSON object of items (SugarCrepe layout)")
        out = []
        for key, item in data.items():
            require_fields(item, ("filename", "caption", "negative_caption"), f"{path}: item {key!r}")
            out.append((key, item["filename"], item["caption"], item["negative_caption"]))
        return out

    def _ref(self, filename: str) -> ImageRef:
        return ImageRef(str(self.images / filename))

    def inputs(self):
        items = [i for subset in self.items.values() for i in subset]
        return [self._ref(i[1]) for i in items], [t for i in items for t in (i[2], i[3])]

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing = MissingTracker(emb)
        metrics, n_items, n_eval = {}, 0, 0
        for subset, items in self.items.items():
            correct = [strictly_first(emb.sims(self._ref(f), [pos, neg])) for _, f, pos, neg in items
                       if missing.ok(self._ref(f))]
            metrics[subset] = percent(correct)
            n_items += len(items)
            n_eval += len(correct)
        for family, members in FAMILIES.items():
            metrics[family] = mean([metrics[s] for s in members if s in metrics])
        metrics["mean"] = mean([metrics[s] for s in SUGARCREPE_SUBSETS if s in metrics])
        headline = [s for s in SUGARCREPE_SUBSETS if s in self.items] + ["replace", "swap", "add", "mean"]
        return BenchmarkResult(self.name, metrics, headline, n_items, n_eval, missing.count, missing.examples)


class SugarCrepePP(_SubsetFiles):
    name, title, subsets = "sugarcrepe_pp", "SugarCrepe++", SUGARCREPE_PP_SUBSETS

    def _read(self, path: Path):
        data = read_json(path)
        if not isinstance(data, list):
            raise ManifestError(f"{path}: expected a JSON list of items (SugarCrepe++ layout)")
        out = []
        for k, item in enumerate(data):
            require_fields(item, ("filename", "caption", "caption2", "negative_caption"), f"{path}: item {k}")
            out.append((item["filename"], item["caption"], item["caption2"], item["negative_caption"]))
        return out

    def inputs(self):
        items = [i for subset in self.items.values() for i in subset]
        return [ImageRef(str(self.images / i[0])) for i in items], [t for i in items for t in i[1:]]

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing = MissingTracker(emb)
        metrics, n_items, n_eval = {}, 0, 0
        for subset, items in self.items.items():
            itt, tot = [], []
            for filename, p1, p2, neg in items:
                n_items += 1
                t = emb.text_sims(neg, [p1, p2])  # s(neg, p1), s(neg, p2)
                s12 = float(emb.text(p1).astype("float64") @ emb.text(p2).astype("float64"))
                tot.append(s12 > t[0] and s12 > t[1])
                ref = ImageRef(str(self.images / filename))
                if missing.ok(ref):
                    s = emb.sims(ref, [p1, p2, neg])
                    itt.append(s[0] > s[2] and s[1] > s[2])
            n_eval += len(itt)
            metrics[f"{subset}/itt"], metrics[f"{subset}/tot"] = percent(itt), percent(tot)
        metrics["itt_mean"] = mean([metrics[f"{s}/itt"] for s in self.items])
        metrics["tot_mean"] = mean([metrics[f"{s}/tot"] for s in self.items])
        headline = [f"{s}/itt" for s in self.items] + ["itt_mean", "tot_mean"]
        return BenchmarkResult(self.name, metrics, headline, n_items, n_eval, missing.count, missing.examples)
