"""VALSE (Parcalabescu et al., ACL 2022): 11 instruments, caption vs foil.

Files ``<root>/<instrument>.json`` (a JSON object of ``{dataset, image_file, caption, foil, mturk}``, the key is
the item id); only valid items (``mturk.caption >= 2``, the benchmark's rule) are used. Metric: pairwise accuracy
s(image, caption) > s(image, foil) per instrument (the CLIP script's ``softmax(...)[0] > 0.5``: a tie is
wrong); ``avg`` = unweighted mean over the 11 instruments (the CLIP script's and CE-CLIP's ``avg``);
``avg_9col`` = mean of the 9 columns papers print (counting averaged into one column).

Images come from five datasets. ``images`` is either one root with the folder layout of the CLIP evaluation
script (``VALSE_LAYOUT``), or a mapping whose keys are ``root``, image sources (``VALSE_LAYOUT``'s keys) and
instrument names. As in that script, an image file name containing ``COCO_val2014`` / ``COCO_train2014`` /
``COCO_val2017`` / ``COCO_train2017`` is looked up in that COCO folder whatever its instrument
(coreference-standard mixes train2014 and val2014 images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from genemi.caption_files import read_json
from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks.base import (
    BenchmarkResult,
    BenchmarkSpec,
    ItemLog,
    MissingTracker,
    digest,
    mean,
    need,
    percent,
    require_fields,
)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option

VALSE_INSTRUMENTS = (
    "existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial", "relations",
    "action-replacement", "actant-swap", "coreference-standard", "coreference-hard", "foil-it",
)  # fmt: skip
COUNTING = ("counting-hard", "counting-small-quant", "counting-adversarial")
MIN_VALIDATIONS = 2
#: image source -> its folder under one VALSE image root (the dataset folders of the CLIP script, clip_valse_eval.py)
VALSE_LAYOUT = {
    "visual7w": "visual7w",
    "coco2017_val": "coco/2017/val2017",
    "coco2017_train": "coco/2017/train2017",
    "coco2014_val": "coco/2014/val2014",
    "coco2014_train": "coco/2014/train2014",
    "swig": "SWiG",
    "visdial": "VisualDialog_val2018",
}
#: instrument -> the source of its images (the CLIP script's folder per instrument)
INSTRUMENT_SOURCE = {
    "existence": "visual7w", "plurals": "coco2017_val", "counting-hard": "visual7w",
    "counting-small-quant": "visual7w", "counting-adversarial": "visual7w", "relations": "coco2017_val",
    "action-replacement": "swig", "actant-swap": "swig", "coreference-standard": "coco2014_train",
    "coreference-hard": "visdial", "foil-it": "coco2014_val",
}  # fmt: skip
#: file-name redirect, checked in this order (a name containing the marker goes to that source's folder)
COCO_REDIRECT = (("COCO_val2014", "coco2014_val"), ("COCO_train2014", "coco2014_train"),
                 ("COCO_val2017", "coco2017_val"), ("COCO_train2017", "coco2017_train"))


class ValseImages:
    """Where each VALSE image is: one root (layout ``VALSE_LAYOUT``; a root holding none of those folders is
    taken as one flat folder of every image) or a mapping of ``root`` / sources / instruments to folders."""

    def __init__(self, images: str | Path | Mapping[str, str | Path]):
        if isinstance(images, Mapping):
            unknown = [k for k in images if k != "root" and k not in VALSE_LAYOUT and k not in INSTRUMENT_SOURCE]
            if unknown:
                raise ConfigError(f"VALSE images: unknown key(s) {', '.join(map(repr, unknown))}; expected root, "
                                  f"sources ({', '.join(VALSE_LAYOUT)}) or instruments "
                                  f"({', '.join(VALSE_INSTRUMENTS)})")
            given = {k: Path(v) for k, v in images.items() if v}
        else:
            given = {"root": Path(images)}
        root = given.pop("root", None)
        self.flat = root is not None and not any((root / sub).is_dir() for sub in VALSE_LAYOUT.values())
        self.sources: dict[str, Path | None] = {}
        for source, sub in VALSE_LAYOUT.items():
            folder = given.get(source) or (root if self.flat else root / sub if root is not None else None)
            if folder is None:  # the folder given for an instrument whose images come from this source
                folder = next((given[i] for i in VALSE_INSTRUMENTS if INSTRUMENT_SOURCE[i] == source and i in given),
                              None)
            self.sources[source] = folder
        self.instruments = {i: given.get(i) or self.sources[INSTRUMENT_SOURCE[i]] for i in VALSE_INSTRUMENTS}

    def folder(self, instrument: str, image_file: str) -> tuple[Path, bool]:
        """The folder of one image, and whether a COCO redirect had no folder (the instrument's is used)."""
        for marker, source in COCO_REDIRECT:
            if marker in image_file:
                if self.sources[source] is not None:
                    return self.sources[source], False
                return self.instrument(instrument), True
        return self.instrument(instrument), False

    def instrument(self, instrument: str) -> Path:
        folder = self.instruments[instrument]
        if folder is None:
            source = INSTRUMENT_SOURCE[instrument]
            raise DataError(f"VALSE: no image folder for instrument {instrument!r}: give images.{instrument}, "
                            f"images.{source} or images.root (layout: {source} -> <root>/{VALSE_LAYOUT[source]})")
        return folder

    def __repr__(self) -> str:
        return repr((self.flat, sorted(self.sources.items()), sorted(self.instruments.items())))

    def __str__(self) -> str:
        return ", ".join(dict.fromkeys(str(f) for f in self.instruments.values() if f is not None)) or "(none)"


class Valse:
    name = "valse"
    official_ties = ties = "strict"  # clip_valse_eval.py: softmax(logits)[0] > 0.5; a tie gives 0.5

    def __init__(self, root: str | Path, images: str | Path | Mapping[str, str | Path]):
        self.root = Path(root)
        self.images = ValseImages(images)
        self.files = {i: self.root / f"{i}.json" for i in VALSE_INSTRUMENTS if (self.root / f"{i}.json").is_file()}
        if not self.files:
            raise DataError(f"VALSE: no instrument files in {self.root} (expected e.g. existence.json)")
        self.unredirected: dict[str, int] = {}
        #: instrument -> [(item id, image, caption, foil)] of the valid items, in file order
        self.items = {i: self._read(i, p) for i, p in self.files.items()}

    def _read(self, instrument: str, path: Path):
        data = read_json(path)
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: expected a JSON object of VALSE items")
        out = []
        for key, item in data.items():
            require_fields(item, ("image_file", "caption", "foil"), f"{path}: item {key!r}")
            votes = (item.get("mturk") or {}).get("caption", 0)
            if not isinstance(votes, (int, float)):
                raise ManifestError(f"{path}: item {key!r}: mturk.caption is not a number ({votes!r})")
            if votes >= MIN_VALIDATIONS:
                folder, fallback = self.images.folder(instrument, item["image_file"])
                self.unredirected[instrument] = self.unredirected.get(instrument, 0) + fallback
                out.append((key, ImageRef(str(folder / item["image_file"])), item["caption"], item["foil"]))
        return out

    def inputs(self):
        items = [i for v in self.items.values() for i in v]
        return [i[1] for i in items], [t for i in items for t in (i[2], i[3])]

    def cache_key(self) -> str:
        return digest(*self.files.values(), repr(self.images))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        metrics, n_items, n_eval = {}, 0, 0
        for instrument, items in self.items.items():
            correct = [log.choose(key, emb.sims(ref, [cap, foil]), 0, subset=instrument)
                       for key, ref, cap, foil in items if missing.ok(ref)]
            metrics[instrument] = percent(correct)
            n_items, n_eval = n_items + len(items), n_eval + len(correct)
        metrics["avg"] = mean([metrics[i] for i in self.items])
        columns = [metrics.get(i, float("nan")) for i in VALSE_INSTRUMENTS if i not in COUNTING]
        columns.insert(2, mean([metrics[i] for i in COUNTING if i in metrics]))
        metrics["avg_9col"] = mean(columns)
        notes = [] if len(self.items) == len(VALSE_INSTRUMENTS) else [
            f"instruments missing: {', '.join(i for i in VALSE_INSTRUMENTS if i not in self.items)}"]
        tied = {}
        for row in log.rows:
            tied[row["subset"]] = tied.get(row["subset"], 0) + row["tie"]
        if log.ties:
            notes.append(f"{log.ties} item(s) tie exactly ({', '.join(f'{i} {n}' for i, n in tied.items() if n)}): "
                         "caption and foil score the same; the original script's softmax decides such an item by "
                         "floating-point noise (0.50000012 on one machine, 0.49999976 on another), so they are "
                         f"listed as ties and decided by the {self.ties!r} rule")
        notes += [f"{i}: {n} COCO image(s) looked up in {self.images.instrument(i)} (no folder for their COCO split; "
                  "set images.coco2014_val / coco2014_train / coco2017_val / coco2017_train or images.root)"
                  for i, n in self.unredirected.items() if n]
        return log.fill(BenchmarkResult(self.name, metrics, [*self.items, "avg", "avg_9col"], n_items, n_eval,
                                        missing.count, missing.examples, notes))


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class ValseData(Section):
    root: str | None = option(None, "VALSE data/ folder (existence.json, ...)", flag="--valse-root", metavar="DIR")
    images: str | dict[str, str] | None = option(
        None, "one VALSE image root with the CLIP script's layout (visual7w/, coco/2017/val2017/, "
        "coco/2014/{train,val}2014/, SWiG/, VisualDialog_val2018/), or a flat folder; per source or instrument: the "
        "data config's mapping. COCO_val2014_/COCO_train2014_ files are redirected by name", flag="--valse-images",
        metavar="DIR")


VALSE = BenchmarkSpec("valse", ValseData, lambda o: [Valse(*need(o, "valse", "root", "images"))],
                      "VALSE, valid items, 11-instrument mean")
