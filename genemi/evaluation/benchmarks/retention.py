"""Retention of general skills: image-text retrieval and zero-shot classification.

* Retrieval: a Karpathy test JSON (``[{image, caption: [5 captions]}]``, COCO 5k or Flickr30k 1k);
  image->text R@K = an image's best-ranked own caption is in the top K; text->image R@K = a caption's image in
  the top K. A candidate scoring equal to the ground truth ranks above it (ties are failures).
* Zero-shot: an ImageFolder (one sub-folder per class, sorted); class names from a file (one per line), else
  open_clip's ImageNet class names when there are 1000 classes, else the folder names; prompts = open_clip's
  OpenAI ImageNet templates (or ``simple``); classifier = the normalised mean of each class's normalised prompt
  embeddings. top-1 / top-5 accuracy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemi.caption_files import read_caption_entries
from genemi.errors import DataError
from genemi.evaluation.benchmarks.base import (BenchmarkResult, BenchmarkSpec, ItemLog, MissingTracker, digest, need)
from genemi.evaluation.scoring import Embeddings, ImageRef, unique_product
from genemi.options import Section, option
from genemi.images import IMAGE_EXTENSIONS, under_root



def ranks(scores: np.ndarray, positives: list[set[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows are queries. A query's rank = candidates scoring >= its best positive, minus that positive
    (0 = strictly first); whether the best non-positive candidate ties exactly with that best positive
    (the top-1 decision is a tie), and whether any non-positive candidate does (the rank counts a tie)."""
    out, ties, ties_any = [], [], []
    for row, pos in zip(scores, positives):
        best = max(row[p] for p in pos)
        out.append(int((row >= best).sum()) - 1)
        others = np.delete(row, sorted(pos))
        ties.append(bool(others.size and others.max() == best))
        ties_any.append(bool(others.size and (others == best).any()))
    return np.array(out, dtype=np.int64), np.array(ties, dtype=bool), np.array(ties_any, dtype=bool)


def recall_at_k(scores: np.ndarray, positives: list[set[int]], ks=(1, 5, 10)) -> dict[int, float]:
    """Recall@K in percent: the fraction of queries whose rank (see :func:`ranks`) is below K."""
    r = ranks(scores, positives)[0]
    return {k: 100.0 * float((r < k).mean()) if len(r) else float("nan") for k in ks}


class Retrieval:
    name = "retrieval"
    # clip_benchmark ranks with topk, whose order among equal scores is unspecified; genemi ranks a tie below
    official_ties = ties = "strict"

    def __init__(self, annotations: str | Path, images: str | Path, name: str = "retrieval"):
        self.name, self.annotations, self.images = name, Path(annotations), Path(images)
        by_image = defaultdict(list)
        for e in read_caption_entries(self.annotations):
            by_image[e.image].append(e.caption)
        self.pairs = [(ImageRef(str(under_root(self.images, img, f"retrieval annotations {self.annotations}"))), caps)
                      for img, caps in by_image.items()]

    def inputs(self):
        return [r for r, _ in self.pairs], [c for _, caps in self.pairs for c in caps]

    def cache_key(self) -> str:
        return digest(self.annotations, str(self.images))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing = MissingTracker(emb)
        pairs = [(r, caps) for r, caps in self.pairs if missing.ok(r)]
        texts, owner = [], []
        for n, (_, caps) in enumerate(pairs):
            texts += caps
            owner += [n] * len(caps)
        sims = unique_product(emb.image_matrix([r for r, _ in pairs]), emb.text_matrix(texts))
        own = defaultdict(set)
        for t, n in enumerate(owner):
            own[n].add(t)
        log = ItemLog(self.ties)
        i2t_rank, i2t_tie, i2t_any = ranks(sims, [own[n] for n in range(len(pairs))])
        t2i_rank, t2i_tie, t2i_any = ranks(sims.T, [{n} for n in owner])
        for n, (ref, _) in enumerate(pairs):
            log.add(ref.path, "i2t", i2t_tie[n], i2t_any[n], rank=int(i2t_rank[n]), correct=bool(i2t_rank[n] == 0))
        for t, n in enumerate(owner):
            log.add(f"{pairs[n][0].path}#{texts[t]}", "t2i", t2i_tie[t], t2i_any[t], rank=int(t2i_rank[t]),
                    correct=bool(t2i_rank[t] == 0))
        metrics = {}
        for direction, r in (("i2t", i2t_rank), ("t2i", t2i_rank)):
            metrics |= {f"{direction}_R@{k}": 100.0 * float((r < k).mean()) if len(r) else float("nan")
                        for k in (1, 5, 10)}
        metrics["mean_recall"] = float(np.mean(list(metrics.values())))
        return log.fill(BenchmarkResult(self.name, metrics, ["i2t_R@1", "t2i_R@1", "mean_recall"], len(self.pairs),
                                        len(pairs), missing.count, missing.examples))


def _templates(kind: str):
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

    if kind not in ("openai", "simple"):
        raise DataError(f"zero-shot templates must be 'openai' or 'simple', not {kind!r}")
    return OPENAI_IMAGENET_TEMPLATES if kind == "openai" else SIMPLE_IMAGENET_TEMPLATES


class ZeroShot:
    name = "zeroshot"
    image_option = "root"
    official_ties = ties = "strict"  # a class scoring equal to the true one ranks above it

    def __init__(self, root: str | Path, classnames: str | Path | None = None, templates: str = "openai"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"zero-shot: image folder not found: {self.root}")
        classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not classes:
            raise DataError(f"zero-shot: {self.root} has no class sub-folders (ImageFolder layout)")
        if classnames:
            names = [l.strip() for l in Path(classnames).read_text(encoding="utf-8").splitlines() if l.strip()]
            if len(names) != len(classes):
                raise DataError(f"zero-shot: {classnames} has {len(names)} names for {len(classes)} class folders")
        elif len(classes) == 1000:
            from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

            names = list(IMAGENET_CLASSNAMES)
        else:
            names = [c.replace("_", " ") for c in classes]
        self.classnames, self.template_kind = names, templates
        self.prompts = [[t(name) for t in _templates(templates)] for name in names]
        self.samples = [(ImageRef(str(f)), label) for label, c in enumerate(classes)
                        for f in sorted((self.root / c).iterdir()) if f.suffix.lower() in IMAGE_EXTENSIONS]

    def inputs(self):
        return [r for r, _ in self.samples], [p for ps in self.prompts for p in ps]

    def cache_key(self) -> str:
        listing = "\n".join(r.path for r, _ in self.samples)
        return digest(listing, repr(self.classnames), self.template_kind)

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing = MissingTracker(emb)
        weights = np.stack([emb.text_matrix(ps).astype(np.float64).mean(0) for ps in self.prompts])
        weights /= np.maximum(np.linalg.norm(weights, axis=1, keepdims=True), 1e-12)
        samples = [(r, y) for r, y in self.samples if missing.ok(r)]
        if not samples:
            return BenchmarkResult(self.name, {"top1": float("nan"), "top5": float("nan")}, ["top1", "top5"],
                                   len(self.samples), 0, missing.count, missing.examples)
        logits = unique_product(emb.image_matrix([r for r, _ in samples]), weights)
        rank, tie, tie_any = ranks(logits, [{y} for _, y in samples])
        log = ItemLog(self.ties)
        for (ref, y), row, r, t, ta in zip(samples, logits, rank, tie, tie_any):
            log.add(ref.path, None, t, ta, label=self.classnames[y], predicted=self.classnames[int(np.argmax(row))],
                    rank=int(r), correct=bool(r == 0))
        metrics = {"top1": float(100 * (rank < 1).mean()), "top5": float(100 * (rank < 5).mean())}
        return log.fill(BenchmarkResult(self.name, metrics, ["top1", "top5"], len(self.samples), len(samples),
                                        missing.count, missing.examples))


# --- data options (flags included) and registry entries -------------------------------------------------------

@dataclass
class RetrievalData(Section):
    annotations: str | None = option(None, "Karpathy test JSON (COCO 5k / Flickr30k 1k) for retrieval",
                                     flag="--retrieval-annotations", metavar="FILE")
    images: str | None = option(None, "image root for retrieval", flag="--retrieval-images", metavar="DIR")
    name: str = option("retrieval", "the benchmark's name in the results", flag=False)


@dataclass
class ZeroShotData(Section):
    root: str | None = option(None, "ImageFolder for zero-shot classification (e.g. ImageNet val)",
                              flag="--zeroshot-root", metavar="DIR")
    classnames: str | None = option(None, "class names file, one per line, in folder order",
                                    flag="--zeroshot-classnames", metavar="FILE")
    templates: str = option("openai", "prompt templates", flag="--zeroshot-templates", choices=("openai", "simple"))


RETRIEVAL = BenchmarkSpec(
    "retrieval", RetrievalData, lambda o: [Retrieval(*need(o, "retrieval", "annotations", "images"), o.name)],
    "image<->text retrieval R@1/5/10 on a Karpathy test file")
ZEROSHOT = BenchmarkSpec("zeroshot", ZeroShotData,
                         lambda o: [ZeroShot(*need(o, "zeroshot", "root"), o.classnames, o.templates)],
                         "zero-shot classification on an ImageFolder")
