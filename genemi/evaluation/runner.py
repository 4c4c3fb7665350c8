"""Evaluate models on benchmarks; one JSON per model, merged with what was already evaluated.

A benchmark that evaluates no item is an error (:class:`NothingEvaluated`, naming the image folder and the
data-config key or flag that sets it), never a NaN result: :func:`check_inputs` refuses a benchmark none of
whose image files exists before any model is loaded, and :func:`evaluate` one whose images all failed to
decode. Partial coverage is kept and reported (``items``, ``evaluated``, ``missing_images``)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable, Sequence

from genemi.errors import DataError
from genemi.evaluation.benchmarks.base import Benchmark, BenchmarkResult
from genemi.evaluation.scoring import Embedder, EmbeddingCache, embed, image_exists

logger = logging.getLogger(__name__)

#: (data-config section, option) -> the command-line flag that sets it, or None
FlagOf = Callable[[str, str], "str | None"]


class NothingEvaluated(DataError):
    """A benchmark none of whose items could be evaluated."""


def image_source(bench: Benchmark) -> tuple[str, str, str]:
    """Where a benchmark's images are expected: (data-config section, option, folder). Benchmarks name the
    option in ``image_option`` (default ``images``; the folder is the attribute of the option's last part)
    and the registry sets ``section``."""
    option = getattr(bench, "image_option", "images")
    folder = getattr(bench, option.rsplit(".", 1)[-1], None)
    return getattr(bench, "section", bench.name), option, str(folder)


def nothing_evaluated(bench: Benchmark, reason: str, flag_of: FlagOf | None = None) -> NothingEvaluated:
    """The one-line error for a benchmark that evaluated nothing: what happened, the folder and its flag."""
    section, option, folder = image_source(bench)
    flag = flag_of(section, option) if flag_of else None
    setting = f"{flag} or data config {section}.{option}" if flag else f"data config {section}.{option}"
    return NothingEvaluated(f"{bench.name}: 0 items evaluated ({reason}); check the image folder {folder} ({setting})")


def check_inputs(benchmarks: Sequence[Benchmark], flag_of: FlagOf | None = None) -> None:
    """Refuse, before any model is loaded, a benchmark with no item or none of whose image files exists."""
    for bench in benchmarks:
        images, _ = bench.inputs()
        if not images:
            raise nothing_evaluated(bench, "it has no items", flag_of)
        if not any(image_exists(ref) for ref in images):
            unique = len({ref.key for ref in images})
            raise nothing_evaluated(bench, f"none of its {unique} image files exists, e.g. {images[0].key}", flag_of)


def evaluate(embedder: Embedder, benchmarks: Sequence[Benchmark], cache: EmbeddingCache | None = None,
             fail_on_missing: bool = False, flag_of: FlagOf | None = None) -> dict[str, BenchmarkResult]:
    """Score every benchmark with one embedder (each benchmark's unique inputs embedded once).
    Raises :class:`NothingEvaluated` for a benchmark of which no item could be evaluated."""
    results = {}
    for bench in benchmarks:
        start = time.perf_counter()
        images, texts = bench.inputs()
        emb = embed(embedder, images, texts, cache, bench.cache_key())
        embedded = time.perf_counter()
        result = bench.score(emb)
        if not result.evaluated:
            example = f", e.g. {result.missing_examples[0]}" if result.missing_examples else ""
            reason = (f"{result.missing_images} of {result.items} items have unreadable images{example}"
                      if result.items else "it has no items")
            raise nothing_evaluated(bench, reason, flag_of)
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
