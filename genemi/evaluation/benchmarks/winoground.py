"""Winoground (Thrush et al., CVPR 2022): 400 examples of 2 images x 2 captions.

Local copy of the gated HF dataset: ``<root>/examples.jsonl`` (``id, image_0, image_1, caption_0,
caption_1``) and ``<root>/images/<image_i>.png``. text score: s(c0,i0) > s(c1,i0) and s(c1,i1) > s(c0,i1);
image score: s(c0,i0) > s(c0,i1) and s(c1,i1) > s(c1,i0); group: both.
"""

from __future__ import annotations

from pathlib import Path

from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import BenchmarkResult, MissingTracker, digest, percent
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.manifest import iter_json_lines


def _image(folder: Path, name: str) -> ImageRef:
    if Path(name).suffix:
        return ImageRef(str(folder / name))
    for ext in (".png", ".jpg", ".jpeg"):
        if (folder / f"{name}{ext}").exists():
            return ImageRef(str(folder / f"{name}{ext}"))
    return ImageRef(str(folder / f"{name}.png"))


def winoground_scores(s00: float, s01: float, s10: float, s11: float) -> tuple[bool, bool, bool]:
    """``sij`` = s(caption_i, image_j) -> (text, image, group) correctness."""
    text = s00 > s10 and s11 > s01
    image = s00 > s01 and s11 > s10
    return text, image, text and image


class Winoground:
    name = "winoground"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.file = self.root / "examples.jsonl"
        if not self.file.is_file():
            raise DataError(f"Winoground: {self.file} not found (local copy of facebook/winoground)")
        images = self.root / "images"
        self.items = []
        for line, obj in iter_json_lines(self.file):
            missing = [k for k in ("image_0", "image_1", "caption_0", "caption_1") if k not in obj]
            if missing:
                raise ManifestError(f"{self.file}:{line}: missing {', '.join(missing)}")
            self.items.append((_image(images, obj["image_0"]), _image(images, obj["image_1"]),
                               obj["caption_0"], obj["caption_1"]))

    def inputs(self):
        return [r for i in self.items for r in i[:2]], [t for i in self.items for t in i[2:]]

    def cache_key(self) -> str:
        return digest(self.file, str(self.root))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing = MissingTracker(emb)
        text, image, group = [], [], []
        for i0, i1, c0, c1 in self.items:
            if not missing.ok(i0, i1):
                continue
            a, b = emb.sims(i0, [c0, c1]), emb.sims(i1, [c0, c1])
            t, im, g = winoground_scores(a[0], b[0], a[1], b[1])
            text.append(t), image.append(im), group.append(g)
        metrics = {"text": percent(text), "image": percent(image), "group": percent(group)}
        return BenchmarkResult(self.name, metrics, ["text", "image", "group"], len(self.items), len(text),
                               missing.count, missing.examples)
