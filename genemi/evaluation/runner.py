"""Evaluate models on benchmarks; one JSON per model, merged with what was already evaluated."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from genemi.errors import DataError
from genemi.evaluation.benchmarks.base import Benchmark, BenchmarkResult
from genemi.evaluation.scoring import Embedder, EmbeddingCache, embed

logger = logging.getLogger(__name__)


def evaluate(embedder: Embedder, benchmarks: Sequence[Benchmark], cache: EmbeddingCache | None = None,
             fail_on_missing: bool = False) -> dict[str, BenchmarkResult]:
    """Score every benchmark with one embedder (each benchmark's unique inputs embedded once)."""
    results = {}
    for bench in benchmarks:
        start = time.perf_counter()
        images, texts = bench.inputs()
        emb = embed(embedder, images, texts, cache, bench.cache_key())
        result = bench.score(emb)
        if result.missing_images and fail_on_missing:
            raise DataError(f"{bench.name}: {result.missing_images} item(s) have unreadable images, e.g. "
                            f"{result.missing_examples[:2]} (drop --fail-on-missing to skip them)")
        result.notes.append(f"wall time {time.perf_counter() - start:.1f}s")
        results[bench.name] = result
    return results


def result_path(output: Path, label: str) -> Path:
    return output / f"{label}.json"


def pending(output: Path, label: str, benchmarks: Sequence[Benchmark], force: bool) -> list[Benchmark]:
    """The benchmarks not yet in this model's JSON with the same inputs (all of them with ``force``)."""
    path = result_path(output, label)
    if force or not path.exists():
        return list(benchmarks)
    done = json.loads(path.read_text(encoding="utf-8")).get("benchmarks", {})
    return [b for b in benchmarks if done.get(b.name, {}).get("cache_key") != b.cache_key()]


def write_result(output: Path, label: str, meta: dict, results: dict[str, BenchmarkResult],
                 benchmarks: Sequence[Benchmark]) -> Path:
    """Merge ``results`` into ``<output>/<label>.json`` (atomic replace)."""
    path = result_path(output, label)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.update(meta)
    keys = {b.name: b.cache_key() for b in benchmarks}
    section = data.setdefault("benchmarks", {})
    for name, res in results.items():
        section[name] = {**asdict(res), "cache_key": keys.get(name)}
    output.mkdir(parents=True, exist_ok=True)
    from genemi.manifest import write_atomic

    write_atomic(path, json.dumps(data, indent=2, allow_nan=True).encode("utf-8"))
    return path
