"""Benchmark registry: name -> builder from that benchmark's data options (see docs/evaluation.md).

Each builder takes the benchmark's section of the data config (a mapping of paths and options) and returns
one or more benchmark objects (``aro`` expands to the ARO sets whose data is given).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from genemi.errors import ConfigError
from genemi.evaluation.benchmarks import colorswap as _colorswap
from genemi.evaluation.benchmarks import crepe as _crepe
from genemi.evaluation.benchmarks import spec as _spec
from genemi.evaluation.benchmarks import whatsup as _whatsup
from genemi.evaluation.benchmarks.aro import ORDER_SEEDS, OrderBenchmark, VGAttribution, VGRelation
from genemi.evaluation.benchmarks.base import TIE_RULES, Benchmark, BenchmarkResult
from genemi.evaluation.benchmarks.base import need_options as _need
from genemi.evaluation.benchmarks.genemi_testset import GenemiTestSet
from genemi.evaluation.benchmarks.retention import Retrieval, ZeroShot
from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe, SugarCrepePP
from genemi.evaluation.benchmarks.valse import Valse
from genemi.evaluation.benchmarks.vl_checklist import MAX_PER_FILE, VLCheckList
from genemi.evaluation.benchmarks.winoground import Winoground




def _aro(opts: Mapping[str, Any]) -> list[Benchmark]:
    out: list[Benchmark] = []
    if opts.get("root"):
        out += [VGRelation(opts["root"], opts.get("images")), VGAttribution(opts["root"], opts.get("images"))]
    from genemi.evaluation.benchmarks.aro import ORDER_PROTOCOLS

    seeds = opts.get("seeds") or ORDER_SEEDS
    protocol = opts.get("order_protocol") or "official"
    if protocol not in ORDER_PROTOCOLS:
        raise ConfigError(f"aro.order_protocol must be one of {', '.join(ORDER_PROTOCOLS)}, not {protocol!r}")
    skip = opts.get("python_random_skip") or 0
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise ConfigError(f"aro.python_random_skip must be a non-negative integer, not {skip!r}")
    for key, name in (("coco_order", "aro_coco_order"), ("flickr_order", "aro_flickr_order")):
        sub = opts.get(key) or {}
        if not sub:
            continue
        if sub.get("options_file"):  # fixed options: the annotation file is not read
            (images,) = _need(sub, f"aro.{key}", "images")
            bench = OrderBenchmark(name, None, images, options_file=sub["options_file"])
        else:
            ann, images = _need(sub, f"aro.{key}", "annotations", "images")
            bench = OrderBenchmark(name, ann, images, seeds, protocol=protocol, python_random_skip=skip)
        if sub.get("write_options"):
            bench.export_options(sub["write_options"])
        out.append(bench)
    if not out:
        raise ConfigError("benchmark 'aro' needs root (VG-Relation/Attribution) and/or coco_order / flickr_order")
    return out


#: name -> (builder(options) -> benchmarks, one-line description)
BENCHMARKS: dict[str, tuple[Callable[[Mapping[str, Any]], list[Benchmark]], str]] = {
    "sugarcrepe": (lambda o: [SugarCrepe(*_need(o, "sugarcrepe", "root", "images"))],
                   "SugarCrepe, 7 subsets, per-family and overall means"),
    "sugarcrepe_pp": (lambda o: [SugarCrepePP(*_need(o, "sugarcrepe_pp", "root", "images"))],
                      "SugarCrepe++, ITT and TOT accuracy"),
    "aro": (_aro, "ARO VG-Relation (macro, symmetric excluded), VG-Attribution (macro, >=25), COCO/Flickr-Order"),
    "valse": (lambda o: [Valse(*_need(o, "valse", "root", "images"))], "VALSE, valid items, 11-instrument mean"),
    "vl_checklist": (lambda o: [VLCheckList(*_need(o, "vl_checklist", "root"), o.get("images"),
                                            int(o.get("max_per_file", MAX_PER_FILE)))],
                     "VL-CheckList Object/Attribute/Relation"),
    "winoground": (lambda o: [Winoground(*_need(o, "winoground", "root"), o.get("image_cache"))],
                   "Winoground text/image/group (examples.jsonl + images/, or the hub's Parquet)"),
    "genemi_testset": (lambda o: [GenemiTestSet(*_need(o, "genemi_testset", "path"), o.get("images"))],
                       "GeNeMi test set (or a variation manifest): Text/Image/Group @1 and all-correct"),
    "retrieval": (lambda o: [Retrieval(*_need(o, "retrieval", "annotations", "images"), o.get("name", "retrieval"))],
                  "image<->text retrieval R@1/5/10 on a Karpathy test file"),
    "zeroshot": (lambda o: [ZeroShot(*_need(o, "zeroshot", "root"), o.get("classnames"), o.get("templates", "openai"))],
                 "zero-shot classification on an ImageFolder"),
    "crepe_productivity": (lambda o: _crepe.build_productivity(o),
                           "CREPE productivity: R@1/3/5/10 per negative type (atom/swap/negate) and complexity 4-12"),
    "crepe_systematicity": (lambda o: _crepe.build_systematicity(o),
                            "CREPE systematicity (cc12m/yfcc/laion split): R@K, HN-Atom/Comp/Combined, seen/unseen"),
    "spec": (lambda o: _spec.build(o), "SPEC size/position/existence/count: i2t and t2i accuracy per subset, means"),
    "whatsup": (lambda o: [_whatsup.WhatsUp(*_need(o, "whatsup", "root"), o.get("coco_images"), o.get("vg_images"),
                                            o.get("subsets"))],
                "What'sUp: Controlled A/B (indiv/pairs/set), COCO-/GQA-spatial one/two-object, macro means"),
    "colorswap": (lambda o: [_colorswap.ColorSwap(*_need(o, "colorswap", "root"), o.get("split", "test"),
                                                  o.get("image_cache"))],
                  "ColorSwap text/image/group (hub Parquet or GitHub test.json + images/)"),
}



def build_benchmarks(names: list[str], data: Mapping[str, Mapping[str, Any]], ties: str = "official") -> list[Benchmark]:
    """Instantiate the named benchmarks from their data sections (loading and validating annotations).

    ``ties``: ``official`` keeps each benchmark's official tie rule; ``strict`` counts every exact tie as wrong;
    ``first`` lets the option listed first win (argmax) everywhere.
    """
    if ties not in ("official", *TIE_RULES):
        raise ConfigError(f"--ties must be 'official', 'strict' or 'first', not {ties!r}")
    out: list[Benchmark] = []
    for name in names:
        if name not in BENCHMARKS:
            raise ConfigError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
        built = BENCHMARKS[name][0](data.get(name) or {})
        for bench in built:
            bench.section = name  # the data-config section (and flags) its data came from
        out += built
    for bench in out:
        bench.ties = getattr(bench, "official_ties", "strict") if ties == "official" else ties
    return out


__all__ = ["BENCHMARKS", "Benchmark", "BenchmarkResult", "build_benchmarks"]
