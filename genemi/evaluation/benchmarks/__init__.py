"""Benchmark registry: name -> builder from that benchmark's data options (see docs/evaluation.md).

Each builder takes the benchmark's section of the data config (a mapping of paths and options) and returns
one or more benchmark objects (``aro`` expands to the ARO sets whose data is given).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from genemi.errors import ConfigError
from genemi.evaluation.benchmarks.aro import ORDER_SEEDS, OrderBenchmark, VGAttribution, VGRelation
from genemi.evaluation.benchmarks.base import TIE_RULES, Benchmark, BenchmarkResult
from genemi.evaluation.benchmarks.genemi_testset import GenemiTestSet
from genemi.evaluation.benchmarks.retention import Retrieval, ZeroShot
from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe, SugarCrepePP
from genemi.evaluation.benchmarks.valse import Valse
from genemi.evaluation.benchmarks.vl_checklist import MAX_PER_FILE, VLCheckList
from genemi.evaluation.benchmarks.winoground import Winoground


def _need(opts: Mapping[str, Any], bench: str, *keys: str) -> list[Any]:
    missing = [k for k in keys if not opts.get(k)]
    if missing:
        raise ConfigError(f"benchmark {bench!r} needs {', '.join(missing)} in its data config (or the matching flags)")
    return [opts[k] for k in keys]


def _aro(opts: Mapping[str, Any]) -> list[Benchmark]:
    out: list[Benchmark] = []
    if opts.get("root"):
        out += [VGRelation(opts["root"], opts.get("images")), VGAttribution(opts["root"], opts.get("images"))]
    seeds = opts.get("seeds") or ORDER_SEEDS
    for key, name in (("coco_order", "aro_coco_order"), ("flickr_order", "aro_flickr_order")):
        sub = opts.get(key) or {}
        if sub:
            ann, images = _need(sub, f"aro.{key}", "annotations", "images")
            out.append(OrderBenchmark(name, ann, images, seeds))
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
    "winoground": (lambda o: [Winoground(*_need(o, "winoground", "root"))], "Winoground text/image/group"),
    "genemi_testset": (lambda o: [GenemiTestSet(*_need(o, "genemi_testset", "path"), o.get("images"))],
                       "GeNeMi test set (or a variation manifest): Text/Image/Group @1 and all-correct"),
    "retrieval": (lambda o: [Retrieval(*_need(o, "retrieval", "annotations", "images"), o.get("name", "retrieval"))],
                  "image<->text retrieval R@1/5/10 on a Karpathy test file"),
    "zeroshot": (lambda o: [ZeroShot(*_need(o, "zeroshot", "root"), o.get("classnames"), o.get("templates", "openai"))],
                 "zero-shot classification on an ImageFolder"),
}


def build_benchmarks(names: list[str], data: Mapping[str, Mapping[str, Any]], ties: str = "official") -> list[Benchmark]:
    """Instantiate the named benchmarks from their data sections (loading and validating annotations).

    ``ties``: ``official`` keeps each benchmark's official tie rule; ``strict`` counts every exact tie as wrong.
    """
    if ties not in ("official", *TIE_RULES):
        raise ConfigError(f"--ties must be 'official' or 'strict', not {ties!r}")
    out: list[Benchmark] = []
    for name in names:
        if name not in BENCHMARKS:
            raise ConfigError(f"unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
        out += BENCHMARKS[name][0](data.get(name) or {})
    for bench in out:
        bench.ties = getattr(bench, "official_ties", "strict") if ties == "official" else ties
    return out


__all__ = ["BENCHMARKS", "Benchmark", "BenchmarkResult", "build_benchmarks"]
