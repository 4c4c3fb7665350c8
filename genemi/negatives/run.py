"""File-level generation: read captions, skip those already written (resume), generate in chunks on one
or more processes, append to a JSONL manifest, and summarise."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from genemi.caption_files import CaptionEntry
from genemi.negatives.generator import GenerationStats, NegativeGenerator, NegativesConfig
from genemi.manifest import ManifestWriter, done_ids, require_writable_file, write_atomic


@dataclass
class NegativesSummary:
    output: str
    captions_in_input: int
    already_done: int
    written: int
    seconds: float
    workers: int
    stats: dict = field(default_factory=dict)

    @property
    def captions_per_second(self) -> float | None:
        """None when nothing was written or the run took no measurable time (never NaN: the summary is JSON)."""
        return self.written / self.seconds if self.seconds > 0 and self.written else None


_worker_generator: NegativeGenerator | None = None


def _init_worker(config: NegativesConfig) -> None:
    global _worker_generator
    import torch

    torch.set_num_threads(1)
    _worker_generator = NegativeGenerator(config)


def _work(chunk: list[CaptionEntry]):
    records, stats = _worker_generator.generate(chunk)
    return [r.model_dump(mode="json") for r in records], stats


def _chunks(entries: Sequence[CaptionEntry], size: int) -> Iterator[list[CaptionEntry]]:
    for i in range(0, len(entries), size):
        yield list(entries[i : i + size])


def pending_entries(entries: Sequence[CaptionEntry], output: str | Path, limit: int | None = None):
    """Unique entries (first occurrence of an id wins), the first ``limit``, minus those in ``output``."""
    first: dict[str, CaptionEntry] = {}
    for e in entries:
        first.setdefault(e.id, e)
    unique = list(first.values())
    if limit is not None:
        unique = unique[:limit]
    done = done_ids(output)
    return [e for e in unique if e.id not in done], len(unique)


def generate_negatives(
    entries: Sequence[CaptionEntry],
    output: str | Path,
    config: NegativesConfig,
    *,
    limit: int | None = None,
    workers: int = 1,
    chunk_size: int = 512,
    progress: bool = True,
    force: bool = False,
    allow_changed_settings: bool = False,
) -> NegativesSummary:
    """Write one :class:`TextNegativeRecord` per caption to ``output`` (JSONL), resuming where it stopped.

    Records are written chunk by chunk in input order; an interrupted run leaves whole chunks, and a rerun
    generates only the missing captions (per-caption seeding makes them identical to an uninterrupted run).
    A ``<output>.summary.json`` file records the counts and ``<output>.settings.json`` the settings that shape
    the records: a rerun with other settings is refused (naming them) unless ``allow_changed_settings``;
    ``force`` starts over.
    """
    from tqdm import tqdm

    from genemi.run_settings import check_settings, fingerprint, record_settings, settings_path

    from genemi.errors import ConfigError

    for value, flag in ((chunk_size, "--chunk-size"), (workers, "--workers")):  # before any file is touched
        if isinstance(value, bool) or value < 1:
            raise ConfigError(f"{flag} must be at least 1, not {value}")
    output = require_writable_file(output, "--output")
    settings = fingerprint({k: v for k, v in asdict(config).items()
                            if k not in ("device", "spacy_batch_size", "model_batch_size")})
    if force:
        for path in (output, output.with_name(output.name + ".summary.json"), settings_path(output)):
            path.unlink(missing_ok=True)
    check_settings(output, settings, allow_changed_settings, "--output",
                   "--force to start over, or --allow-changed-settings to append with mixed settings (recorded)")
    todo, total = pending_entries(entries, output, limit)
    record_settings(output, settings)
    stats = GenerationStats()
    start = time.perf_counter()
    workers = max(1, min(workers, math.ceil(len(todo) / max(1, chunk_size)) or 1))
    bar = tqdm(total=len(todo), desc="negatives", unit="caption", disable=not progress)
    written = 0
    with ExitStack() as stack:
        writer = stack.enter_context(ManifestWriter(output))
        if workers == 1:
            generator = NegativeGenerator(config)
            results = (generator.generate(chunk) for chunk in _chunks(todo, chunk_size))
        else:
            pool = stack.enter_context(mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                                                    initargs=(config,)))
            results = pool.imap(_work, _chunks(todo, chunk_size))
        for records, chunk_stats in results:
            written += writer.write(records)
            stats.add(chunk_stats)
            bar.update(len(records))
    bar.close()
    summary = NegativesSummary(str(output), total, total - len(todo), written, time.perf_counter() - start, workers,
                               stats.as_dict(config.types))
    summary_path = output.with_name(output.name + ".summary.json")
    write_atomic(summary_path, json.dumps({**asdict(summary), "captions_per_second": summary.captions_per_second},
                                          indent=2).encode("utf-8"))
    return summary
