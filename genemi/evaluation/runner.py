"""Evaluate models on benchmarks; one JSON per model, merged with what was already evaluated."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import fields
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
        embedded = time.perf_counter()
        result = bench.score(emb)
        if result.missing_images and fail_on_missing:
            raise DataError(f"{bench.name}: {result.missing_images} item(s) have unreadable images, e.g. "
                            f"{result.missing_examples[:2]} (drop --fail-on-missing to skip them)")
        if not emb.from_cache and emb.num_images:
            result.images_per_s = emb.num_images / max(embedded - start, 1e-9)
        result.notes.append(f"wall time {time.perf_counter() - start:.1f}s"
                            + (" (embeddings from the cache)" if emb.from_cache else ""))
        results[bench.name] = result
    return results


def result_path(output: Path, label: str) -> Path:
    return output / f"{label}.json"


def item_folder(output: Path, label: str) -> Path:
    return output / label / "items"


def _stamp(bench: Benchmark) -> dict:
    """What makes a stored result reusable: the inputs' key and the tie rule."""
    return {"cache_key": bench.cache_key(), "tie_rule": bench.ties}


def pending(output: Path, label: str, benchmarks: Sequence[Benchmark], force: bool,
            item_format: str | None = None) -> list[Benchmark]:
    """The benchmarks not yet in this model's JSON with the same inputs and tie rule (all of them with
    ``force``); with ``item_format``, also those whose per-item table is missing."""
    from genemi.evaluation.item_scores import item_scores_path

    path = result_path(output, label)
    if force or not path.exists():
        return list(benchmarks)
    done = json.loads(path.read_text(encoding="utf-8")).get("benchmarks", {})
    todo = []
    for b in benchmarks:
        stored = done.get(b.name, {})
        fresh = all(stored.get(k) == v for k, v in _stamp(b).items())
        if item_format and not item_scores_path(item_folder(output, label), b.name, item_format).is_file():
            fresh = False
        if not fresh:
            todo.append(b)
    return todo


def write_result(output: Path, label: str, meta: dict, results: dict[str, BenchmarkResult],
                 benchmarks: Sequence[Benchmark], item_format: str | None = None) -> Path:
    """Merge ``results`` into ``<output>/<label>.json`` (atomic replace); per-item tables beside it."""
    from genemi.evaluation.item_scores import write_item_scores
    from genemi.manifest import write_atomic

    path = result_path(output, label)
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    data.update(meta)
    stamps = {b.name: _stamp(b) for b in benchmarks}
    section = data.setdefault("benchmarks", {})
    output.mkdir(parents=True, exist_ok=True)
    for name, res in results.items():
        if item_format:
            write_item_scores(item_folder(output, label), name, res.rows, res.tie_rule, item_format)
        record = {f.name: getattr(res, f.name) for f in fields(res) if f.name != "rows"}
        section[name] = {**record, **stamps.get(name, {})}
    write_atomic(path, json.dumps(data, indent=2, allow_nan=True).encode("utf-8"))
    return path
