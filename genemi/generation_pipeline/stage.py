"""The stage contract and the one loop that runs any stage over its input records, resumably.

A stage turns each input record (one per image) into one output record with the same id. The loop
(:func:`run_stage`) owns everything that is not the stage's own work:

* resume: images already in the output manifest are skipped (``retry_failed`` redoes the failed ones and
  replaces them in place, atomically, through a ``.retry`` side file that a crashed retry leaves for the next
  run to merge);
* records that failed upstream (or that the stage has nothing to do for) are passed on by :meth:`Stage.skip`;
* I/O (:meth:`Stage.prepare`: decoding images, reading crops) runs per item in a background thread while the
  previous batch computes; an item whose input cannot be read becomes a failed record;
* the model work (:meth:`Stage.process`) runs per batch; a batch that raises is redone item by item, and an
  item that still raises becomes a failed record carrying the stage, the exception type and its message;
* records are built (:meth:`Stage.build`) and appended in a writer thread, one atomic write per batch; a
  record that cannot be built becomes a failed record.

Stages receive and keep per-item state in :class:`StageItem` (the input record, the records of the other
stages they read, and what ``prepare`` and ``process`` produced) and implement only what is theirs.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Iterator, Mapping, Sequence, TypeVar

from pydantic import BaseModel

from genemi.manifest import ManifestIndex, ManifestWriter, iter_json_lines, merge_side_file
from genemi.records import Failure

logger = logging.getLogger(__name__)

In = TypeVar("In", bound=BaseModel)


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
    llm: Any = None  # the run's chat model options (ChatConfig, section llm), for the backends that ask one


@dataclass
class StageItem(Generic[In]):
    """One input record on its way through a stage.

    ``inputs`` holds, by stage name, the records with the same id of the other stages the stage reads (None
    where that stage has no such record). ``prepared`` is what :meth:`Stage.prepare` read, ``result`` what
    :meth:`Stage.process` computed; ``output`` is set when the item is finished without them (passed on or
    failed)."""

    record: In
    inputs: Mapping[str, BaseModel | None] = field(default_factory=dict)
    prepared: Any = None
    result: Any = None
    output: BaseModel | None = None

    @property
    def id(self) -> str:
        return self.record.id


class Stage(ABC):
    """One pipeline step, built as ``Stage(config_section, context)``. Subclasses set ``name`` (the stage's
    name in :data:`genemi.generation_pipeline.registry.STAGES`, which gives its manifest, record type and
    backend registry) and implement :meth:`process` and :meth:`build` (plus :meth:`prepare` for I/O, and
    :meth:`skip`/:meth:`fail` where their records need it). ``self.backend`` is the backend ``config.backend``
    names; ``check``, ``load`` and ``offload`` delegate to it."""

    name: str

    def __init__(self, config: Any, context: StageContext) -> None:
        self.config, self.context = config, context
        self.model_seconds = 0.0
        self.backend = self.spec.backends.build(config.backend, config, context)

    @property
    def spec(self):
        from genemi.generation_pipeline import registry

        return registry.STAGES[self.name]

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

    # --- lifecycle ----------------------------------------------------------------------------------------

    def check(self) -> None:
        """Validate settings and read model files' structure before any image is processed (raise a GenemiError)."""
        self.backend.check()

    def provenance(self) -> dict:
        """What the backend's presets and defaults resolved to (its ``provenance()``, e.g. steps, guidance and
        the scheduler's class and config), for the settings record; ``{}`` for a backend without one."""
        resolve = getattr(self.backend, "provenance", None)
        return resolve() if resolve is not None else {}

    def check_inputs(self, inputs: Sequence[BaseModel]) -> None:
        """Validate the input records as a whole before any is processed (e.g. captions present)."""

    def load(self) -> None:
        """Load models (called once, before the first batch)."""
        self.backend.load()

    def offload(self) -> None:
        """Free accelerator memory (``--offload``: after the stage, before the next one loads)."""
        self.backend.offload()

    # --- per item -----------------------------------------------------------------------------------------

    def skip(self, item: StageItem) -> BaseModel | None:
        """The output record of an item the stage does not work on, or None to work on it. Default: a record that
        failed upstream is passed on (as it is when the stage writes the same record type, else as a failed
        record of the stage's type with the upstream error)."""
        if getattr(item.record, "status", "ok") != "ok":
            return self.pass_on(item)
        return None

    def pass_on(self, item: StageItem) -> BaseModel:
        """A record that failed upstream, as this stage's output."""
        if isinstance(item.record, self.record_type):
            return item.record
        return self.fail(item, self.upstream_failure(item.record))

    def source_image(self, item: StageItem):
        """The item's source image (RGB, EXIF-oriented) from the run's image root; raises ImageError."""
        from genemi.images import load_rgb

        return load_rgb(self.context.image_root / item.record.image)

    def prepare(self, item: StageItem) -> Any:
        """I/O for one item (decoding its image, ...), run in a background thread while the previous batch
        computes; the value becomes ``item.prepared``. Raising makes the item a failed record."""
        return None

    @abstractmethod
    def process(self, items: list[StageItem]) -> None:
        """The model work for a batch of items: set each item's ``result``. Raising redoes the batch one item
        at a time; an item that still raises becomes a failed record."""

    @abstractmethod
    def build(self, item: StageItem) -> BaseModel:
        """The output record of a processed item (runs in the writer thread)."""

    def upstream_failure(self, record: BaseModel) -> Failure:
        return getattr(record, "error", None) or Failure(stage="unknown", type="failed", message="failed upstream")

    def fail(self, item: StageItem, failure: Failure) -> BaseModel:
        """The failed output record of an item: the input record marked failed when the stage writes the same
        type, else a record of the stage's type with the input's image fields."""
        if isinstance(item.record, self.record_type):
            return item.record.model_copy(update={"status": "failed", "error": failure})
        return self.record_type(**item.record.carried(), status="failed", error=failure)

    def apply(self, records: Sequence[BaseModel], inputs: Mapping[str, Mapping[str, BaseModel]] | None = None
              ) -> list[BaseModel]:
        """The output records of ``records`` in one batch, in memory (no manifest): what :func:`run_stage`
        writes for them. ``inputs``: by stage name, the other stages' records by id."""
        items = _prepare_items(self, records, inputs or {})
        _process_items(self, items)
        return _build_records(self, items)


def failures(record: BaseModel) -> Iterator[Failure]:
    """Every failure in a record: its own, its items' and their variations', its negatives'."""
    if getattr(record, "error", None) is not None:
        yield record.error
    for neg in getattr(record, "negatives", None) or ():
        if getattr(neg, "error", None) is not None:
            yield neg.error
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

    def summary(self) -> dict:
        """The stage's entry in ``run_summary.json``."""
        return {**asdict(self), "images_per_second": self.images_per_second,
                "overhead_fraction": self.overhead_fraction}

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


def _failed(stage: Stage, item: StageItem, exc: BaseException, what: str) -> BaseModel:
    logger.warning("%s: %s: %s failed: %s: %s", stage.name, item.id, what, type(exc).__name__, exc)
    return stage.fail(item, Failure.from_exception(stage.name, exc))


def _prepare_items(stage: Stage, records: Sequence[BaseModel], joined: Mapping[str, Any]) -> list[StageItem]:
    """Items of ``records`` with their joined inputs; what the stage skips is passed on, what it works on is
    read; an item whose inputs cannot be read fails (reader thread)."""
    items = [StageItem(r) for r in records]
    for item in items:
        try:
            item.inputs = {name: source.get(item.id) for name, source in joined.items()}
            item.output = stage.skip(item)
            if item.output is None:
                item.prepared = stage.prepare(item)
        except Exception as exc:  # noqa: BLE001 - one unreadable item must not stop the run
            item.output = _failed(stage, item, exc, "reading its input")
    return items


def _process_items(stage: Stage, items: list[StageItem]) -> None:
    """The model work for the items not finished yet; a batch that raises is redone item by item."""
    todo = [item for item in items if item.output is None]
    if not todo:
        return
    try:
        stage.process(todo)
        return
    except Exception as exc:  # noqa: BLE001
        if len(todo) == 1:
            todo[0].output = _failed(stage, todo[0], exc, "processing")
            return
        logger.warning("%s: a batch of %d raised %s: %s; redoing it item by item", stage.name, len(todo),
                       type(exc).__name__, exc)
    for item in todo:
        item.result = None
        try:
            stage.process([item])
        except Exception as exc:  # noqa: BLE001 - one bad item must not stop the run
            item.output = _failed(stage, item, exc, "processing")


def _build_records(stage: Stage, items: list[StageItem]) -> list[BaseModel]:
    """Each item's output record; an item whose record cannot be built fails (writer thread)."""
    out = []
    for item in items:
        if item.output is None:
            try:
                item.output = stage.build(item)
            except Exception as exc:  # noqa: BLE001
                item.output = _failed(stage, item, exc, "building its record")
        out.append(item.output)
    return out


def _manifest_state(path: Path) -> dict[str, str]:
    """id -> status of every record already in a manifest."""
    return {str(obj["id"]): obj.get("status", "ok") for _, obj in iter_json_lines(path)} if path.exists() else {}


def run_stage(stage: Stage, inputs: Sequence[BaseModel], out_dir: Path, batch_size: int, progress: bool = True,
              retry_failed: bool = False, joined: Mapping[str, ManifestIndex] | None = None) -> StageStats:
    """Run ``stage`` on the inputs not yet in ``out_dir/stage.output``; returns counts and timings. ``joined``:
    the manifests of the other stages it reads, by stage name."""
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

    def write(items: list[StageItem]) -> list[BaseModel]:
        records = _build_records(stage, items)
        writer.write(records)
        return records

    def collect(pending) -> None:
        records = pending.result()  # in order, and a write error stops the run
        stats.count(records)
        bar.update(len(records))

    with ManifestWriter(side if redo else path) as writer, \
            ThreadPoolExecutor(1, thread_name_prefix=f"{stage.name}-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix=f"{stage.name}-write") as out:
        upcoming, pending = reader.submit(_prepare_items, stage, batches[0], joined or {}), None
        for k in range(len(batches)):
            items = upcoming.result()
            if k + 1 < len(batches):
                upcoming = reader.submit(_prepare_items, stage, batches[k + 1], joined or {})
            _process_items(stage, items)
            if pending is not None:
                collect(pending)
            pending = out.submit(write, items)
        if pending is not None:
            collect(pending)
    if redo:
        merge_side_file(path, side)
    bar.close()
    stats.seconds = time.perf_counter() - start
    stats.model_seconds = stage.model_seconds
    return stats
