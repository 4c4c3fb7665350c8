"""Winoground (Thrush et al., CVPR 2022): 400 examples of 2 images x 2 captions.

Two on-disk forms of the gated HF dataset ``facebook/winoground`` (nothing is downloaded):

* JSONL: ``<root>/examples.jsonl`` (``id, image_0, image_1, caption_0, caption_1``, ...) and
  ``<root>/images/<image_i>.png`` (the hub's first layout; ``<root>/data/`` is also looked in);
* Parquet, as the hub ships it now: ``<root>/data/test-*.parquet`` (or ``<root>/*.parquet``, the
  parquet-converter's ``<root>/default/test/*.parquet``, or ``root`` = one ``.parquet`` file) with columns
  ``id, image_0, image_1, caption_0, caption_1`` (images embedded as ``{bytes, path}``). The images are
  written once to the image cache (:mod:`genemi.evaluation.benchmarks.hub_files`).

Scores, with s(caption_i, image_j): text: s(c0,i0) > s(c1,i0) and s(c1,i1) > s(c0,i1); image: s(c0,i0) >
s(c0,i1) and s(c1,i1) > s(c1,i0); group: both. Ties: strict, as the benchmark defines the scores (the paper's
inequalities and the authors' evaluation code on the dataset card); clip_benchmark's argmax version (the first of
equal scores wins: caption_0 / image_0) is the ``first`` rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import (BenchmarkResult, BenchmarkSpec, ItemLog, MissingTracker, digest, need,
                                               percent, picks, tied)
from genemi.evaluation.benchmarks.hub_files import embedded_images, read_parquet
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option
from genemi.manifest import iter_json_lines

FIELDS = ("image_0", "image_1", "caption_0", "caption_1")


def _image(folder: Path, name: str) -> ImageRef:
    if Path(name).suffix:
        return ImageRef(str(folder / name))
    for ext in (".png", ".jpg", ".jpeg"):
        if (folder / f"{name}{ext}").exists():
            return ImageRef(str(folder / f"{name}{ext}"))
    return ImageRef(str(folder / f"{name}.png"))


def winoground_scores(s00: float, s01: float, s10: float, s11: float, ties: str = "strict") -> tuple[bool, bool, bool]:
    """``sij`` = s(caption_i, image_j) -> (text, image, group) correctness under the tie rule ``ties``
    (``first``: each image picks the first of its equally scored captions, each caption the first image)."""
    text = picks([s00, s10], 0, ties) and picks([s01, s11], 1, ties)
    image = picks([s00, s01], 0, ties) and picks([s10, s11], 1, ties)
    return text, image, text and image


def winoground_tie(s00: float, s01: float, s10: float, s11: float) -> bool:
    """Does any of the four comparisons of the text and image scores tie exactly?"""
    return tied([s00, s10], 0) or tied([s01, s11], 1) or tied([s00, s01], 0) or tied([s10, s11], 1)


def score_2x2(emb: Embeddings, log: ItemLog, item_id: object, subset: str | None, i0: ImageRef, i1: ImageRef,
              c0: str, c1: str, **extra: object) -> tuple[bool, bool, bool]:
    """Decide one Winoground-style example (caption_k belongs to image_k) under ``log``'s tie rule and record
    its row (scores c0_i0, c0_i1, c1_i0, c1_i1); returns (text, image, group)."""
    a, b = emb.sims(i0, [c0, c1]), emb.sims(i1, [c0, c1])
    s00, s01, s10, s11 = float(a[0]), float(b[0]), float(a[1]), float(b[1])
    t, im, g = winoground_scores(s00, s01, s10, s11, log.rule)
    log.add(item_id, subset, winoground_tie(s00, s01, s10, s11), scores=[s00, s01, s10, s11],
            text=t, image=im, group=g, **extra)
    return t, im, g


def _find(root: Path) -> tuple[str, list[Path]]:
    """("jsonl", [examples.jsonl]) or ("parquet", [files]) for a Winoground root."""
    if root.is_file():
        if root.suffix == ".parquet":
            return "parquet", [root]
        if root.suffix == ".jsonl":
            return "jsonl", [root]
    for jsonl in (root / "examples.jsonl", root / "data" / "examples.jsonl"):
        if jsonl.is_file():
            return "jsonl", [jsonl]
    for pattern in ("*.parquet", "data/*.parquet", "*/test/*.parquet"):
        files = sorted(p for p in root.glob(pattern) if p.is_file())
        if files:
            return "parquet", files
    raise DataError(f"Winoground: no examples.jsonl (+ images/) nor Parquet files (data/test-*.parquet) in {root} "
                    "(a local copy of facebook/winoground)")


class Winoground:
    name = "winoground"
    official_ties = ties = "strict"  # the paper's and the dataset card's c0_i0 > c1_i0 ...; clip_benchmark: "first"
    image_option = "root"  # images/ (or the Parquet files) under the root

    def __init__(self, root: str | Path, image_cache: str | Path | None = None):
        self.root = Path(root)
        self.format, self.files = _find(self.root)
        self.image_cache = image_cache
        #: (item id, image_0, image_1, caption_0, caption_1) in file order
        self.items: list[tuple[str, ImageRef, ImageRef, str, str]] = []
        if self.format == "jsonl":
            self._read_jsonl(self.files[0])
        else:
            for path in self.files:
                self._read_parquet(path)
        seen = set()
        for item in self.items:
            if item[0] in seen:
                raise ManifestError(f"Winoground: id {item[0]!r} appears twice in {', '.join(map(str, self.files))}")
            seen.add(item[0])

    @property
    def file(self) -> Path:
        return self.files[0]

    def _read_jsonl(self, path: Path) -> None:
        images = path.parent / "images"
        for line, obj in iter_json_lines(path):
            missing = [k for k in FIELDS if k not in obj]
            if missing:
                raise ManifestError(f"{path}:{line}: missing {', '.join(missing)}")
            self.items.append((str(obj.get("id", line - 1)), _image(images, obj["image_0"]),
                               _image(images, obj["image_1"]), obj["caption_0"], obj["caption_1"]))

    def _read_parquet(self, path: Path) -> None:
        rows = read_parquet(path, ("caption_0", "caption_1"), optional=("id",))
        images = embedded_images(path, ("image_0", "image_1"), self.image_cache)
        for n, (row, files) in enumerate(zip(rows, images)):
            for col in ("caption_0", "caption_1"):
                if not isinstance(row[col], str):
                    raise ManifestError(f"{path}: row {n}: {col} is not a string ({row[col]!r})")
            item_id = row["id"] if row.get("id") is not None else len(self.items)
            self.items.append((str(item_id), ImageRef(str(files["image_0"])), ImageRef(str(files["image_1"])),
                               row["caption_0"], row["caption_1"]))

    def inputs(self):
        return [r for i in self.items for r in i[1:3]], [t for i in self.items for t in i[3:]]

    def cache_key(self) -> str:
        return digest(*self.files, str(self.root))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        text, image, group = [], [], []
        for item_id, i0, i1, c0, c1 in self.items:
            if not missing.ok(i0, i1):
                continue
            t, im, g = score_2x2(emb, log, item_id, None, i0, i1, c0, c1)
            text.append(t), image.append(im), group.append(g)
        metrics = {"text": percent(text), "image": percent(image), "group": percent(group)}
        return log.fill(BenchmarkResult(self.name, metrics, ["text", "image", "group"], len(self.items), len(text),
                                        missing.count, missing.examples))


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class WinogroundData(Section):
    shared: ClassVar[dict[str, str]] = {"image_cache": "--embedded-image-cache"}
    root: str | None = option(None, "local facebook/winoground copy: examples.jsonl + images/, or the hub's "
                              "data/test-*.parquet", flag="--winoground-root", metavar="DIR")
    image_cache: str | None = option(None, "where Parquet-embedded images are extracted once", flag=False)


WINOGROUND = BenchmarkSpec("winoground", WinogroundData,
                           lambda o: [Winoground(*need(o, "winoground", "root"), o.image_cache)],
                           "Winoground text/image/group (examples.jsonl + images/, or the hub's Parquet)")
