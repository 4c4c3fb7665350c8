"""Benchmark registry: name -> :class:`~genemi.evaluation.benchmarks.base.BenchmarkSpec` (see docs/evaluation.md).

Each benchmark module declares its data options next to its code (a :class:`genemi.options.Section` dataclass
whose fields carry their flags) and a ``BenchmarkSpec``; a new benchmark is one file and one line below, flags
included. A spec's builder takes the benchmark's options and returns one or more benchmark objects (``aro``
expands to the ARO sets whose data is given).
"""

from __future__ import annotations

from typing import Any, Mapping

from genemi.errors import ConfigError
from genemi.evaluation.benchmarks import aro, colorswap, crepe, genemi_testset, retention, spec, sugarcrepe, valse
from genemi.evaluation.benchmarks import vl_checklist, whatsup, winoground
from genemi.evaluation.benchmarks.base import SHARED_FLAGS, TIE_RULES, Benchmark, BenchmarkResult, BenchmarkSpec

#: name -> spec, in the order --help and the reports list them
BENCHMARKS: dict[str, BenchmarkSpec] = {s.name: s for s in (
    sugarcrepe.SUGARCREPE,
    sugarcrepe.SUGARCREPE_PP,
    aro.ARO,
    valse.VALSE,
    vl_checklist.VL_CHECKLIST,
    winoground.WINOGROUND,
    genemi_testset.GENEMI_TESTSET,
    retention.RETRIEVAL,
    retention.ZEROSHOT,
    crepe.CREPE_PRODUCTIVITY,
    crepe.CREPE_SYSTEMATICITY,
    spec.SPEC,
    whatsup.WHATSUP,
    colorswap.COLORSWAP,
)}


def shared_targets(flag: str) -> list[tuple[str, str]]:
    """(benchmark, option) pairs that a shared flag (:data:`SHARED_FLAGS`) fills."""
    return [(name, key) for name, s in BENCHMARKS.items() for key, f in getattr(s.options, "shared", {}).items()
            if f == flag]


def benchmark_options(name: str, values: Mapping[str, Any] | None) -> Any:
    """The typed data options of benchmark ``name`` from its data-config section (unknown keys refused with the
    nearest name; bad values named by their flag)."""
    from genemi.presets import build_dataclass

    return build_dataclass(BENCHMARKS[name].options, values or {}, where=f"data config section {name}")


def build_benchmarks(names: list[str], data: Mapping[str, Mapping[str, Any]], ties: str = "official") -> list[Benchmark]:
    """Instantiate the named benchmarks from their data sections (loading and validating annotations).

    ``ties``: ``official`` keeps each benchmark's official tie rule; ``strict`` counts every exact tie as wrong;
    ``first`` lets the option listed first win (argmax) everywhere.
    """
    if ties not in ("official", *TIE_RULES):
        raise ConfigError(f"--ties must be 'official', 'strict' or 'first', not {ties!r}")
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark {unknown[0]!r}; available: {', '.join(BENCHMARKS)}")
    options = {name: benchmark_options(name, data.get(name)) for name in names}  # every section checked first
    out: list[Benchmark] = []
    for name in names:
        built = BENCHMARKS[name].build(options[name])
        for bench in built:
            bench.section = name  # the data-config section (and flags) its data came from
        out += built
    for bench in out:
        bench.ties = getattr(bench, "official_ties", "strict") if ties == "official" else ties
    return out


__all__ = ["BENCHMARKS", "SHARED_FLAGS", "Benchmark", "BenchmarkResult", "BenchmarkSpec", "benchmark_options",
           "build_benchmarks", "shared_targets"]
