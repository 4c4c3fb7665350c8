"""The GeNeMi test set (Sahin et al., WACV 2024) and the same metrics on any genemi variation manifest.

A row holds k (2..4) variations of one source image with their captions: ``num_sample``, ``caption_i``,
``image_i`` (a path, or ``{"path": ...}`` as the HF export has it), as JSON list or JSONL. With the k x k
similarity matrix s[i][j] = s(image_i, caption_j): Text@1 of image i = caption i strictly best for it;
Image@1 of caption j = image j strictly best for it; Group@1 = both for index i. ``text_1``, ``image_1``,
``group_1`` pool every pair of every row; ``text_all``, ``image_all``, ``group_all`` are the fractions of
rows where all k are right (the original ``eval_gnm_validation.py`` summary).

A genemi ``VariationRecord`` manifest (``.jsonl`` with ``save`` and ``captions``) is grouped into rows by
item id (``parent_id``): the variations of one item, each with its first caption. Records converted from the
original ``variation_annotation.json`` carry only the source image as parent; they are grouped by (source
image, item phrase).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemi.caption_files import read_json
from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import (
    BenchmarkResult,
    BenchmarkSpec,
    ItemLog,
    MissingTracker,
    digest,
    need,
    percent,
    picks,
    tied,
    tied_any,
)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option
from genemi.manifest import iter_json_lines


def _objects(path: Path) -> list[tuple[str, dict]]:
    if path.suffix.lower() == ".jsonl":
        return [(f"{path}:{line}", obj) for line, obj in iter_json_lines(path)]
    data = read_json(path)
    if isinstance(data, dict) and "test" in data:
        data = data["test"]
    if not isinstance(data, list):
        raise ManifestError(f"{path}: expected a JSON list of rows")
    return [(f"{path}: row {k}", obj) for k, obj in enumerate(data)]


def _image_path(value) -> str:
    return value["path"] if isinstance(value, dict) else str(value)


def row_metrics(s: np.ndarray, ties: str = "strict") -> tuple[list[bool], list[bool], list[bool]]:
    """Per index i of a k x k matrix s[image, caption]: (text@1, image@1, group@1) under a tie rule."""
    k = s.shape[0]
    text = [picks(s[i, :], i, ties) for i in range(k)]
    image = [picks(s[:, j], j, ties) for j in range(k)]
    return text, image, [t and m for t, m in zip(text, image)]


def row_ties(s: np.ndarray) -> tuple[bool, bool]:
    """Does any right pair tie exactly with the best wrong one of its row or column (the tie rule decides),
    and with any wrong one?"""
    k = range(s.shape[0])
    return (any(tied(s[i, :], i) or tied(s[:, i], i) for i in k),
            any(tied_any(s[i, :], i) or tied_any(s[:, i], i) for i in k))


def _item_key(rec) -> tuple:
    """The row a variation belongs to: its item's id (two items of one image may share a phrase, e.g. two
    "dog"s, and are two rows); records converted from the original format, whose parent is the source image,
    fall back to (source image, item phrase)."""
    if rec.parent_id and rec.parent_id != rec.origin_name:
        return ("item", rec.parent_id)
    return ("phrase", rec.origin_name, rec.item)


class GenemiTestSet:
    name = "genemi_testset"
    official_ties = ties = "strict"  # eval_gnm_validation.py compares with >

    def __init__(self, path: str | Path, images: str | Path | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"GeNeMi test set not found: {self.path}")
        self.images = Path(images) if images else self.path.parent
        objects = _objects(self.path)
        is_manifest = bool(objects) and "save" in objects[0][1]
        self.rows = self._from_manifest(objects) if is_manifest else self._from_rows(objects)
        if not self.rows:
            raise DataError(f"{self.path}: no row with at least 2 variations")

    def _ref(self, path: str) -> ImageRef:
        from genemi.images import under_root

        return ImageRef(str(under_root(self.images, path, f"GeNeMi test set {self.path}")))

    def _from_rows(self, objects):
        rows = []
        for where, obj in objects:
            k = obj.get("num_sample")
            if k is None:
                k = sum(1 for key in obj if key.startswith("caption_"))
            try:
                rows.append([(self._ref(_image_path(obj[f"image_{i}"])), str(obj[f"caption_{i}"])) for i in range(int(k))])
            except KeyError as exc:
                raise ManifestError(f"{where}: missing {exc.args[0]!r} (num_sample={k})") from exc
        return [r for r in rows if len(r) >= 2]

    def _from_manifest(self, objects):
        from genemi.records import VariationRecord

        groups = defaultdict(list)
        for where, obj in objects:
            try:
                rec = VariationRecord.model_validate(obj)
            except Exception as exc:
                raise ManifestError(f"{where}: invalid VariationRecord: {exc}") from exc
            if rec.status == "ok" and rec.captions:
                groups[_item_key(rec)].append((self._ref(rec.save), rec.captions[0]))
        return [g for g in groups.values() if len(g) >= 2]

    def inputs(self):
        return [i for row in self.rows for i, _ in row], [c for row in self.rows for _, c in row]

    def cache_key(self) -> str:
        return digest(self.path, str(self.images))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        text, image, group, rows_ok = [], [], [], []
        for n, row in enumerate(self.rows):
            refs, caps = [r for r, _ in row], [c for _, c in row]
            if not missing.ok(*refs):
                continue
            s = emb.scores(refs, caps)
            t, im, g = row_metrics(s, self.ties)
            log.add(n, None, *row_ties(s), images=";".join(r.path for r in refs),
                    scores=[float(v) for v in s.ravel()], text=t, image=im, group=g, correct=all(g))
            text += t
            image += im
            group += g
            rows_ok.append((all(t), all(im), all(g)))
        metrics = {"text_1": percent(text), "image_1": percent(image), "group_1": percent(group),
                   "text_all": percent([r[0] for r in rows_ok]), "image_all": percent([r[1] for r in rows_ok]),
                   "group_all": percent([r[2] for r in rows_ok])}
        return log.fill(BenchmarkResult(self.name, metrics, list(metrics), len(self.rows), len(rows_ok),
                                        missing.count, missing.examples))


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class GenemiTestSetData(Section):
    path: str | None = option(None, "GeNeMi test set (JSON/JSONL rows) or a genemi variation manifest",
                              flag="--evaluation-filepath", metavar="FILE")
    images: str | None = option(None, "images of --evaluation-filepath", flag="--evaluation-image-folder",
                                metavar="DIR")


GENEMI_TESTSET = BenchmarkSpec(
    "genemi_testset", GenemiTestSetData,
    lambda o: [GenemiTestSet(*need(o, "genemi_testset", "path"), o.images)],
    "GeNeMi test set (or a variation manifest): Text/Image/Group @1 and all-correct")
