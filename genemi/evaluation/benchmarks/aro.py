"""ARO (Yuksekgonul et al., ICLR 2023): VG-Relation, VG-Attribution, COCO-Order, Flickr30k-Order.

Reproduces ``mertyg/vision-language-models-are-bows`` (read at commit ``81fdd20``).

Tie rule: ARO's scorer takes ``np.argmax`` over the caption options (the first of equal maxima wins), so
``official_ties = "first"`` and the official option order is kept: ``[false_caption, true_caption]`` for
VG-Relation/Attribution (the right answer is index 1: a tie is **wrong**), ``[true caption, 4 perturbations]``
for the Order sets (the right answer is index 0: a tie is **right**). ``--ties strict`` counts every tie wrong.

* VG-Relation / VG-Attribution: ``<root>/visual_genome_relation.json`` / ``visual_genome_attribution.json``
  (items ``image_path, bbox_x, bbox_y, bbox_w, bbox_h, true_caption, false_caption`` and ``relation_name`` or
  ``attributes``), images ``<root>/images/`` cropped to the box. VG-Relation: ``macro_accuracy`` = macro over
  relations **excluding the notebook's list of 157 symmetric/rare relations** (the number ARO reports) and
  ``macro_accuracy_all_relations`` = macro over every relation (the mean of every record
  ``evaluate_scores`` returns, before the notebook filters them); VG-Attribution: macro accuracy over
  attribute pairs (``"<a>_<b>"``, as ARO names them) with >= 25 samples. Item ids are indices in the JSON.
* COCO-Order / Flickr30k-Order: from a Karpathy test JSON (``[{image, caption: [...]}]``), one item per
  caption (item id = its index among all captions in file order, ARO's test-case index), Precision@1 of the
  true caption over 5 options, mean (and population std) over seeds (default 0-4; ``main_aro.py``'s default
  is 1). Protocols (``protocol``):

  - ``official`` (default): ARO's own options, rebuilt exactly (:mod:`genemi.text.aro_perturbations`): the
    four perturbations of the *raw* caption, fine-grained spaCy tags, NLTK trigrams, ``pre_caption`` after
    perturbing, and the seeded NumPy/Python streams replayed through the captions in file order (so the
    options of a caption depend on the captions before it: evaluate the whole file, or freeze the options).
    A perturbation that cannot move anything repeats the true caption (an exact tie, right under ``first``).
  - ``strict``: genemi's variant: captions normalised first (:func:`~genemi.text.normalize.normalize_caption`,
    30 words), coarse POS (NOUN/PROPN/ADJ), every perturbation forced to change the word order, each drawn
    from its own RNG seeded by (seed, caption id, perturbation), so options do not depend on file order. A
    perturbation that cannot be made is **dropped** (the item keeps fewer options); a caption with no
    possible perturbation is dropped from the set. No option repeats the true caption.
  - an options file (``options_file``): fixed options per item, so two models (or two sites) are compared on
    identical options; :meth:`OrderBenchmark.export_options` writes one from either protocol. JSONL, one
    record per item and seed: ``{"item_id", "seed", "image", "options": [true caption, negatives...]}``
    (``caption_id`` and ``protocol`` optional); ``.json``: a list of such records.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from genemi.caption_files import parse_json_lines, read_caption_entries, read_json, read_text
from genemi.errors import ConfigError, DataError, ManifestError
from genemi.evaluation.benchmarks.base import (BenchmarkResult, BenchmarkSpec, ItemLog, MissingTracker, digest, mean,
                                              need, percent)
from genemi.evaluation.scoring import Embeddings, ImageRef
from genemi.options import Section, option, section

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
ORDER_PROTOCOLS = ("official", "strict")


class _VGBenchmark:
    file_name = ""
    group_field = ""
    official_ties = ties = "first"  # ARO: argmax over [false_caption, true_caption], right = 1

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
        return "_".join(map(str, value)) if isinstance(value, list) else str(value)

    def inputs(self):
        return [i[0] for i in self.items], [t for i in self.items for t in (i[2], i[1])]

    def cache_key(self) -> str:
        return digest(self.file, str(self.images))

    def _decide(self, emb: Embeddings) -> tuple[MissingTracker, ItemLog, dict[str, list[bool]]]:
        """Every item in ARO's option order ``[false, true]`` (right = 1), grouped by relation / attribute pair."""
        missing, log = MissingTracker(emb), ItemLog(self.ties)
        groups: dict[str, list[bool]] = defaultdict(list)
        for k, (ref, true, false, group) in enumerate(self.items):
            if missing.ok(ref):
                groups[group].append(log.choose(k, emb.sims(ref, [false, true]), 1, subset=group))
        return missing, log, groups

    def _result(self, missing: MissingTracker, log: ItemLog, groups: dict[str, list[bool]], metrics: dict,
                headline: list[str]) -> BenchmarkResult:
        metrics["micro_accuracy_all"] = percent([x for v in groups.values() for x in v])
        evaluated = sum(len(v) for v in groups.values())
        return log.fill(BenchmarkResult(self.name, metrics, headline, len(self.items), evaluated, missing.count,
                                        missing.examples))


class VGRelation(_VGBenchmark):
    name = "aro_vg_relation"
    file_name = "visual_genome_relation.json"
    group_field = "relation_name"

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log, groups = self._decide(emb)
        kept = [v for g, v in groups.items() if g not in ARO_SYMMETRIC_RELATIONS]
        metrics = {"macro_accuracy": mean([percent(v) for v in kept]),
                   "macro_accuracy_all_relations": mean([percent(v) for v in groups.values()]),
                   "relations_used": float(len(kept)), "relations_all": float(len(groups))}
        return self._result(missing, log, groups, metrics, ["macro_accuracy", "macro_accuracy_all_relations"])


class VGAttribution(_VGBenchmark):
    name = "aro_vg_attribution"
    file_name = "visual_genome_attribution.json"
    group_field = "attributes"

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log, groups = self._decide(emb)
        kept = [v for v in groups.values() if len(v) >= MIN_ATTRIBUTE_PAIR_SAMPLES]
        metrics = {"macro_accuracy": mean([percent(v) for v in kept]), "attribute_pairs_used": float(len(kept))}
        return self._result(missing, log, groups, metrics, ["macro_accuracy"])


@dataclass(frozen=True)
class OrderItem:
    """One Order test case: ``options[0]`` is the true caption; ``image`` is relative to the image root."""

    item_id: str
    image: str
    options: tuple[str, ...]
    caption_id: str | None = None


def _strict_options(entries, seeds: Sequence[int], max_words: int) -> tuple[dict[int, list[OrderItem]], int, int]:
    """genemi's protocol; returns the items per seed, the perturbations dropped and the captions dropped."""
    from genemi.text.normalize import normalize_caption
    from genemi.text.order import ORDER_PERTURBATIONS
    from genemi.text.parsing import parse_captions

    captions = [normalize_caption(e.caption, max_words) for e in entries]
    items: dict[int, list[OrderItem]] = {s: [] for s in seeds}
    dropped_options = dropped_items = 0
    for k, (entry, caption, parsed) in enumerate(zip(entries, captions, parse_captions(captions))):
        for seed in seeds:
            options = [caption]
            for name, perturb in ORDER_PERTURBATIONS.items():
                text = perturb(parsed, random.Random(f"{seed}:{entry.id}:{name}"))
                if text is None:
                    dropped_options += 1
                else:
                    options.append(text)
            if len(options) > 1:
                items[seed].append(OrderItem(str(k), entry.image, tuple(options), entry.id))
            else:
                dropped_items += 1
    return items, dropped_options, dropped_items


def _official_options(entries, seeds: Sequence[int], max_words: int,
                      python_random_skip: int) -> dict[int, list[OrderItem]]:
    from genemi.text.aro_perturbations import official_options, tag_captions

    tagged = tag_captions([e.caption for e in entries])
    items = {}
    for seed in seeds:
        options = official_options(tagged, seed, max_words, python_random_skip)
        items[seed] = [OrderItem(str(k), e.image, tuple(o), e.id) for k, (e, o) in enumerate(zip(entries, options))]
    return items


def _option_records(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, record) of an options file: JSONL (``path:line``) or a JSON list (``path: record N``).
    Unlike manifests, a truncated last line is an error, not skipped: every item must be there."""
    if path.suffix.lower() == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise ManifestError(f"{path}: expected a JSON list of option records")
        for n, record in enumerate(data):
            yield f"{path}: record {n}", record
        return
    for number, record in parse_json_lines(path, read_text(path)):
        yield f"{path}:{number}", record


def read_order_options(path: str | Path) -> tuple[dict[int, list[OrderItem]], set[str]]:
    """Validated items per seed (in file order) of an options file, and the protocols its records name."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Order options file not found: {path}")
    items: dict[int, list[OrderItem]] = {}
    seen: dict[tuple[int, str], str] = {}
    protocols: set[str] = set()
    for where, record in _option_records(path):
        if not isinstance(record, dict):
            raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for key in ("item_id", "image", "options"):
            if key not in record:
                raise ManifestError(f"{where}: no {key!r} (records need item_id, image, options; seed optional)")
        item_id, image, options = record["item_id"], record["image"], record["options"]
        seed = record.get("seed", 0)
        if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or str(item_id) == "":
            raise ManifestError(f"{where}: item_id must be a non-empty string or an integer, not {item_id!r}")
        if not isinstance(image, str) or not image:
            raise ManifestError(f"{where}: image must be a non-empty path string, not {image!r}")
        if (not isinstance(options, list) or len(options) < 2
                or not all(isinstance(o, str) for o in options)):
            raise ManifestError(f"{where}: options must be a list of at least 2 strings (the true caption first)")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ManifestError(f"{where}: seed must be an integer, not {seed!r}")
        key = (seed, str(item_id))
        if key in seen:
            raise ManifestError(f"{where}: item {item_id!r} of seed {seed} is also at {seen[key]}")
        seen[key] = where
        caption_id = record.get("caption_id")
        items.setdefault(seed, []).append(OrderItem(str(item_id), image, tuple(options),
                                                    None if caption_id is None else str(caption_id)))
        if record.get("protocol") is not None:
            protocols.add(str(record["protocol"]))
    if not items:
        raise ManifestError(f"{path}: no option records")
    return items, protocols


class OrderBenchmark:
    """COCO-Order or Flickr30k-Order over a Karpathy test file, or over a file of fixed options."""

    official_ties = ties = "first"  # ARO: argmax over [true caption, perturbations...], right = 0

    def __init__(self, name: str, annotations: str | Path | None, images: str | Path,
                 seeds: Sequence[int] = ORDER_SEEDS, protocol: str = "official", options_file: str | Path | None = None,
                 max_words: int = ORDER_MAX_WORDS, python_random_skip: int = 0):
        self.name, self.images = name, Path(images)
        self.image_option = f"{name.removeprefix('aro_')}.images"  # coco_order.images / flickr_order.images
        self.annotations = Path(annotations) if annotations else None
        self.options_file = Path(options_file) if options_file else None
        self.notes: list[str] = []
        #: how the options were made, recorded in the result (``settings``)
        self.settings: dict[str, Any] = {}
        if self.options_file is not None:
            self.items, protocols = read_order_options(self.options_file)
            self.protocol = "file"
            self.seeds = tuple(self.items)
            self._generator = "file"
            self.notes.append(f"options from {self.options_file}"
                              + (f" (generated by protocol {', '.join(sorted(protocols))})" if protocols else ""))
            self.settings = {"protocol": "file", "options_file": str(self.options_file),
                             "generated_by": sorted(protocols)}
        else:
            if protocol not in ORDER_PROTOCOLS:
                raise DataError(f"{name}: unknown protocol {protocol!r}; expected one of {ORDER_PROTOCOLS}")
            if self.annotations is None:
                raise DataError(f"{name}: needs an annotation file (Karpathy test JSON) or an options file")
            self.protocol, self.seeds = protocol, tuple(int(s) for s in seeds)
            if not self.seeds:
                raise DataError(f"{name}: no seeds")
            entries = read_caption_entries(self.annotations)
            if protocol == "official":
                from genemi.text.aro_perturbations import sentence_splitter
                from genemi.text.parsing import SPACY_MODEL, load_spacy

                self.items = _official_options(entries, self.seeds, max_words, python_random_skip)
                version = load_spacy().meta.get("version", "?")
                self._generator = (f"official:{SPACY_MODEL}-{version}:{sentence_splitter()}:"
                                   f"skip{python_random_skip}:{max_words}")
                self.notes.append(f"official ARO options (spaCy {SPACY_MODEL} {version}, NLTK sentence splitter "
                                  f"{sentence_splitter()}, python_random_skip {python_random_skip})")
                self.settings = {"protocol": "official", "spacy_model": f"{SPACY_MODEL}-{version}",
                                 "sentence_splitter": sentence_splitter(), "python_random_skip": python_random_skip,
                                 "max_words": max_words}
            else:
                self.items, dropped_options, dropped_items = _strict_options(entries, self.seeds, max_words)
                self._generator = f"strict:{max_words}"
                self.settings = {"protocol": "strict", "max_words": max_words}
                self.notes.append(f"strict options: {dropped_options} perturbation(s) that could not be made were "
                                  f"dropped, {dropped_items} (caption, seed) pair(s) had none and were dropped")

    def refs(self) -> dict[str, ImageRef]:
        return {it.image: ImageRef(str(self.images / it.image)) for items in self.items.values() for it in items}

    def inputs(self):
        return list(self.refs().values()), [t for items in self.items.values() for it in items for t in it.options]

    def cache_key(self) -> str:
        source = self.options_file if self.options_file is not None else self.annotations
        return digest(source, str(self.images), repr(self.seeds), self._generator)

    def export_options(self, path: str | Path) -> Path:
        """Write the options (every seed) as an options file (JSONL) that ``options_file`` reads back."""
        from genemi.manifest import write_atomic

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for seed, items in self.items.items():
            for it in items:
                record = {"item_id": it.item_id, "seed": seed, "image": it.image, "options": list(it.options)}
                if it.caption_id is not None:
                    record["caption_id"] = it.caption_id
                record["protocol"] = self.protocol
                lines.append(json.dumps(record, ensure_ascii=False))
        write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
        return path

    def score(self, emb: Embeddings) -> BenchmarkResult:
        missing, log, refs = MissingTracker(emb), ItemLog(self.ties), self.refs()
        usable: dict[str, bool] = {}  # item id -> image readable (each item counted once, whatever the seeds)
        per_seed: dict[int, list[bool]] = {}
        identical: dict[int, list[bool]] = {}
        for seed, items in self.items.items():
            per_seed[seed], identical[seed] = [], []
            for it in items:
                ref = refs[it.image]
                if it.item_id not in usable:
                    usable[it.item_id] = missing.ok(ref)
                if not usable[it.item_id]:
                    continue
                repeats = sum(o == it.options[0] for o in it.options[1:])
                per_seed[seed].append(log.choose(it.item_id, emb.sims(ref, list(it.options)), 0, subset=f"seed_{seed}",
                                                 caption_id=it.caption_id, repeated_true_caption=repeats))
                identical[seed].append(repeats > 0)
        values = [percent(v) for v in per_seed.values()]
        metrics = {"precision_at_1": float(np.mean(values)), "precision_at_1_std": float(np.std(values)),
                   "items_repeating_true_caption": float(np.mean([percent(v) for v in identical.values()]))}
        metrics.update({f"seed_{s}": v for s, v in zip(per_seed, values)})
        n_items = len({it.item_id for items in self.items.values() for it in items})
        result = BenchmarkResult(self.name, metrics, ["precision_at_1"], n_items, sum(usable.values()),
                                 missing.count, missing.examples, [f"protocol: {self.protocol}", *self.notes],
                                 settings={**self.settings, "seeds": list(self.seeds)})
        return log.fill(result)


# --- data options (flags included) and registry entry ---------------------------------------------------------

@dataclass
class OrderData(Section):
    """COCO-Order or Flickr-Order (the flags take the section's prefix: --coco-order-images, ...)."""

    annotations: str | None = option(None, "Karpathy test JSON", metavar="FILE")
    images: str | None = option(None, "image root the JSON's paths are relative to", metavar="DIR")
    options_file: str | None = option(None, "fixed options (JSONL written by ...-write-options), so models are "
                                      "compared on identical options; the annotations are then not read",
                                      flag="--options", metavar="FILE")
    write_options: str | None = option(None, "write the generated options here", metavar="FILE")


@dataclass
class AroData(Section):
    root: str | None = option(None, "folder with visual_genome_relation.json, visual_genome_attribution.json, "
                              "images/", flag="--aro-root", metavar="DIR")
    images: str | None = option(None, "VG images for ARO", flag="--aro-images", metavar="DIR",
                                default_text="ARO_ROOT/images")
    seeds: list[int] = option(None, "seeds of the COCO/Flickr-Order perturbations",
                              flag="--order-seeds", default_factory=lambda: list(ORDER_SEEDS))
    order_protocol: str = option("official", "COCO/Flickr-Order caption options: ARO's own (official: its "
                                 "perturbations of the raw caption, which may repeat it) or genemi's variant that "
                                 "never offers the true caption twice (strict)", flag="--aro-order-protocol",
                                 choices=ORDER_PROTOCOLS)
    python_random_skip: int = option(0, "COCO/Flickr-Order official protocol: discard N words of Python's random "
                                     "stream before the first caption (0: a plain reading of ARO's code; 1 "
                                     "reproduces a run of ARO's own code where `import spacy` imports rich, which "
                                     "draws once from random; docs/benchmark_data.md)",
                                     flag="--aro-python-random-skip", at_least=0, metavar="N")
    coco_order: OrderData = section(OrderData, "", prefix="coco-order-")
    flickr_order: OrderData = section(OrderData, "", prefix="flickr-order-")


def build_aro(opts: AroData) -> list:
    """Registry builder: VG-Relation and VG-Attribution (``root``), COCO-Order and Flickr-Order (their sections)."""
    out: list = []
    if opts.root:
        out += [VGRelation(opts.root, opts.images), VGAttribution(opts.root, opts.images)]
    for key, name in (("coco_order", "aro_coco_order"), ("flickr_order", "aro_flickr_order")):
        sub = getattr(opts, key)
        if not any((sub.annotations, sub.images, sub.options_file, sub.write_options)):
            continue
        if sub.options_file:  # fixed options: the annotation file is not read
            (images,) = need(sub, "aro", "images", root=AroData, path=key)
            bench = OrderBenchmark(name, None, images, options_file=sub.options_file)
        else:
            ann, images = need(sub, "aro", "annotations", "images", root=AroData, path=key)
            bench = OrderBenchmark(name, ann, images, opts.seeds, protocol=opts.order_protocol,
                                   python_random_skip=opts.python_random_skip)
        if sub.write_options:
            bench.export_options(sub.write_options)
        out.append(bench)
    if not out:
        raise ConfigError("benchmark 'aro' needs root (--aro-root: VG-Relation/Attribution) and/or coco_order / "
                          "flickr_order (--coco-order-annotations/--coco-order-images, --flickr-order-...)")
    return out


ARO = BenchmarkSpec("aro", AroData, build_aro,
                    "ARO VG-Relation (macro, symmetric excluded), VG-Attribution (macro, >=25), COCO/Flickr-Order")
