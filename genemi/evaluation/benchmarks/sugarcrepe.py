"""SugarCrepe (Hsieh et al., NeurIPS 2023) and SugarCrepe++ (Dumpala et al., 2024).

SugarCrepe: per subset, accuracy = fraction of items with s(image, caption) > s(image, negative_caption),
as ``main_eval.py`` (strict: a tie is wrong); family means (replace / swap / add) and the overall mean are
unweighted means of the subset accuracies, as the papers' tables. Files: ``<root>/<subset>.json``, a JSON
object of ``{filename, caption, negative_caption}`` (the key is the item id); images: COCO val2017.

SugarCrepe++: per subset a JSON list of ``{id, filename, caption, caption2, negative_caption}``, from the
GitHub repository (``data/<subset>.json``) or the hub copy ``Aman-J/SugarCrepe_pp`` (the same files in
``data/``, or its Parquet conversion ``<config>/train/*.parquet`` with the configs ``replace_object``,
``replace_attribute``, ``replace_relation``, ``swap_object``, ``swap_atribute``); ``.jsonl`` and
``.parquet`` files named after the subset or the config are read too. ITT = both positives beat the negative
(image-to-text), TOT = s(caption, caption2) exceeds both s(caption, negative) and s(caption2, negative) (text
only); both strict, as ``VLMs/test_Variants_CLIP.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from genemi.caption_files import read_json
from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import (
    BenchmarkResult,
    BenchmarkSpec,
    ItemLog,
    MissingTracker,
    digest,
    mean,
    need,
    percent,
    picks,
    require_fields,
    tied,
)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option

SUGARCREPE_SUBSETS = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att")
SUGARCREPE_PP_SUBSETS = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")
FAMILIES = {"replace": ("replace_obj", "replace_att", "replace_rel"), "swap": ("swap_obj", "swap_att"),
            "add": ("add_obj", "add_att")}
#: SugarCrepe++ subset -> its config names on the hub (``swap_atribute`` is the hub's spelling)
SUGARCREPE_PP_CONFIGS = {"replace_obj": ("replace_object",), "replace_att": ("replace_attribute",),
                         "replace_rel": ("replace_relation",), "swap_obj": ("swap_object",),
                         "swap_att": ("swap_atribute", "swap_attribute")}
PP_FIELDS = ("filename", "caption", "caption2", "negative_caption")


class _SubsetFiles(ABC):
    """A benchmark made of one annotation file (or a few shards) per subset over one image folder."""

    name = ""
    title = ""
    subsets: tuple[str, ...] = ()
    official_ties = ties = "strict"

    def __init__(self, root: str | Path, images: str | Path, subsets: tuple[str, ...] | None = None):
        self.root, self.images = Path(root), Path(images)
        wanted = subsets or self.subsets
        found = {s: self._find(s) for s in wanted}
        self.files: dict[str, list[Path]] = {s: f for s, f in found.items() if f}
        if not self.files:
            raise DataError(f"{self.title}: no subset files in {self.root} ({self._expected(wanted)})")
        self.items = {s: self._read(f) for s, f in self.files.items()}

    def _find(self, subset: str) -> list[Path]:
        path = self.root / f"{subset}.json"
        return [path] if path.is_file() else []

    def _expected(self, subsets) -> str:
        return "expected " + ", ".join(f"{s}.json" for s in subsets)

    @abstractmethod
    def _read(self, paths: list[Path]) -> list:
        """The items of one subset (each benchmark has its own layout)."""

    def cache_key(self) -> str:
        return digest(*(p for files in self.files.values() for p in files), str(self.images))


class SugarCrepe(_SubsetFiles):
    name, title, subsets = "sugarcrepe", "SugarCrepe", SUGARCREPE_SUBSETS
    official_ties = ties = "strict"  # main_eval.py: pos_score > neg_score

    def _read(self, paths: list[Path]) -> list[tuple[str, str, str, str]]:
        (path,) = paths
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
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        metrics, n_items, n_eval = {}, 0, 0
        for subset, items in self.items.items():
            correct = [log.choose(key, emb.sims(self._ref(f), [pos, neg]), 0, subset=subset)
                       for key, f, pos, neg in items if missing.ok(self._ref(f))]
            metrics[subset] = percent(correct)
            n_items += len(items)
            n_eval += len(correct)
        for family, members in FAMILIES.items():
            metrics[family] = mean([metrics[s] for s in members if s in metrics])
        metrics["mean"] = mean([metrics[s] for s in SUGARCREPE_SUBSETS if s in metrics])
        headline = [s for s in SUGARCREPE_SUBSETS if s in self.items] + ["replace", "swap", "add", "mean"]
        return log.fill(BenchmarkResult(self.name, metrics, headline, n_items, n_eval, missing.count,
                                        missing.examples))


class SugarCrepePP(_SubsetFiles):
    name, title, subsets = "sugarcrepe_pp", "SugarCrepe++", SUGARCREPE_PP_SUBSETS
    official_ties = ties = "strict"  # VLMs/test_Variants_CLIP.py: cos_p1 > cos_neg ..., cos_p1p2 > cos_p1_neg ...

    def _find(self, subset: str) -> list[Path]:
        """The first of, in ``root`` then ``root/data``: ``<name>.json``, ``<name>.jsonl``, ``<name>.parquet``,
        ``<name>/*/*.parquet``, ``<name>/*.parquet``, for the subset name then its hub config names."""
        for base in (self.root, self.root / "data"):
            for name in (subset, *SUGARCREPE_PP_CONFIGS[subset]):
                for suffix in (".json", ".jsonl", ".parquet"):
                    if (base / f"{name}{suffix}").is_file():
                        return [base / f"{name}{suffix}"]
                for pattern in ("*/*.parquet", "*.parquet"):
                    shards = sorted(p for p in (base / name).glob(pattern) if p.is_file())
                    if shards:
                        return shards
        return []

    def _expected(self, subsets) -> str:
        return ("expected e.g. " + ", ".join(f"{s}.json" for s in subsets)
                + " (GitHub / hub data/), or the hub's Parquet <config>/train/*.parquet")

    def _rows(self, path: Path) -> list[tuple[str, object]]:
        """(where, row) of one file, in file order."""
        if path.suffix == ".parquet":
            from genemi.evaluation.benchmarks.hub_files import read_parquet

            return [(f"{path}: row {n}", row) for n, row in enumerate(read_parquet(path, PP_FIELDS, optional=("id",)))]
        if path.suffix == ".jsonl":
            from genemi.manifest import iter_json_lines

            return [(f"{path}:{line}", obj) for line, obj in iter_json_lines(path)]
        data = read_json(path)
        if not isinstance(data, list):
            raise ManifestError(f"{path}: expected a JSON list of items (SugarCrepe++ layout), "
                                f"got {type(data).__name__}")
        return [(f"{path}: item {k}", item) for k, item in enumerate(data)]

    def _read(self, paths: list[Path]) -> list[tuple[str, str, str, str, str]]:
        out, seen = [], {}
        for path in paths:
            for where, item in self._rows(path):
                require_fields(item, PP_FIELDS, where)
                bad = [f for f in PP_FIELDS if not isinstance(item[f], str)]
                if bad:
                    raise ManifestError(f"{where}: {bad[0]} is not a string ({item[bad[0]]!r})")
                item_id = str(item["id"]) if item.get("id") is not None else str(len(out))
                if item_id in seen:
                    raise ManifestError(f"{where}: id {item_id} already used by {seen[item_id]}")
                seen[item_id] = where
                out.append((item_id, item["filename"], item["caption"], item["caption2"], item["negative_caption"]))
        return out

    def inputs(self):
        items = [i for subset in self.items.values() for i in subset]
        return [ImageRef(str(self.images / i[1])) for i in items], [t for i in items for t in i[2:]]

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        metrics, n_items, n_eval = {}, 0, 0
        for subset, items in self.items.items():
            itt, tot = [], []
            for item_id, filename, p1, p2, neg in items:
                n_items += 1
                t = emb.text_sims(neg, [p1, p2])  # s(neg, p1), s(neg, p2)
                s12 = float(emb.text_sims(p1, [p2])[0])
                tot_ok = picks([s12, t[0]], 0, self.ties) and picks([s12, t[1]], 0, self.ties)
                tie = tied([s12, t[0]], 0) or tied([s12, t[1]], 0)
                tot.append(tot_ok)
                row = {"tot_p1_p2": s12, "tot_p1_neg": float(t[0]), "tot_p2_neg": float(t[1]), "tot": tot_ok}
                ref = ImageRef(str(self.images / filename))
                if missing.ok(ref):
                    s = emb.sims(ref, [p1, p2, neg])  # image with caption, caption2, negative_caption
                    itt_ok = picks([s[0], s[2]], 0, self.ties) and picks([s[1], s[2]], 0, self.ties)
                    tie = tie or tied([s[0], s[2]], 0) or tied([s[1], s[2]], 0)
                    itt.append(itt_ok)
                    row = {"scores": [float(v) for v in s], "itt": itt_ok, **row}
                else:
                    row = {"itt": None, **row}
                log.add(item_id, subset, tie, **row)
            n_eval += len(itt)
            metrics[f"{subset}/itt"], metrics[f"{subset}/tot"] = percent(itt), percent(tot)
        metrics["itt_mean"] = mean([metrics[f"{s}/itt"] for s in self.items])
        metrics["tot_mean"] = mean([metrics[f"{s}/tot"] for s in self.items])
        headline = [f"{s}/itt" for s in self.items] + ["itt_mean", "tot_mean"]
        return log.fill(BenchmarkResult(self.name, metrics, headline, n_items, n_eval, missing.count,
                                        missing.examples))


# --- data options (flags included) and registry entries -------------------------------------------------------

@dataclass
class SugarCrepeData(Section):
    shared: ClassVar[dict[str, str]] = {"images": "--coco-val2017"}
    root: str | None = option(None, "folder with SugarCrepe's 7 JSON files", flag="--sugarcrepe-root", metavar="DIR")
    images: str | None = option(None, "COCO val2017 images", flag=False)


@dataclass
class SugarCrepePPData(Section):
    shared: ClassVar[dict[str, str]] = {"images": "--coco-val2017"}
    root: str | None = option(None, "SugarCrepe++: Sri-Harsha/scpp data/ or the Aman-J/SugarCrepe_pp copy (JSON or "
                              "Parquet)", flag="--sugarcrepe-pp-root", metavar="DIR")
    images: str | None = option(None, "COCO val2017 images", flag=False)


SUGARCREPE = BenchmarkSpec("sugarcrepe", SugarCrepeData,
                           lambda o: [SugarCrepe(*need(o, "sugarcrepe", "root", "images"))],
                           "SugarCrepe, 7 subsets, per-family and overall means")
SUGARCREPE_PP = BenchmarkSpec("sugarcrepe_pp", SugarCrepePPData,
                              lambda o: [SugarCrepePP(*need(o, "sugarcrepe_pp", "root", "images"))],
                              "SugarCrepe++, ITT and TOT accuracy")
