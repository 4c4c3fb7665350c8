"""SPEC (Peng et al., CVPR 2024): Size, Position, Existence and Count; image-to-text and text-to-image.

Official code: ``wjpoom/SPEC`` (``spec/eval.py``, ``spec/dataset.py``, ``spec/models/clip_wrapper.py``, commit
``ad982a42d023581fae256608a7f812ec1c64ef94``); data: ``data.zip`` of the Hugging Face dataset ``wjpoom/SPEC``.

* Layout: ``<root>/<subset>/image2text.json`` (a JSON list of ``{query: image path, keys: [texts], label}``)
  and ``<root>/<subset>/text2image.json`` (``{query: text, keys: [image paths], label}``); image paths are
  relative to the subset folder. Subsets, in the order of ``spec/run_eval.sh``: absolute_size,
  relative_size, absolute_spatial, relative_spatial, existence, count.
* Metric: per subset and direction, accuracy = the candidate with the highest similarity is ``keys[label]``
  (``torch.argmax``, which returns the first of equal maxima: ``official_ties = "first"``, in the file's
  candidate order); ``i2t_mean`` / ``t2i_mean`` are the unweighted means over the subsets evaluated, as
  ``spec/eval.py`` prints them.
* A text-to-image item counts as missing if any of its candidate images cannot be read (the official loader
  would stop); an image-to-text item if its query image cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from genemi.caption_files import read_json
from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks.base import (BenchmarkResult, BenchmarkSpec, ItemLog, MissingTracker, digest, mean,
                                               need, percent)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option

SPEC_SUBSETS = ("absolute_size", "relative_size", "absolute_spatial", "relative_spatial", "existence", "count")
DIRECTIONS = {"i2t": "image2text.json", "t2i": "text2image.json"}


def _items(path: Path, direction: str) -> list[tuple[Any, list[Any], int]]:
    """``(query, keys, label)`` per item of one SPEC file (strings; image paths not yet resolved)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a JSON list of {{query, keys, label}} items (SPEC layout)")
    out = []
    for k, item in enumerate(data):
        where = f"{path}: item {k}"
        if not isinstance(item, dict):
            raise ManifestError(f"{where} is not an object")
        lacking = [f for f in ("query", "keys", "label") if f not in item]
        if lacking:
            raise ManifestError(f"{where} has no {', '.join(map(repr, lacking))}")
        query, keys, label = item["query"], item["keys"], item["label"]
        if not isinstance(query, str) or not query:
            kind = "an image path" if direction == "i2t" else "a text"
            raise ManifestError(f"{where}: 'query' must be a non-empty string ({kind})")
        if not isinstance(keys, list) or not keys or not all(isinstance(t, str) and t for t in keys):
            raise ManifestError(f"{where}: 'keys' must be a non-empty list of strings")
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(keys):
            raise ManifestError(f"{where}: 'label' must be an index into its {len(keys)} keys, not {label!r}")
        out.append((query, keys, label))
    return out


class Spec:
    name = "spec"
    official_ties = ties = "first"  # torch.argmax in spec/models/clip_wrapper.py: the first maximum wins
    image_option = "root"

    def __init__(self, root: str | Path, subsets: Sequence[str] | None = None):
        self.root = Path(root)
        if subsets:
            subsets = [subsets] if isinstance(subsets, str) else list(subsets)
            bad = [s for s in subsets if s not in SPEC_SUBSETS]
            if bad:
                raise ConfigError(f"spec subsets: unknown {', '.join(bad)}; expected {', '.join(SPEC_SUBSETS)}")
        wanted = [s for s in SPEC_SUBSETS if not subsets or s in subsets]
        self.notes: list[str] = []
        self.files: list[Path] = []
        #: subset -> i2t items (id, image, texts, label) and t2i items (id, text, images, label)
        self.i2t: dict[str, list[tuple[int, ImageRef, list[str], int]]] = {}
        self.t2i: dict[str, list[tuple[int, str, list[ImageRef], int]]] = {}
        for subset in wanted:
            folder = self.root / subset
            if not folder.is_dir():
                self.notes.append(f"subset {subset} absent ({folder})")
                continue
            paths = {d: folder / f for d, f in DIRECTIONS.items()}
            lacking = [str(p) for p in paths.values() if not p.is_file()]
            if lacking:
                raise DataError(f"SPEC subset {subset}: {', '.join(lacking)} not found")
            self.files += paths.values()
            self.i2t[subset] = [(k, ImageRef(str(folder / q)), keys, label)
                                for k, (q, keys, label) in enumerate(_items(paths["i2t"], "i2t"))]
            self.t2i[subset] = [(k, q, [ImageRef(str(folder / p)) for p in keys], label)
                                for k, (q, keys, label) in enumerate(_items(paths["t2i"], "t2i"))]
        if not self.i2t:
            data = self.root / "data"
            hint = f" (is {data}, the archive's folder, the root?)" if data.is_dir() else ""
            raise DataError(f"SPEC: no subset folder with image2text.json / text2image.json in {self.root}{hint}; "
                            f"expected {', '.join(wanted)}")

    def inputs(self):
        images = [ref for items in self.i2t.values() for _, ref, _, _ in items]
        images += [ref for items in self.t2i.values() for _, _, refs, _ in items for ref in refs]
        texts = [t for items in self.i2t.values() for _, _, keys, _ in items for t in keys]
        texts += [q for items in self.t2i.values() for _, q, _, _ in items]
        return images, texts

    def cache_key(self) -> str:
        return digest(*self.files)

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        metrics: dict[str, float] = {}
        items = evaluated = 0
        for subset in self.i2t:
            i2t = [log.choose(f"{subset}/i2t:{k}", emb.sims(ref, keys), label, subset=f"{subset}/i2t")
                   for k, ref, keys, label in self.i2t[subset] if missing.ok(ref)]
            t2i = []
            for k, query, refs, label in self.t2i[subset]:
                if missing.ok(*refs):
                    t2i.append(log.choose(f"{subset}/t2i:{k}", emb.image_sims(query, refs), label,
                                          subset=f"{subset}/t2i"))
            metrics[f"{subset}/i2t"], metrics[f"{subset}/t2i"] = percent(i2t), percent(t2i)
            items += len(self.i2t[subset]) + len(self.t2i[subset])
            evaluated += len(i2t) + len(t2i)
        metrics["i2t_mean"] = mean([metrics[f"{s}/i2t"] for s in self.i2t])
        metrics["t2i_mean"] = mean([metrics[f"{s}/t2i"] for s in self.i2t])
        headline = [f"{s}/{d}" for s in self.i2t for d in DIRECTIONS] + ["i2t_mean", "t2i_mean"]
        notes = list(self.notes)
        if len(self.i2t) < len(SPEC_SUBSETS):
            notes.append(f"means over {len(self.i2t)} of the {len(SPEC_SUBSETS)} subsets")
        return log.fill(BenchmarkResult(self.name, metrics, headline, items, evaluated, missing.count,
                                        missing.examples, notes))


def build(opts: "SpecData") -> list[Spec]:
    """Registry builder: ``root`` (the folder holding the subset folders), optional ``subsets``."""
    (root,) = need(opts, "spec", "root")
    return [Spec(root, opts.subsets)]


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class SpecData(Section):
    root: str | None = option(None, "SPEC: the folder holding the six subset folders (image2text.json, "
                              "text2image.json)", flag="--spec-root", metavar="DIR")
    subsets: list[str] | None = option(None, "SPEC subsets", flag="--spec-subsets", choices=SPEC_SUBSETS,
                                       default_text="all")


SPEC = BenchmarkSpec("spec", SpecData, build,
                     "SPEC size/position/existence/count: i2t and t2i accuracy per subset, means")
