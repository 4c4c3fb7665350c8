"""``genemi generate --executor ray``: one run across a Ray cluster, each stage a Ray Data operator.

The run's images travel as **groups** (rows of a Ray Data dataset): ``group_size`` consecutive images of the
shard's sorted input list (default: the least common multiple of the selected stages' batch sizes, so every
batch the local executor would form lies inside one group and is formed the same way: same records, same
bytes). Each selected stage, in graph order, is one ``Dataset.map`` over the groups with a callable class: a
pool of actors (``concurrency``), each loading the stage's model once, asking the resources the stage is given
(``--ray-resources inpaint=num_gpus:1,concurrency:2;tag=num_cpus:1``); Ray Data streams the groups through the
operators, so while one group is painted the next is grounded and the one before is scored, and it applies
backpressure. A row carries, per stage, the records of its images (JSON lines), so a stage reads its primary
input and the other stages it reads from the row itself.

The driver appends each finished group's new records to every stage's manifest (the files the local executor
writes, and the settings records), then rewrites each manifest sorted by id at the end, so a finished run is
byte-identical to the local executor's. Images are written by the stage that paints them, as in the local
executor (atomically, at the same paths). A rerun passes the records already in the manifests along with the
images, and a stage skips them (``--retry-failed`` redoes its failed ones). An actor that dies is restarted by
Ray and its group redone (Ray Data's defaults for actor pools); a group is written by the driver only once,
when it returns, so nothing is lost or written twice. Per-image failures are failed records, as everywhere.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from genemi.errors import BackendUnavailable, ConfigError
from genemi.generation_pipeline.options import option

logger = logging.getLogger(__name__)

#: what a stage may ask of Ray, with the type of its value
RESOURCE_KEYS = {"num_gpus": float, "num_cpus": float, "memory": float, "concurrency": int}
#: default CPUs an actor of a stage asks (so that every stage of a run fits one small machine at once)
DEFAULT_ACTOR_CPUS = 0.25


def parse_resources(value: Any) -> dict[str, dict[str, float]]:
    """``"inpaint=num_gpus:1,concurrency:2;tag=num_cpus:1"`` (or the same as a YAML mapping) -> per stage."""
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        out: dict[str, dict] = {}
        for part in (p.strip() for p in value.split(";") if p.strip()):
            stage, sep, rest = part.partition("=")
            if not sep or not stage.strip():
                raise ConfigError(f"--ray-resources {part!r}: expected stage=key:value,... (e.g. inpaint=num_gpus:1)")
            asked = {}
            for pair in (p.strip() for p in rest.split(",") if p.strip()):
                key, sep, number = pair.partition(":")
                if not sep:
                    raise ConfigError(f"--ray-resources {part!r}: {pair!r} is not key:value")
                asked[key.strip()] = number.strip()
            out[stage.strip()] = asked
        value = out
    if not isinstance(value, dict):
        raise ConfigError(f"ray.resources must map stage names to resources, not {value!r}")
    parsed: dict[str, dict[str, float]] = {}
    for stage, asked in value.items():
        if not isinstance(asked, dict):
            raise ConfigError(f"ray.resources.{stage} must be a mapping such as {{num_gpus: 1, concurrency: 2}}")
        parsed[str(stage)] = {}
        for key, number in asked.items():
            if key not in RESOURCE_KEYS:
                raise ConfigError(f"--ray-resources {stage}: unknown resource {key!r}; "
                                  f"choose from {', '.join(RESOURCE_KEYS)}")
            try:
                number = RESOURCE_KEYS[key](number)
            except (TypeError, ValueError):
                raise ConfigError(f"--ray-resources {stage}: {key} must be a number, not {number!r}") from None
            if number < 0 or (key == "concurrency" and number < 1):
                raise ConfigError(f"--ray-resources {stage}: {key} {number} must be "
                                  + ("at least 1" if key == "concurrency" else "non-negative"))
            parsed[str(stage)][key] = number
    return parsed


@dataclass
class RayConfig:
    """Options of ``--executor ray`` (YAML section ``ray``)."""

    address: str | None = option(None, "the Ray cluster to join (host:6379 or ray://host:10001; default: start a "
                                 "local one)", flag="--ray-address", metavar="ADDR", content=False)
    resources: Any = option(None, "what each stage asks of Ray: 'stage=num_gpus:0.5,num_cpus:1,concurrency:4;"
                            "stage=...' (YAML: a mapping) (default: per stage 1 actor, 0.25 CPUs, no GPU)",
                            flag="--ray-resources", metavar="SPEC", content=False)
    group_size: int | None = option(None, "images per Ray row (default: the least common multiple of the stages' "
                                    "batch sizes, so batches form as in the local executor)", flag="--ray-group-size",
                                    content=False)
    wait: float = option(300.0, "seconds to wait for a cluster's resources before giving up",
                         flag="--ray-timeout", content=False)

    def __post_init__(self) -> None:
        self.resources = parse_resources(self.resources)
        if self.group_size is not None and self.group_size < 1:
            raise ConfigError(f"--ray-group-size must be at least 1, not {self.group_size}")
        if self.wait <= 0:
            raise ConfigError(f"--ray-timeout must be positive, not {self.wait}")


def group_size(plan, ray_cfg: RayConfig) -> int:
    if ray_cfg.group_size:
        return ray_cfg.group_size
    return math.lcm(*(plan.cfg.section(s.name).batch_size for s in plan.specs))


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable("--executor ray needs Ray Data: pip install 'genemi[ray]' (or the pinned "
                                 "'ray[data]' of pyproject.toml)") from exc
    return ray


def _probe(address: str, seconds: float = 5.0) -> None:
    """A TCP connection to ``host:port`` (``ray://host:port`` too) within ``seconds``: Ray's own client retries an
    unreachable address for minutes, so genemi answers first (``auto`` and other forms are left to Ray)."""
    import socket

    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds).close()
    except OSError as exc:
        raise ConfigError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
                          "(`ray start --head`) or fix the address") from exc


def _connect(ray, cfg: RayConfig) -> None:
    """Join ``--ray-address`` (or start a local cluster); an address nobody answers at is one line."""
    if ray.is_initialized():
        return
    if cfg.address:
        _probe(cfg.address)
    try:
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"--ray-address {cfg.address}: cannot join a Ray cluster there ({first[:200]})") from exc


def _requests(plan, cfg: RayConfig) -> dict[str, dict]:
    """Per selected stage: the Ray resources of its actors and how many actors."""
    unknown = sorted(set(cfg.resources) - {s.name for s in plan.specs})
    if unknown:
        raise ConfigError(f"--ray-resources names {', '.join(unknown)}, which this run does not run "
                          f"(stages: {', '.join(s.name for s in plan.specs)})")
    out = {}
    for spec in plan.specs:
        asked = dict(cfg.resources.get(spec.name, {}))
        out[spec.name] = {"num_cpus": asked.get("num_cpus", DEFAULT_ACTOR_CPUS), "num_gpus": asked.get("num_gpus", 0),
                          "memory": asked.get("memory"), "concurrency": int(asked.get("concurrency", 1))}
    return out


def _check_feasible(ray, requests: dict[str, dict], wait: float) -> None:
    """Every stage's actor fits on some node (waiting up to ``wait`` s for an autoscaling cluster): else one
    line naming the stage and what it asked, before any image."""
    deadline = time.monotonic() + wait
    while True:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        missing = [(name, r) for name, r in requests.items()
                   if not any(n.get("CPU", 0) >= r["num_cpus"] and n.get("GPU", 0) >= r["num_gpus"]
                              and (r["memory"] is None or n.get("memory", 0) >= r["memory"]) for n in nodes)]
        if not missing:
            return
        if time.monotonic() >= deadline:
            name, r = missing[0]
            have = "; ".join(f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU" for n in nodes) or "no node"
            raise ConfigError(f"--ray-resources {name}: no node of the cluster has num_cpus {r['num_cpus']:g}, "
                              f"num_gpus {r['num_gpus']:g} (nodes: {have}); ask less or add such a node")
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


class StageRunner:
    """A Ray Data actor running one stage on groups of images (its model loaded once per actor)."""

    def __init__(self, graph, name: str, section, context, retry_failed: bool, threads: int) -> None:
        import torch

        from genemi.generation_pipeline import registry

        torch.set_num_threads(max(1, threads))
        self.graph, self.name, self.retry_failed = graph, name, retry_failed
        self.spec = graph[name]
        with registry.using(graph):
            self.stage = self.spec.build(section, context)
            self.stage.load()
        self.batch_size = section.batch_size

    def _records(self, row: dict, name: str) -> list:
        record = self.graph[name].record
        return [None if line is None else record.model_validate_json(line) for line in row[name]]

    def __call__(self, row: dict) -> dict:
        from genemi.generation_pipeline import registry
        from genemi.manifest import encode_line
        from genemi.records import ImageInput

        start, began = time.perf_counter(), time.time()
        spec = self.spec
        if spec.primary is None:
            primary = [ImageInput.model_validate_json(line) for line in row["inputs"]]
        else:
            primary = self._records(row, spec.primary)
        joined = {name: {r.id: r for r in self._records(row, name) if r is not None} for name in spec.reads[1:]}
        done = list(row[self.name])
        todo = [k for k, line in enumerate(done) if primary[k] is not None and (
            line is None or (self.retry_failed and json.loads(line).get("status") == "failed"))]
        retried = sum(done[k] is not None for k in todo)
        outputs: list = []
        self.stage.model_seconds = 0.0
        with registry.using(self.graph):
            for k in range(0, len(todo), self.batch_size):
                chunk = todo[k : k + self.batch_size]
                records = self.stage.apply([primary[i] for i in chunk], joined)
                for i, rec in zip(chunk, records, strict=True):
                    done[i] = encode_line(rec.model_dump(mode="json"))
                outputs += records
        new = [done[i] for i in todo]
        row[self.name] = done
        row[f"new:{self.name}"] = json.dumps({"lines": new, "retried": retried, "model": self.stage.model_seconds,
                                              "seconds": time.perf_counter() - start, "busy": [began, time.time()]})
        return row


def execute_ray(plan, progress: bool = True) -> dict[str, dict]:
    """Run ``plan`` (see :func:`genemi.generation_pipeline.pipeline.plan_run`) on Ray; returns each stage's
    summary, as :func:`~genemi.generation_pipeline.pipeline.execute_local` does."""
    from tqdm import tqdm

    from genemi.generation_pipeline.stage import StageStats
    from genemi.manifest import ManifestWriter, encode_line, iter_json_lines, merge_side_file
    from genemi.run_settings import record_settings

    ray = _import_ray()
    cfg, out, graph = plan.cfg, plan.out, plan.graph
    ray_cfg: RayConfig = cfg.ray
    requests = _requests(plan, ray_cfg)
    _connect(ray, ray_cfg)
    _check_feasible(ray, requests, ray_cfg.wait)

    # what each stage's manifest already holds (a rerun passes it along: done ids are skipped)
    state: dict[str, dict[str, str]] = {}
    for spec in plan.specs:
        path = out / spec.writes
        merge_side_file(path, path.with_name(path.name + ".retry"))
        state[spec.name] = {str(obj["id"]): encode_line(obj) for _, obj in iter_json_lines(path)} \
            if path.exists() else {}
        record_settings(path, plan.fingerprints[spec.name])
    inputs_needed = {r for s in plan.specs for r in (s.reads or ())} - {s.name for s in plan.specs}
    upstream: dict[str, dict[str, str]] = {}
    for name in inputs_needed:  # manifests of stages this run reads but does not run
        upstream[name] = {str(obj["id"]): encode_line(obj) for _, obj in iter_json_lines(out / graph[name].writes)}

    size = group_size(plan, ray_cfg)
    rows = []
    for g in range(0, len(plan.inputs), size):
        images = plan.inputs[g : g + size]
        ids = [r.id for r in images]
        row = {"group": g // size, "ids": ids, "inputs": [r.model_dump_json() for r in images]}
        for name, known in {**upstream, **state}.items():
            row[name] = [known.get(i) for i in ids]
        rows.append(row)
    stats = {s.name: StageStats(s.name, len(plan.inputs)) for s in plan.specs}
    busy: dict[str, list] = {s.name: [] for s in plan.specs}  # (start, end) of each group in each stage
    if not rows:
        return {name: s.summary() for name, s in stats.items()}

    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    for spec in plan.specs:
        r = requests[spec.name]
        remote = {"num_cpus": r["num_cpus"], "num_gpus": r["num_gpus"]}
        if r["memory"] is not None:
            remote["memory"] = r["memory"]
        ds = ds.map(StageRunner, fn_constructor_kwargs=dict(
            graph=graph, name=spec.name, section=cfg.section(spec.name), context=plan.stages[0].context,
            retry_failed=cfg.retry_failed, threads=max(1, math.ceil(r["num_cpus"]))),
            concurrency=r["concurrency"], **remote)
    start = time.perf_counter()
    bar = tqdm(total=len(plan.inputs), desc="ray", unit="image", disable=not progress)
    writers = {s.name: ManifestWriter(out / s.writes) for s in plan.specs}
    try:
        for row in ds.iter_rows():
            for spec in plan.specs:
                result = json.loads(row[f"new:{spec.name}"])
                lines = result["lines"]
                writers[spec.name].write(json.loads(line) for line in lines)
                s = stats[spec.name]
                s.retried += result["retried"]
                s.model_seconds += result["model"]
                s.seconds += result["seconds"]
                s.count([spec.record.model_validate_json(line) for line in lines])
                busy[spec.name].append(result["busy"])
            bar.update(len(row["ids"]))
    finally:
        for writer in writers.values():
            writer.close()
        bar.close()
    for spec in plan.specs:
        _sort_manifest(out / spec.writes)
        s = stats[spec.name]
        s.already_done = s.inputs - s.processed
    logger.info("ray: %d images in %.1f s", len(plan.inputs), time.perf_counter() - start)
    t0 = min((b[0] for spans in busy.values() for b in spans), default=0.0)
    return {name: {**s.summary(), "busy": [[round(a - t0, 3), round(b - t0, 3)] for a, b in sorted(busy[name])]}
            for name, s in stats.items()}


def _sort_manifest(path) -> None:
    """Rewrite a manifest sorted by id, one line per id (the last written wins): the local executor's order."""
    from genemi.manifest import encode_line, iter_json_lines, write_atomic

    if not path.exists():
        return
    records = {str(obj["id"]): obj for _, obj in iter_json_lines(path)}
    write_atomic(path, "".join(encode_line(records[k]) + "\n" for k in sorted(records)).encode("utf-8"))
