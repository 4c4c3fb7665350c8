"""The stage contract and the loop that runs a stage over a manifest, resumably.

A stage turns a batch of input records (the previous manifest's) into output records, one per image.
:func:`run_stage` skips images already in the output manifest, decodes the next batch's images in a
background thread while the current one computes, appends each batch atomically (serialising it in a
second thread while the next batch computes), and times the stage's model calls separately from
everything else (the overhead the benchmark reports).

Faults stay local: a batch that raises is redone item by item, and an item that still raises becomes a
failed record carrying the stage, the exception type and its message. ``retry_failed`` redoes the failed
records of a manifest and replaces them in place (atomically, through a ``.retry`` side file that a
crashed retry leaves for the next run to merge).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from pydantic import BaseModel

from genemi.manifest import ManifestWriter, iter_json_lines, merge_side_file
from genemi.records import Failure

logger = logging.getLogger(__name__)


def release_to_cpu(module) -> None:
    """Move a model back to the CPU and return its accelerator memory (``--offload``)."""
    import torch

    module.to("cpu")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass(frozen=True)
class StageContext:
    """What every stage and backend gets besides its own config section."""

    image_root: Path = Path(".")
    output_dir: Path = Path(".")
    device: str = "cpu"
    dtype: Any = None  # torch dtype of model weights, None = fp32
    seed: int = 0


class Stage(ABC):
    """One pipeline step, built as ``Stage(config_section, context)``. Subclasses set ``name`` (the stage's
    name in :data:`genemi.generation_pipeline.registry.STAGES`, which gives its manifests, record type and
    backend registry); ``self.backend`` is the backend ``config.backend`` names, which ``check``, ``load``
    and ``offload`` delegate to."""

    name: str

    def __init__(self, config: Any, context: StageContext) -> None:
        self.config, self.context = config, context
        self.model_seconds = 0.0
        self.backend = self.spec.backends.build(config.backend, config, context)

    @property
    def spec(self):
        from genemi.generation_pipeline.registry import stage_spec

        return stage_spec(self.name)

    @property
    def output(self) -> str:
        return self.spec.writes

    @property
    def record_type(self) -> type[BaseModel]:
        return self.spec.record

    @contextmanager
    def timed(self):
        """Wrap model forward passes: their time is reported apart from I/O and bookkeeping."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.model_seconds += time.perf_counter() - start

    def check(self) -> None:
        """Validate settings and files before any image is processed (raise a GenemiError)."""
        self.backend.check()

    def check_inputs(self, inputs: Sequence[BaseModel]) -> None:
        """Validate the input records as a whole before any is processed (e.g. captions present)."""

    def load(self) -> None:
        """Load models (called once, before the first batch)."""
        self.backend.load()

    def offload(self) -> None:
        """Free accelerator memory (``--offload``: after the stage, before the next one loads)."""
        self.backend.offload()

    def prepare(self, batch: Sequence[BaseModel]) -> Any:
        """I/O for a batch (image decoding); runs in a background thread while the previous batch computes."""
        return None

    @abstractmethod
    def process(self, batch: Sequence[BaseModel], prepared: Any = None) -> Any:
        """The model work for a batch; returns records, or raw results that :meth:`finish` turns into records."""

    def finish(self, raw: Any) -> list[BaseModel]:
        """Output records from :meth:`process`'s result (runs in the writer thread; default: as is)."""
        return raw

    def upstream_failure(self, record: BaseModel) -> Failure:
        return getattr(record, "error", None) or Failure(stage="unknown", type="failed", message="failed upstream")

    def fail(self, record: BaseModel, failure: Failure | None) -> BaseModel:
        """The failed output record for an input record (its image fields carried over)."""
        return self.record_type(**record.carried(), status="failed", error=failure or self.upstream_failure(record))


def failures(record: BaseModel) -> Iterator[Failure]:
    """Every failure in a record: its own, its items' and their variations'."""
    if getattr(record, "error", None) is not None:
        yield record.error
    for item in getattr(record, "items", None) or ():
        if getattr(item, "error", None) is not None:
            yield item.error
        for var in getattr(item, "variations", None) or ():
            if getattr(var, "error", None) is not None:
                yield var.error


@dataclass
class StageStats:
    name: str
    inputs: int = 0
    already_done: int = 0
    processed: int = 0
    failed: int = 0
    retried: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    load_seconds: float = 0.0  # model loading, kept out of the per-image figures
    #: "<stage>/<type>" -> count, over records, items and variations written by this run
    failure_reasons: dict[str, int] = field(default_factory=dict)
    failure_examples: dict[str, str] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float | None:
        return self.processed / self.seconds if self.seconds > 0 and self.processed else None

    @property
    def overhead_fraction(self) -> float | None:
        return 1.0 - self.model_seconds / self.seconds if self.seconds > 0 and self.processed else None

    def count(self, records: list[BaseModel]) -> None:
        reasons = Counter(self.failure_reasons)
        for rec in records:
            self.processed += 1
            self.failed += getattr(rec, "status", "ok") == "failed"
            for f in failures(rec):
                key = f"{f.stage}/{f.type}"
                reasons[key] += 1
                self.failure_examples.setdefault(key, f.message[:300])
        self.failure_reasons = dict(reasons.most_common())


def _isolated(stage: Stage, batch: Sequence[BaseModel]) -> list[BaseModel]:
    """Redo a batch one item at a time; an item that raises becomes a failed record."""
    out = []
    for rec in batch:
        try:
            out.extend(stage.finish(stage.process([rec], stage.prepare([rec]))))
        except Exception as exc:  # noqa: BLE001 - one bad item must not stop the run
            logger.warning("%s: %s failed: %s: %s", stage.name, rec.id, type(exc).__name__, exc)
            out.append(stage.fail(rec, Failure.from_exception(stage.name, exc)))
    return out


def _finish_and_write(stage: Stage, writer: ManifestWriter, batch: Sequence[BaseModel], raw: Any):
    """In the writer thread: records from the raw results, appended; ``None`` when :meth:`finish` raised
    (the main thread then redoes the batch item by item)."""
    try:
        records = stage.finish(raw)
    except Exception as exc:  # noqa: BLE001
        logger.warning("%s: finishing a batch of %d failed (%s: %s); redoing it item by item", stage.name,
                       len(batch), type(exc).__name__, exc)
        return None
    writer.write(records)
    return records


def _write(writer: ManifestWriter, records: list[BaseModel]) -> list[BaseModel]:
    writer.write(records)
    return records


_UNPREPARED = object()


def _manifest_state(path: Path) -> dict[str, str]:
    """id -> status of every record already in a manifest."""
    return {str(obj["id"]): obj.get("status", "ok") for _, obj in iter_json_lines(path)} if path.exists() else {}


def run_stage(stage: Stage, inputs: Sequence[BaseModel], out_dir: Path, batch_size: int, progress: bool = True,
              retry_failed: bool = False) -> StageStats:
    """Run ``stage`` on the inputs not yet in ``out_dir/stage.output``; returns counts and timings."""
    from tqdm import tqdm

    path = out_dir / stage.output
    side = path.with_name(path.name + ".retry")
    merge_side_file(path, side)  # a retry that was interrupted
    state = _manifest_state(path)
    redo = {i for i, s in state.items() if s == "failed"} if retry_failed else set()
    todo = [r for r in inputs if r.id not in state or r.id in redo]
    stats = StageStats(stage.name, len(inputs), len(inputs) - len(todo), retried=sum(r.id in redo for r in todo))
    if not todo:
        return stats
    load_start = time.perf_counter()
    stage.load()
    stats.load_seconds = time.perf_counter() - load_start
    start = time.perf_counter()
    stage.model_seconds = 0.0
    bar = tqdm(total=len(todo), desc=stage.name, unit="image", disable=not progress)
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]

    def collect(pending) -> None:
        batch, future = pending
        records = future.result()  # in order, and a write error stops the run
        if records is None:
            records = _isolated(stage, batch)
            writer.write(records)
        stats.count(records)
        bar.update(len(records))

    with ManifestWriter(side if redo else path) as writer, \
            ThreadPoolExecutor(1, thread_name_prefix=f"{stage.name}-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix=f"{stage.name}-write") as out:
        upcoming, pending = reader.submit(stage.prepare, batches[0]), None
        for k, batch in enumerate(batches):
            try:
                prepared = upcoming.result()
            except Exception:  # noqa: BLE001 - decoding is redone per item below
                prepared = _UNPREPARED
            if k + 1 < len(batches):
                upcoming = reader.submit(stage.prepare, batches[k + 1])
            raw = _UNPREPARED
            if prepared is not _UNPREPARED:
                try:
                    raw = stage.process(batch, prepared)
                except Exception as exc:  # noqa: BLE001
                    logger.warning("%s: a batch of %d raised %s: %s; redoing it item by item", stage.name,
                                   len(batch), type(exc).__name__, exc)
            if pending is not None:
                collect(pending)
            if raw is _UNPREPARED:
                pending = (batch, out.submit(_write, writer, _isolated(stage, batch)))
            else:
                pending = (batch, out.submit(_finish_and_write, stage, writer, batch, raw))
        if pending is not None:
            collect(pending)
    if redo:
        merge_side_file(path, side)
    bar.close()
    stats.seconds = time.perf_counter() - start
    stats.model_seconds = stage.model_seconds
    return stats
