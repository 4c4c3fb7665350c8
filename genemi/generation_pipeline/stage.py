"""The stage contract and the loop that runs a stage over a manifest, resumably.

A stage turns a batch of input records (the previous manifest's) into output records, one per image.
:func:`run_stage` skips images already in the output manifest, decodes the next batch's images in a
background thread while the current one computes, appends each batch atomically (serialising it in a
second thread while the next batch computes), and times the stage's
model calls separately from everything else (the overhead the benchmark reports).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel

from genemi.manifest import ManifestWriter, done_ids

logger = logging.getLogger(__name__)


def release_to_cpu(module) -> None:
    """Move a model back to the CPU and return its accelerator memory (``--offload``)."""
    import torch

    module.to("cpu")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Stage(ABC):
    """One pipeline step. Subclasses set ``name``, ``output`` (manifest file name) and ``record_type``."""

    name: str
    output: str
    record_type: type[BaseModel]

    def __init__(self) -> None:
        self.model_seconds = 0.0

    @contextmanager
    def timed(self):
        """Wrap model forward passes: their time is reported apart from I/O and bookkeeping."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.model_seconds += time.perf_counter() - start

    def load(self) -> None:
        """Load models (called once, before the first batch)."""

    def offload(self) -> None:
        """Free accelerator memory (``--offload``: after the stage, before the next one loads)."""

    def prepare(self, batch: Sequence[BaseModel]) -> Any:
        """I/O for a batch (image decoding); runs in a background thread while the previous batch computes."""
        return None

    @abstractmethod
    def process(self, batch: Sequence[BaseModel], prepared: Any = None) -> Any:
        """The model work for a batch; returns records, or raw results that :meth:`finish` turns into records."""

    def finish(self, raw: Any) -> list[BaseModel]:
        """Output records from :meth:`process`'s result (runs in the writer thread; default: as is).

        Failed inputs give failed records, never exceptions."""
        return raw


@dataclass
class StageStats:
    name: str
    inputs: int = 0
    already_done: int = 0
    processed: int = 0
    failed: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    load_seconds: float = 0.0  # model loading, kept out of the per-image figures

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")

    @property
    def overhead_fraction(self) -> float:
        return 1.0 - self.model_seconds / self.seconds if self.seconds > 0 else float("nan")


def _finish_and_write(stage: Stage, writer: ManifestWriter, raw: Any) -> list[BaseModel]:
    records = stage.finish(raw)
    writer.write(records)
    return records


def _count(stats: StageStats, bar, records: list[BaseModel]) -> None:
    stats.processed += len(records)
    stats.failed += sum(getattr(r, "status", "ok") == "failed" for r in records)
    bar.update(len(records))


def run_stage(stage: Stage, inputs: Sequence[BaseModel], out_dir: Path, batch_size: int,
              progress: bool = True) -> StageStats:
    """Run ``stage`` on the inputs not yet in ``out_dir/stage.output``; returns counts and timings."""
    from tqdm import tqdm

    path = out_dir / stage.output
    done = done_ids(path)
    todo = [r for r in inputs if r.id not in done]
    stats = StageStats(stage.name, len(inputs), len(inputs) - len(todo))
    if not todo:
        return stats
    load_start = time.perf_counter()
    stage.load()
    stats.load_seconds = time.perf_counter() - load_start
    start = time.perf_counter()
    stage.model_seconds = 0.0
    bar = tqdm(total=len(todo), desc=stage.name, unit="image", disable=not progress)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    with ManifestWriter(path) as writer, ThreadPoolExecutor(1, thread_name_prefix=f"{stage.name}-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix=f"{stage.name}-write") as out:
        upcoming, written = reader.submit(stage.prepare, batches[0]), None
        for k, batch in enumerate(batches):
            prepared = upcoming.result()
            if k + 1 < len(batches):
                upcoming = reader.submit(stage.prepare, batches[k + 1])
            raw = stage.process(batch, prepared)
            if written is not None:
                _count(stats, bar, written.result())  # in order, and a write error stops the run
            written = out.submit(_finish_and_write, stage, writer, raw)
        if written is not None:
            _count(stats, bar, written.result())
    bar.close()
    stats.seconds = time.perf_counter() - start
    stats.model_seconds = stage.model_seconds
    return stats
