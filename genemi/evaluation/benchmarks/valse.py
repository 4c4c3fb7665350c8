"""VALSE (Parcalabescu et al., ACL 2022): 11 instruments, caption vs foil.

Files ``<root>/<instrument>.json`` (a JSON object of ``{dataset, image_file, caption, foil, mturk}``); only
valid items (``mturk.caption >= 2``, the benchmark's rule) are used. Metric: pairwise accuracy
s(image, caption) > s(image, foil) per instrument; ``avg`` = unweighted mean over the 11 instruments
(CE-CLIP's ``avg``); ``avg_9col`` = mean of the 9 columns papers print (counting averaged into one column).
Images come from several datasets: give one root, or per instrument in ``--data-config``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

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

VALSE_INSTRUMENTS = (
    "existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial", "relations",
    "action-replacement", "actant-swap", "coreference-standard", "coreference-hard", "foil-it",
)  # fmt: skip
COUNTING = ("counting-hard", "counting-small-quant", "counting-adversarial")
MIN_VALIDATIONS = 2


class Valse:
    name = "valse"

    def __init__(self, root: str | Path, images: str | Path | Mapping[str, str | Path]):
        self.root = Path(root)
        self.images = {k: Path(v) for k, v in images.items()} if isinstance(images, Mapping) else Path(images)
        self.files = {i: self.root / f"{i}.json" for i in VALSE_INSTRUMENTS if (self.root / f"{i}.json").is_file()}
        if not self.files:
            raise DataError(f"VALSE: no instrument files in {self.root} (expected e.g. existence.json)")
        self.items = {i: self._read(i, p) for i, p in self.files.items()}

    def _image_root(self, instrument: str) -> Path:
        if isinstance(self.images, Path):
            return self.images
        if instrument not in self.images:
            raise DataError(f"VALSE: no image root for instrument {instrument!r} in the data config")
        return self.images[instrument]

    def _read(self, instrument: str, path: Path):
        data = read_json(path)
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: expected a JSON object of VALSE items")
        out, root = [], self._image_root(instrument)
        for key, item in data.items():
            require_fields(item, ("image_file", "caption", "foil"), f"{path}: item {key!r}")
            votes = (item.get("mturk") or {}).get("caption", 0)
            if votes >= MIN_VALIDATIONS:
                out.append((ImageRef(str(root / item["image_file"])), item["caption"], item["foil"]))
        return out

    def inputs(self):
        items = [i for v in self.items.values() for i in v]
        return [i[0] for i in items], [t for i in items for t in (i[1], i[2])]

    def cache_key(self) -> str:
        return digest(*self.files.values(), repr(self.images))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing = MissingTracker(emb)
        metrics, n_items, n_eval = {}, 0, 0
        for instrument, items in self.items.items():
            correct = [strictly_first(emb.sims(ref, [cap, foil])) for ref, cap, foil in items if missing.ok(ref)]
            metrics[instrument] = percent(correct)
            n_items, n_eval = n_items + len(items), n_eval + len(correct)
        metrics["avg"] = mean([metrics[i] for i in self.items])
        columns = [metrics.get(i, float("nan")) for i in VALSE_INSTRUMENTS if i not in COUNTING]
        columns.insert(2, mean([metrics[i] for i in COUNTING if i in metrics]))
        metrics["avg_9col"] = mean(columns)
        notes = [] if len(self.items) == len(VALSE_INSTRUMENTS) else [
            f"instruments missing: {', '.join(i for i in VALSE_INSTRUMENTS if i not in self.items)}"]
        return BenchmarkResult(self.name, metrics, [*self.items, "avg", "avg_9col"], n_items, n_eval,
                               missing.count, missing.examples, notes)
