"""ARO (Yuksekgonul et al., ICLR 2023): VG-Relation, VG-Attribution, COCO-Order, Flickr30k-Order.

* VG-Relation / VG-Attribution: ``<root>/visual_genome_relation.json`` / ``visual_genome_attribution.json``
  (items ``image_path, bbox_x, bbox_y, bbox_w, bbox_h, true_caption, false_caption`` and ``relation_name`` or
  ``attributes``), images ``<root>/images/`` cropped to the box. Correct iff the true caption scores strictly
  higher. VG-Relation = macro accuracy over relations **excluding the standard list of 157 symmetric/rare
  relations**; VG-Attribution = macro accuracy over attribute pairs with >= 25 samples.
* COCO-Order / Flickr30k-Order: from a Karpathy test JSON (``[{image, caption: [...]}]``); every caption
  (normalised, at most 30 words) against ARO's 4 word-order perturbations built with spaCy; Precision@1 =
  the true caption strictly first. Perturbations are random, so the metric is the mean (and std) over seeds
  (default 5), each seed deterministic.

Ties: ARO's ``argmax`` counted a tie with the true caption (placed first) as correct; genemi counts ties as
failures, like every other benchmark here. With real-valued similarities a tie needs two captions that
tokenize identically, which the perturbations never produce.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from genemi.caption_files import read_caption_entries, read_json
from genemi.errors import DataError, ManifestError
from genemi.evaluation.benchmarks.base import BenchmarkResult, MissingTracker, digest, mean, percent, strictly_first
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.text.normalize import normalize_caption

# The standard exclusion list of ARO's VG-Relation evaluation (the upstream notebook's list, 157 entries).
ARO_SYMMETRIC_RELATIONS = frozenset("""
adjusting|attached to|between|bigger than|biting|boarding|brushing|chewing|cleaning|climbing|close to|coming from|
coming out of|contain|crossing|dragging|draped over|drinking|drinking from|driving|driving down|driving on|
eating from|eating in|enclosing|exiting|facing|filled with|floating in|floating on|flying|flying above|flying in|
flying over|flying through|full of|going down|going into|going through|grazing in|growing in|growing on|guiding|
hanging from|hanging in|hanging off|hanging over|higher than|holding onto|hugging|in between|jumping off|
jumping on|jumping over|kept in|larger than|leading|leaning over|leaving|licking|longer than|looking in|
looking into|looking out|looking over|looking through|lying next to|lying on top of|making|mixed with|mounted on|
moving|on the back of|on the edge of|on the front of|on the other side of|opening|painted on|parked at|
parked beside|parked by|parked in|parked in front of|parked near|parked next to|perched on|petting|piled on|
playing|playing in|playing on|playing with|pouring|reaching for|reading|reflected on|riding on|running in|
running on|running through|seen through|sitting behind|sitting beside|sitting by|sitting in front of|
sitting near|sitting next to|sitting under|skiing down|skiing on|sleeping in|sleeping on|smiling at|sniffing|
splashing|sprinkled on|stacked on|standing against|standing around|standing behind|standing beside|
standing in front of|standing near|standing next to|staring at|stuck in|surrounding|swimming in|swinging|
talking to|topped with|touching|traveling down|traveling on|tying|typing on|underneath|wading in|waiting for|
walking across|walking by|walking down|walking next to|walking through|working in|working on|worn on|
wrapped around|wrapped in|by|of|near|next to|with|beside|on the side of|around""".replace("\n", "").split("|"))
MIN_ATTRIBUTE_PAIR_SAMPLES = 25
ORDER_MAX_WORDS = 30
ORDER_SEEDS = (0, 1, 2, 3, 4)


class _VGBenchmark:
    file_name = ""
    group_field = ""

    def __init__(self, root: str | Path, images: str | Path | None = None):
        self.root = Path(root)
        self.images = Path(images) if images else self.root / "images"
        self.file = self.root / self.file_name
        if not self.file.is_file():
            raise DataError(f"{self.name}: {self.file} not found (ARO's {self.file_name})")
        data = read_json(self.file)
        if not isinstance(data, list):
            raise ManifestError(f"{self.file}: expected a JSON list of ARO items")
        self.items = []
        for k, item in enumerate(data):
            need = ("image_path", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "true_caption", "false_caption", self.group_field)
            missing = [f for f in need if not isinstance(item, dict) or f not in item]
            if missing:
                raise ManifestError(f"{self.file}: item {k} lacks {', '.join(missing)}")
            box = (float(item["bbox_x"]), float(item["bbox_y"]), float(item["bbox_w"]), float(item["bbox_h"]))
            self.items.append((ImageRef(str(self.images / item["image_path"]), box), item["true_caption"],
                               item["false_caption"], self._group(item[self.group_field])))

    @staticmethod
    def _group(value) -> str:
        return "-".join(value) if isinstance(value, list) else str(value)

    def inputs(self):
        return [i[0] for i in self.items], [t for i in self.items for t in (i[1], i[2])]

    def cache_key(self) -> str:
        return digest(self.file, str(self.images))

    def _macro(self, emb: Embeddings, keep: Callable[[str, list[bool]], bool], used: str) -> BenchmarkResult:
        """Macro accuracy over the groups ``keep`` accepts (and the micro accuracy over all, for reference)."""
        missing = MissingTracker(emb)
        groups: dict[str, list[bool]] = defaultdict(list)
        for ref, true, false, group in self.items:
            if missing.ok(ref):
                groups[group].append(strictly_first(emb.sims(ref, [true, false])))
        kept = [v for g, v in groups.items() if keep(g, v)]
        metrics = {"macro_accuracy": mean([percent(v) for v in kept]),
                   "micro_accuracy_all": percent([x for v in groups.values() for x in v]), used: float(len(kept))}
        evaluated = sum(len(v) for v in groups.values())
        return BenchmarkResult(self.name, metrics, ["macro_accuracy"], len(self.items), evaluated, missing.count,
                               missing.examples)


class VGRelation(_VGBenchmark):
    name = "aro_vg_relation"
    file_name = "visual_genome_relation.json"
    group_field = "relation_name"

    def score(self, emb: Embeddings) -> BenchmarkResult:
        return self._macro(emb, lambda relation, _: relation not in ARO_SYMMETRIC_RELATIONS, "relations_used")


class VGAttribution(_VGBenchmark):
    name = "aro_vg_attribution"
    file_name = "visual_genome_attribution.json"
    group_field = "attributes"

    def score(self, emb: Embeddings) -> BenchmarkResult:
        return self._macro(emb, lambda _, v: len(v) >= MIN_ATTRIBUTE_PAIR_SAMPLES, "attribute_pairs_used")


class OrderBenchmark:
    """COCO-Order or Flickr30k-Order over a Karpathy test file."""

    def __init__(self, name: str, annotations: str | Path, images: str | Path, seeds: Sequence[int] = ORDER_SEEDS):
        from genemi.text.order import ORDER_PERTURBATIONS
        from genemi.text.parsing import parse_captions

        self.name, self.annotations, self.images, self.seeds = name, Path(annotations), Path(images), tuple(seeds)
        entries = read_caption_entries(self.annotations)
        captions = [normalize_caption(e.caption, ORDER_MAX_WORDS) for e in entries]
        self.items = []  # (image, [true, p1..p4] per seed)
        for entry, caption, parsed in zip(entries, captions, parse_captions(captions)):
            per_seed = []
            for seed in self.seeds:
                options = [caption]
                for name_, perturb in ORDER_PERTURBATIONS.items():
                    text = perturb(parsed, random.Random(f"{seed}:{entry.id}:{name_}"))
                    options.append(text if text is not None else caption)
                per_seed.append(options)
            self.items.append((ImageRef(str(self.images / entry.image)), per_seed))

    def inputs(self):
        return [i[0] for i in self.items], [t for _, per_seed in self.items for opts in per_seed for t in opts]

    def cache_key(self) -> str:
        return digest(self.annotations, str(self.images), repr(self.seeds))

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing = MissingTracker(emb)
        per_seed: list[list[bool]] = [[] for _ in self.seeds]
        for ref, options in self.items:
            if not missing.ok(ref):
                continue
            for k, opts in enumerate(options):
                # a perturbation that cannot change the caption repeats it: such items count as failures
                per_seed[k].append(strictly_first(emb.sims(ref, opts)))
        values = [percent(v) for v in per_seed]
        metrics = {"precision_at_1": float(np.mean(values)), "precision_at_1_std": float(np.std(values))}
        metrics.update({f"seed_{s}": v for s, v in zip(self.seeds, values)})
        return BenchmarkResult(self.name, metrics, ["precision_at_1"], len(self.items),
                               len(per_seed[0]) if per_seed else 0, missing.count, missing.examples)
