"""VL-CheckList (Zhao et al., 2022): Object / Attribute / Relation, image-text contrast (ITC).

Reads the repository's configs ``corpus/v1/<Category>/<sub>/.../<source>.yaml`` (``ANNO_PATH`` relative to the
repository root, ``IMG_ROOT`` relative to the image root) and their JSON lists of
``[image_path, {"POS": [...], "NEG": [...]}]``. Per file: accuracy of s(image, POS[0]) > s(image, NEG[0]) over
the first ``max_per_file`` samples whose image file exists, in file order: the official loader
(``vl_checklist/data_loader.py``, ``load_itc_samples``) drops samples whose image is absent first, then
``Evaluate.eval`` takes the first ``MAX_NUM / 2`` (the reference configs: ``MAX_NUM: 2000``, so 1000). Every
config is evaluated, as the official ``Evaluate.start()`` does (it loops over every type in all three commits
of om-ai-lab/VL-CheckList; the fork CE-CLIP pins, rabiulcste/vl_checklist @ ``ca0c68d``, evaluates only
the last type). Columns as in papers: Attribute {action, color, material, size, state}, Object {Location,
Size}, Relation {action, spatial}, each the mean of its files; category = mean of its columns; ``avg`` = mean
of the 9 columns. Missing annotation files and images are listed in the result, never fatal: ``items`` counts
the samples taken plus the absent ones passed over before them (``missing_images``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from genemi.caption_files import read_json
from genemi.errors import DataError
from genemi.evaluation.benchmarks.base import (BenchmarkResult, BenchmarkSpec, ItemLog, MissingTracker, digest, mean,
                                               need, percent)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option

COLUMNS = {
    "Attribute": ("action", "color", "material", "size", "state"),
    "Object": ("Location", "Size"),
    "Relation": ("action", "spatial"),
}
MAX_PER_FILE = 1000


def _corpus_dir(root: Path) -> Path:
    for candidate in (root / "corpus" / "v1", root / "vl_checklist" / "corpus" / "v1", root):
        if any(candidate.glob("*/**/*.yaml")) and any((candidate / c).is_dir() for c in COLUMNS):
            return candidate
    raise DataError(f"VL-CheckList: no corpus/v1/<Object|Attribute|Relation>/*.yaml under {root}")


class VLCheckList:
    name = "vl_checklist"
    official_ties = ties = "strict"  # vl_checklist/evaluate.py: pos_score > neg_score

    def __init__(self, root: str | Path, images: str | Path | None = None, max_per_file: int = MAX_PER_FILE):
        self.root = Path(root)
        self.images = Path(images) if images else self.root
        self.corpus = _corpus_dir(self.root)
        self.max_per_file = max_per_file
        self.files: dict[str, list] = {}  # config (relative) -> items
        self.columns: dict[str, str] = {}  # config -> "Category/column"
        self.annotations: list[Path] = []  # the annotation files read (their content keys the cache)
        self.problems: list[str] = []
        self.absent: dict[str, int] = {}  # config -> samples passed over because their image file is absent
        for cfg in sorted(self.corpus.rglob("*.yaml")):
            rel = cfg.relative_to(self.corpus)
            if len(rel.parts) < 3 or rel.parts[0] not in COLUMNS:
                continue
            spec = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
            anno = self.root / str(spec.get("ANNO_PATH", ""))
            if not spec.get("ANNO_PATH") or not anno.is_file() or anno.stat().st_size <= 2:
                self.problems.append(f"{rel}: annotation file missing or empty ({anno})")
                continue
            data = read_json(anno)
            img_root = self.images / str(spec.get("IMG_ROOT", ""))
            items, absent = [], 0
            for entry in data:
                if len(items) >= self.max_per_file:
                    break
                try:
                    path, texts = entry[0], entry[1]
                    item = (ImageRef(str(img_root / path)), texts["POS"][0], texts["NEG"][0])
                except (IndexError, KeyError, TypeError):
                    self.problems.append(f"{anno}: malformed sample {str(entry)[:80]}")
                    break
                if os.path.exists(item[0].path):
                    items.append(item)
                else:
                    absent += 1
            if absent:
                self.absent[str(rel)] = absent
                self.problems.append(f"{rel}: {absent} sample(s) whose image is absent under {img_root} were "
                                     f"dropped before taking the first {self.max_per_file} (as the official loader)")
            self.files[str(rel)] = items
            self.annotations.append(anno)
            self.columns[str(rel)] = f"{rel.parts[0]}/{rel.parts[1]}"
        if not self.files:
            raise DataError(f"VL-CheckList: none of the configs under {self.corpus} has its annotation file")

    def inputs(self):
        items = [i for v in self.files.values() for i in v]
        return [i[0] for i in items], [t for i in items for t in (i[1], i[2])]

    def cache_key(self) -> str:
        kept = "\n".join(ref.path for items in self.files.values() for ref, _, _ in items)  # depends on the disk
        return digest(*(self.corpus / f for f in self.files), *self.annotations, str(self.images), str(self.max_per_file),
                      kept)

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        per_file, n_items, n_eval = {}, 0, 0
        for cfg, items in self.files.items():
            correct = [log.choose(k, emb.sims(ref, [pos, neg]), 0, subset=cfg)
                       for k, (ref, pos, neg) in enumerate(items) if missing.ok(ref)]
            per_file[cfg] = percent(correct)
            n_items, n_eval = n_items + len(items), n_eval + len(correct)
        by_column = defaultdict(list)
        for cfg, acc in per_file.items():
            by_column[self.columns[cfg]].append(acc)
        metrics = {f"file/{cfg}": acc for cfg, acc in per_file.items()}
        column_values = []
        for category, cols in COLUMNS.items():
            values = []
            for col in cols:
                key = f"{category}/{col}"
                if key in by_column:
                    metrics[key] = mean(by_column[key])
                    values.append(metrics[key])
            metrics[category] = mean(values)
            column_values += values
        metrics["avg"] = mean(column_values)
        headline = [c for c in ("Object", "Attribute", "Relation", "avg")]
        absent = sum(self.absent.values())
        return log.fill(BenchmarkResult(self.name, metrics, headline, n_items + absent, n_eval, missing.count + absent,
                                        missing.examples, list(self.problems)))


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class VLCheckListData(Section):
    root: str | None = option(None, "VL-CheckList repository (corpus/v1/*.yaml + data/)", flag="--vl-checklist-root",
                              metavar="DIR")
    images: str | None = option(None, "root the configs' IMG_ROOT paths are relative to", flag="--vl-checklist-images",
                                metavar="DIR", default_text="VL_CHECKLIST_ROOT")
    max_per_file: int = option(MAX_PER_FILE, "samples read per config file", flag="--vl-checklist-max-per-file",
                               at_least=1)


VL_CHECKLIST = BenchmarkSpec(
    "vl_checklist", VLCheckListData,
    lambda o: [VLCheckList(*need(o, "vl_checklist", "root"), o.images, o.max_per_file)],
    "VL-CheckList Object/Attribute/Relation")
