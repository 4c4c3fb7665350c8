"""``genemi generate`` / ``python -m genemi.generation_pipeline.pipeline``: the staged generation pipeline.

The stages, what each reads and writes, and their options come from the graph declared in
:mod:`genemi.generation_pipeline.registry`. Each stage reads the manifests of the stages it names and appends to
its own in the output folder, one line per image, in an order where every stage runs after those it reads;
rerunning skips what is done (``--retry-failed`` redoes failed records). ``--num-shards/--shard-index``
(default: the torch.distributed environment) split the images; each shard writes under ``shards/``, and
``genemi generate merge`` joins them. Every stage that will run checks its settings and files before the
first image is processed.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, make_dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from genemi.errors import ConfigError
from genemi.generation_pipeline import registry
from genemi.generation_pipeline.chat import ChatConfig
from genemi.generation_pipeline.ray_executor import RayConfig
from genemi.generation_pipeline.graph import IMAGES, StageGraph, StageSpec
from genemi.generation_pipeline.options import add_section_arguments, check_backend_options, flag_of
from genemi.options import Section, check_fields, option
from genemi.precision import DTYPES


#: ``--executor`` name -> "module:function" running a checked plan: ``function(plan, progress) -> stage summaries``
EXECUTORS = {
    "local": "genemi.generation_pipeline.pipeline:execute_local",  # the stages one after another, in this process
    "ray": "genemi.generation_pipeline.ray_executor:execute_ray",  # streamed through Ray Data, stages as actor pools
}


@dataclass
class RunConfig:
    """The run's own options (declared with :func:`genemi.options.option`, like every stage section's);
    :func:`config_class` adds one section per stage of the graph."""

    output_dir: str = option("generation_output", "output folder", metavar="DIR")
    input_dir: str | None = option(None, "image folder (searched recursively for jpg/jpeg/png/webp); with "
                                   "--annotation-file, the root its image paths are relative to", metavar="DIR")
    annotation_file: str | None = option(None, "captions: Karpathy/BLIP JSON list, COCO captions_*.json or JSONL",
                                         metavar="FILE")
    encoding: str = option("utf-8", "text encoding of --annotation-file")
    save_annotated_image: bool = option(False, "write previews/ with boxes and masks")
    stages: str = option("variations", "what to run (a selection of the graph's stages, StageGraph.select)")
    limit: int | None = option(None, "only the first N images (sorted by path)", at_least=1, metavar="N")
    seed: int = option(0, "global seed; portrayals and per-variation seeds derive from it")
    retry_failed: bool = option(False, "redo records that failed in an earlier run (replaced in place); without it "
                                "they count as done")
    force: bool = option(False, "start the selected stages over: their outputs, and those of every stage that reads "
                         "them (directly or not), are removed first; other stages' outputs are kept")
    allow_changed_settings: bool = option(False, "resume a stage whose output was written with other settings (the "
                                          "change is recorded in <manifest>.settings.json); without it such a rerun "
                                          "stops and names the differences")
    device: str | None = option(None, "cpu, cuda, cuda:1", default_text="the local GPU when there is one")
    dtype: str = option("auto", "precision of the models (YAML key dtype; auto = bf16 on CUDA with bf16, fp16 on "
                        "older CUDA, fp32 on the CPU; fp16 on the CPU is refused)", flag="--precision",
                        aliases=("--dtype",), choices=DTYPES)
    offload: bool = option(False, "keep only the active stage's model on the GPU")
    num_shards: int | None = option(None, "split the images in N shards", at_least=1, metavar="N",
                                    default_text="WORLD_SIZE")
    shard_index: int | None = option(None, "which shard this process runs", at_least=0, metavar="K",
                                     default_text="RANK")
    executor: str = option("local", "where the stages run: local (one after another in this process) or ray (one "
                           "run across a Ray cluster, stages streamed as actor pools; pip install 'genemi[ray]')",
                           choices=tuple(EXECUTORS))
    llm: ChatConfig = field(default_factory=ChatConfig)  # the chat model of the LLM backends (YAML section llm)
    ray: RayConfig = field(default_factory=RayConfig)  # --executor ray's options (YAML section ray)

    #: the stage graph the sections were derived from (set by :func:`config_class`)
    graph: ClassVar[StageGraph]

    def __post_init__(self) -> None:
        check_fields(self)  # choices and bounds, named by flag (--executor, --limit, --precision, ...)
        self.graph.select(self.stages)  # an unknown stage or an empty range is refused here

    def section(self, stage: str) -> Any:
        """The config section of ``stage`` (its own, or the one it shares: see ``StageSpec.section``)."""
        return getattr(self, self.graph[stage].section_name)


@functools.lru_cache(maxsize=None)
def config_class(graph: StageGraph) -> type:
    """``PipelineConfig`` of a graph: :class:`RunConfig` plus one field per config section (named as the stage
    that owns it; stages configured by another stage's section share it), the YAML section of the same name."""
    fields = [(name, specs[0].config, field(default_factory=specs[0].config))
              for name, specs in graph.sections().items()]
    cls = make_dataclass("PipelineConfig", fields, bases=(RunConfig,), namespace={"graph": graph})
    cls.__module__ = __name__
    return cls


#: the configuration of the declared pipeline (:data:`registry.STAGES`)
PipelineConfig = config_class(registry.STAGES)


def shard_setup(cfg: RunConfig) -> tuple[int, int]:
    from genemi.distributed import DistEnv

    env = DistEnv.from_environ()
    n = cfg.num_shards if cfg.num_shards is not None else env.world_size
    i = cfg.shard_index if cfg.shard_index is not None else (env.rank if cfg.num_shards in (None, env.world_size) else 0)
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard-index {i} must be in [0, --num-shards {n})")
    return n, i


def stage_dir(cfg: RunConfig, n: int, i: int) -> Path:
    out = Path(cfg.output_dir)
    return out if n == 1 else out / "shards" / f"shard-{i:05d}-of-{n:05d}"


def _dtype(name: str, device: str) -> tuple[str, Any]:
    """``(resolved name, torch dtype or None = fp32)`` of ``--dtype`` on ``device`` (:mod:`genemi.precision`)."""
    from genemi.precision import resolve_dtype_name, torch_dtype

    resolved = resolve_dtype_name(name, device)
    return resolved, None if resolved == "fp32" else torch_dtype(resolved)


def missing_inputs(graph: StageGraph, specs: Sequence[StageSpec], out: Path) -> list[str]:
    """For each selected stage, the manifests it reads that neither exist in ``out`` nor come from a stage
    selected to run before it: "stage X needs Y (run --stages Z first)"."""
    selected = {s.name for s in specs}
    gaps = []
    for spec in specs:
        for name in spec.reads:
            if name not in selected and not (out / graph[name].writes).exists():
                gaps.append(f"stage {spec.name!r} needs {out / graph[name].writes} (run --stages {name} first)")
    return gaps


@dataclass
class RunPlan:
    """A run checked and ready: what :func:`plan_run` decided before the first image; an executor runs it."""

    cfg: RunConfig
    specs: list[StageSpec]  # the selected stages, in run order
    stages: list[Any]  # their Stage objects, built and checked
    out: Path  # this shard's output folder
    shard: tuple[int, int]  # (index, count)
    device: str
    inputs: list  # this shard's input images (ImageInput), sorted by id
    fingerprints: dict[str, dict]  # stage -> settings record

    @property
    def graph(self) -> StageGraph:
        return self.cfg.graph

    def primary_records(self, spec: StageSpec) -> list:
        """The stage's primary input records of this shard's images (the input images for a first stage)."""
        from genemi.manifest import read_records

        if spec.primary is None:
            return self.inputs
        ids = {r.id for r in self.inputs}
        primary = self.graph[spec.primary]
        return [r for r in read_records(self.out / primary.writes, primary.record) if r.id in ids]

    def joined(self, spec: StageSpec) -> dict:
        """The other manifests the stage reads, looked up by id."""
        from genemi.manifest import ManifestIndex

        return {name: ManifestIndex(self.out / self.graph[name].writes, self.graph[name].record)
                for name in spec.reads[1:]}


def plan_run(cfg: RunConfig) -> RunPlan:
    """Everything before the first image: the output folder is writable, every selected stage is built and
    checked (settings, model files' structure), what each reads exists or will be written first, the settings
    match those of the manifests being resumed (or ``--force`` removes what is stale), and the inputs are read."""
    from genemi.distributed import DistEnv, resolve_device
    from genemi.generation_pipeline.inputs import collect_inputs, shard
    from genemi.generation_pipeline.settings import REMEDY, remove_outputs, stage_record
    from genemi.generation_pipeline.stage import StageContext
    from genemi.manifest import require_writable_dir
    from genemi.run_settings import check_settings

    graph = cfg.graph
    specs = graph.select(cfg.stages)
    n, i = shard_setup(cfg)
    out = stage_dir(cfg, n, i)
    require_writable_dir(out, "the output folder")
    device = str(resolve_device(cfg.device, DistEnv.from_environ()))
    dtype_name, dtype = _dtype(cfg.dtype, device)
    context = StageContext(image_root=Path(cfg.input_dir or "."), output_dir=out, device=device,
                           dtype=dtype, seed=cfg.seed, llm=cfg.llm)
    with registry.using(graph):
        stages = [spec.build(cfg.section(spec.name), context) for spec in specs]
        for stage in stages:
            stage.check()
    gaps = missing_inputs(graph, specs, out)
    if gaps:
        raise ConfigError("; ".join(gaps))
    fingerprints = {spec.name: stage_record(stage, cfg.section(spec.name), cfg.seed, dtype_name, cfg.llm, spec.name)
                    for spec, stage in zip(specs, stages)}
    if cfg.force:
        removed = remove_outputs(out, graph.downstream(s.name for s in specs))
        if removed:
            logging.getLogger(__name__).warning("--force: removed %s from %s", ", ".join(removed), out)
    else:
        for spec in specs:
            check_settings(out / spec.writes, fingerprints[spec.name], cfg.allow_changed_settings, f"stage {spec.name}",
                           REMEDY)
    inputs = collect_inputs(cfg.input_dir, cfg.annotation_file, cfg.encoding)
    if cfg.limit is not None:
        inputs = inputs[: cfg.limit]
    mine = shard(inputs, n, i)
    for spec, stage in zip(specs, stages):
        if not spec.reads:
            stage.check_inputs(mine)
    return RunPlan(cfg, specs, stages, out, (i, n), device, mine, fingerprints)


def execute_local(plan: RunPlan, progress: bool = True) -> dict[str, dict]:
    """Run the plan's stages one after another in this process; returns each stage's summary."""
    import torch

    from genemi.generation_pipeline.stage import run_stage
    from genemi.run_settings import record_settings

    cfg, out = plan.cfg, plan.out
    done: dict[str, dict] = {}
    with registry.using(plan.graph):
        for spec, stage in zip(plan.specs, plan.stages):
            record_settings(out / spec.writes, plan.fingerprints[spec.name])
            stats = run_stage(stage, plan.primary_records(spec), out, cfg.section(spec.name).batch_size, progress,
                              cfg.retry_failed, plan.joined(spec))
            if cfg.offload or spec is plan.specs[-1]:
                stage.offload()
            done[spec.name] = stats.summary()
            logging.getLogger(__name__).info("%s: %s", spec.name, done[spec.name])
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return done


def run_pipeline(cfg: RunConfig, progress: bool = True) -> dict:
    """Run the selected stages on this shard's images; returns (and writes) the run summary."""
    from genemi.manifest import read_records, write_atomic

    plan = plan_run(cfg)
    graph, out = plan.graph, plan.out
    i, n = plan.shard
    summary = {"shard": {"index": i, "count": n}, "images": len(plan.inputs), "device": plan.device,
               "pipeline": [{"stage": s.name, "reads": list(s.reads) or [IMAGES], "writes": s.writes,
                             "folders": list(s.folders)} for s in graph],
               "stages": {}, "config": asdict(cfg), "working_dir": os.getcwd(), "settings": plan.fingerprints}
    start = time.perf_counter()
    module, _, function = EXECUTORS[cfg.executor].partition(":")
    summary["executor"] = cfg.executor
    summary["stages"] = getattr(importlib.import_module(module), function)(plan, progress)
    masks = out / graph["segment"].writes if "segment" in graph else None
    if cfg.save_annotated_image and masks is not None and masks.exists():
        from genemi.generation_pipeline.previews import save_previews
        from genemi.generation_pipeline.segmentation.config import PREVIEWS  # a folder of segment's (--force)

        ids = {r.id for r in plan.inputs}
        records = [r for r in read_records(masks, graph["segment"].record) if r.id in ids]
        summary["previews"] = save_previews(records, Path(cfg.input_dir or "."), out / PREVIEWS)
    summary["seconds"] = time.perf_counter() - start
    write_atomic(out / "run_summary.json", json.dumps(summary, indent=2, default=str).encode("utf-8"))
    return summary


def _merge_files(shard_dirs: Sequence[Path], root: Path, folder: str) -> int:
    """Hard-link (or copy) the files of each shard's ``folder`` to the same relative path under ``root``; the
    manifests' relative paths stay valid. Files already there with the same size are kept."""
    import shutil

    count = 0
    for d in shard_dirs:
        for src in sorted((d / folder).rglob("*")) if (d / folder).is_dir() else ():
            if not src.is_file() or src.name.startswith(".tmp"):
                continue
            dst = root / src.relative_to(d)
            if dst.exists() and dst.stat().st_size == src.stat().st_size:
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".tmp-merge-{dst.name}")
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
            count += 1
    return count


def shard_gaps(root: Path, shard_dirs: Sequence[Path]) -> list[str]:
    """What makes a set of shard folders incomplete: missing shards, shard counts that disagree, and stages
    that did not finish in some shard (fewer records than their primary input, or absent where others have
    them)."""
    import re

    from genemi.manifest import iter_json_lines

    found = {}
    for d in shard_dirs:
        m = re.fullmatch(r"shard-(\d+)-of-(\d+)", d.name)
        if m:
            found[d] = (int(m.group(1)), int(m.group(2)))
    gaps = []
    totals = sorted({n for _, n in found.values()})
    if len(totals) > 1:
        gaps.append(f"shard folders of different --num-shards ({', '.join(map(str, totals))}) under {root / 'shards'}: "
                    "remove the stale ones")
    for n in totals:
        have = {i for i, total in found.values() if total == n}
        missing = [i for i in range(n) if i not in have]
        if missing:
            gaps.append(f"{len(missing)} of {n} shards missing (e.g. --shard-index {missing[0]} --num-shards {n})")

    def ids(path: Path) -> int | None:
        return len({obj.get("id") for _, obj in iter_json_lines(path)}) if path.exists() else None

    graph = registry.STAGES
    for spec in graph:
        counts = {d: ids(d / spec.writes) for d in shard_dirs}
        if all(c is None for c in counts.values()):
            continue
        for d, c in counts.items():
            if spec.primary is None:
                summary = d / "run_summary.json"
                expected = json.loads(summary.read_text()).get("images") if summary.is_file() else None
            else:
                expected = ids(d / graph[spec.primary].writes)
            if c is None:
                gaps.append(f"{d.name}: stage {spec.name} has not run ({spec.writes} missing)")
            elif expected is not None and c < expected:
                gaps.append(f"{d.name}: stage {spec.name} wrote {c} of {expected} images (rerun that shard to finish)")
    return gaps


def merge_shards(output_dir: str | Path, allow_partial: bool = False) -> dict[str, int]:
    """Join ``shards/*/<manifest>`` into ``<output_dir>/<manifest>`` for every stage of the graph (sorted by id,
    deduplicated) and bring the files of the stages' folders to the same relative paths under ``output_dir``.
    An incomplete shard set (:func:`shard_gaps`) is refused unless ``allow_partial``."""
    from genemi.manifest import encode_line, iter_json_lines, write_atomic

    root = Path(output_dir)
    shard_dirs = sorted((root / "shards").glob("shard-*-of-*"))
    if not shard_dirs:
        raise ConfigError(f"no shard folders under {root / 'shards'}")
    gaps = shard_gaps(root, shard_dirs)
    if gaps and not allow_partial:
        raise ConfigError(f"the shards are incomplete: {'; '.join(gaps[:5])}"
                          f"{f' (+{len(gaps) - 5} more)' if len(gaps) > 5 else ''}; finish them, or --allow-partial "
                          "to merge what is there")
    for gap in gaps:
        logging.getLogger(__name__).warning("--allow-partial: %s", gap)
    counts = {}
    graph = registry.STAGES
    for spec in graph:
        records = {}
        for d in shard_dirs:
            if (d / spec.writes).exists():
                for _, obj in iter_json_lines(d / spec.writes):
                    records.setdefault(obj["id"], obj)
        if records:
            write_atomic(root / spec.writes, "".join(encode_line(records[k]) + "\n" for k in sorted(records)).encode())
            counts[spec.writes] = len(records)
    for folder in (f for spec in graph for f in spec.folders):
        copied = _merge_files(shard_dirs, root, folder)
        if copied:
            counts[f"{folder}/"] = copied
    summaries = [json.loads((d / "run_summary.json").read_text()) for d in shard_dirs if (d / "run_summary.json").is_file()]
    if summaries:  # what later tools read (e.g. the gallery's input folder), plus each shard's own figures
        merged = {"merged_from": [str(d.relative_to(root)) for d in shard_dirs], "config": summaries[0].get("config"),
                  "working_dir": summaries[0].get("working_dir"),
                  "images": sum(x.get("images", 0) for x in summaries), "shards": summaries}
        write_atomic(root / "run_summary.json", json.dumps(merged, indent=2, default=str).encode("utf-8"))
    return counts


def _batch_sizes(value: str) -> dict[str, int]:
    """``N`` (every stage) or ``stage=N,stage=N``."""
    names = registry.STAGES.names
    try:
        if "=" not in value:
            return {s: int(value) for s in names}
        out = {}
        for part in value.split(","):
            k, _, v = part.partition("=")
            if k.strip() not in names:
                raise argparse.ArgumentTypeError(f"unknown stage {k.strip()!r} (stages: {', '.join(names)})")
            out[k.strip()] = int(v)
        return out
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected N or stage=N,...: {value!r}") from exc


def graph_text(graph: StageGraph) -> str:
    """The stages as ``--help`` shows them: run order, then what each reads and writes."""
    rows = graph.table()
    widths = [max(len(r[k]) for r in rows) for k in range(3)]
    lines = [f"  {a:{widths[0]}s}  {b:{widths[1]}s} -> {c:{widths[2]}s}  {d}" for a, b, c, d in rows]
    return " -> ".join(graph.names) + " (run order). Each stage reads the manifests of the stages it names:\n" + \
        "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    graph = registry.STAGES
    from genemi.options import add_options, command_parser

    p = command_parser(
        "genemi generate",
        "GeNeMi generation pipeline (resumable, batched, shardable): " + graph_text(graph)
        + "\n\nAfter a run (each has --help):\n  genemi generate merge --output-dir DIR    join shard outputs\n"
        + "\n".join(f"  genemi generate {k} --output-dir DIR  {v[1]}" for k, v in TOOLS.items()),
        config="YAML preset (configs/pipeline/*.yaml; one section per stage, keys as the flags with _ for -); "
        "flags override it", progress=True,
    )
    inputs = ("output_dir", "input_dir", "annotation_file", "encoding", "save_annotated_image")
    others = [f.name for f in dataclasses.fields(RunConfig) if f.name not in inputs]
    io = p.add_argument_group("inputs and outputs (original flags)")
    add_options(p, RunConfig, group=io, skip=others)
    io.add_argument("--root-dir", default=None, metavar="DIR",
                    help="root the annotation file's image paths are relative to (the original's name of --input-dir)")
    run = p.add_argument_group("run")
    named = "; ".join(f"{k} = {v}" for k, v in graph.selections.items())
    run.add_argument("--stages", default=None, help=f"what to run: a named chain ({named}; default: variations), "
                     f"all, one of {', '.join(graph.names)}, a range a:b (a, b and every stage on a path between "
                     "them; a: is a and every stage reading it, directly or not; :b is b and every stage it reads), "
                     "or a comma list of these")
    run.add_argument("--batch-size", type=_batch_sizes, default=None,
                     help="images per batch: N for every stage, or " + ",".join(f"{s.name}={s.config().batch_size}" for s in graph)
                     + " (stages sharing a config section share its batch size)")
    add_options(p, RunConfig, group=run, skip=(*inputs, "stages"))
    group = p.add_argument_group("--executor ray (YAML section ray)")
    add_section_arguments(group, RayConfig, "ray")
    users = [f"{s.backends.flag} {'|'.join(s.config.llm_backends)}" for s in graph if s.config.llm_backends]
    group = p.add_argument_group(f"chat model of {' and '.join(users) or 'the LLM backends'} (YAML section llm)")
    add_section_arguments(group, ChatConfig, "llm")
    for name, specs in graph.sections().items():
        what = "; ".join(f"stage {s.name}: {s.summary}" for s in specs)
        group = p.add_argument_group(f"{what} (YAML section {name})")
        add_section_arguments(group, specs[0].config, name, {"backend": specs[0].backends.names})
    return p


_GENERAL = ("output_dir", "annotation_file", "encoding", "save_annotated_image", "stages", "limit", "seed", "retry_failed",
            "force", "allow_changed_settings", "device", "dtype", "offload", "num_shards", "shard_index", "executor")


def resolve_config(args) -> RunConfig:
    """Defaults < YAML preset < flags, for the current graph; options given for a backend that is not selected
    are refused."""
    from genemi.presets import load_config, merge_dicts, parse_set_overrides, read_preset

    graph = registry.STAGES
    if args.input_dir and args.root_dir and args.input_dir != args.root_dir:
        raise ConfigError("--input-dir and --root-dir name the same folder; give one")
    overrides: dict[str, Any] = {k: getattr(args, k) for k in _GENERAL}
    overrides["input_dir"] = args.input_dir or args.root_dir
    preset = read_preset(args.config) if args.config else {}
    given: dict[str, set[str]] = {}
    flagged: dict[str, set[str]] = {}
    sections = graph.sections()
    for name, specs in sections.items():
        section = {f.name: getattr(args, f"{name}__{f.name}") for f in dataclasses.fields(specs[0].config)
                   if hasattr(args, f"{name}__{f.name}")}
        for s in specs:
            if args.batch_size and s.name in args.batch_size:
                section["batch_size"] = args.batch_size[s.name]
        overrides[name] = section
        from_preset = preset.get(name) if isinstance(preset.get(name), dict) else {}
        flagged[name] = {k for k, v in section.items() if v is not None}
        given[name] = flagged[name] | set(from_preset)
    overrides["llm"] = {f.name: getattr(args, f"llm__{f.name}") for f in dataclasses.fields(ChatConfig)}
    overrides["ray"] = {f.name: getattr(args, f"ray__{f.name}") for f in dataclasses.fields(RayConfig)}
    llm_flagged = {k for k, v in overrides["llm"].items() if v is not None}
    llm_preset = set(preset["llm"]) if isinstance(preset.get("llm"), dict) else set()
    sets = parse_set_overrides(getattr(args, "set", None))  # --set section.key=value: applied last, as given flags
    for name, values in sets.items():
        if isinstance(values, dict) and name in flagged:
            flagged[name] |= set(values)
            given[name] |= set(values)
    llm_flagged |= set(sets.get("llm") or {}) if isinstance(sets.get("llm"), dict) else set()
    cfg = load_config(config_class(graph), args.config, merge_dicts(overrides, sets))
    selected = {s.name for s in graph.select(cfg.stages)}
    check_llm_options(cfg, [s for s in graph if s.name in selected], llm_flagged, llm_preset)
    for name, specs in sections.items():
        check_backend_options(getattr(cfg, name), given[name])
        runs = any(s.name in selected for s in specs)
        unused = sorted(flagged[name] - {"batch_size"}) if not runs else []
        if unused:
            fields = {f.name: f for f in dataclasses.fields(specs[0].config)}
            logging.getLogger(__name__).warning(
                "%s: for stage %s, which --stages %s does not run (ignored)",
                ", ".join(flag_of(fields[k]) for k in unused), " / ".join(s.name for s in specs), cfg.stages)
    return cfg


def check_llm_options(cfg: RunConfig, specs: Sequence[StageSpec], flagged: set[str], preset: set[str]) -> None:
    """Chat-model options (section ``llm``) for a backend no selected stage uses are refused, naming who would
    use them; when no selected stage can ask a chat model at all, flags are reported as ignored (as a stage's
    flags are when --stages does not run it)."""
    fields = {f.name: f for f in dataclasses.fields(ChatConfig)}
    askers = [s for s in specs if s.config.llm_backends]
    if not askers:
        if flagged:
            logging.getLogger(__name__).warning("%s: for the chat model, which no stage of --stages %s asks "
                                                "(ignored)", ", ".join(flag_of(fields[k]) for k in sorted(flagged)),
                                                cfg.stages)
        return
    for name in sorted(flagged | preset):
        allowed = fields[name].metadata.get("backends") or ()
        if any(cfg.section(s.name).backend in allowed for s in askers):
            continue
        need = " or ".join(f"{s.backends.flag} {' or '.join(b for b in s.config.llm_backends if b in allowed)}"
                           for s in askers)
        have = ", ".join(f"{s.backends.flag} {cfg.section(s.name).backend}" for s in askers)
        raise ConfigError(f"{flag_of(fields[name])} applies only to {need}, not {have}; drop it or choose that "
                          "backend")


def _print_summary(summary: dict) -> None:
    shard = summary["shard"]
    print(f"shard {shard['index'] + 1}/{shard['count']}: {summary['images']} images on {summary['device']} "
          f"in {summary['seconds']:.1f}s")
    for name, s in summary["stages"].items():
        if not s["processed"]:
            rate = "nothing to do"
        elif s["images_per_second"] is None:  # finished within the clock's resolution
            rate = "too fast to time"
        else:
            rate = f"{s['images_per_second']:.2f} images/s, {100 * s['overhead_fraction']:.0f}% outside model calls"
        retried = f"  retried {s['retried']}" if s["retried"] else ""
        print(f"  {name:8s} processed {s['processed']:6d}  already done {s['already_done']:6d}  failed {s['failed']:5d}"
              f"{retried}  {s['seconds']:7.1f}s  ({rate})")
        for reason, count in s["failure_reasons"].items():
            print(f"             {count:6d} x {reason}: {s['failure_examples'][reason]}")
    if "previews" in summary:
        print(f"  previews: {summary['previews']}")


@dataclass
class MergeOptions(Section):
    """``genemi generate merge``'s options."""

    output_dir: str | None = option(None, "the --output-dir the shards were run with", metavar="DIR", required=True)
    allow_partial: bool = option(False, "merge even when shards are missing or unfinished (each gap is reported)")


#: ``genemi generate <tool>``: module with ``main(argv)`` and a one-line description
TOOLS = {
    "export": ("genemi.generation_pipeline.export", "filtered training set: JSONL, legacy JSON, open_clip CSV, WebDataset"),
    "stats": ("genemi.generation_pipeline.stats", "per-stage counts and failure reasons, score histograms, filter pass rates"),
    "gallery": ("genemi.generation_pipeline.gallery", "static HTML gallery and PNG contact sheet of a run"),
    "regenerate": ("genemi.generation_pipeline.regenerate", "repaint one variation alone (its seed, the run's settings)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from genemi.cli import guarded

    if argv and argv[0] in TOOLS:
        import importlib

        return importlib.import_module(TOOLS[argv[0]][0]).main(argv[1:])
    if argv and argv[0] == "merge":
        from genemi.cli import run_tool
        from genemi.options import resolve, tool_parser

        def merge(args):
            o = resolve(MergeOptions, args)
            return merge_shards(o.output_dir, o.allow_partial)

        def report(counts):
            for name, c in counts.items():
                print(f"{name}: {c} {'files' if name.endswith('/') else 'records'}")

        return run_tool("genemi generate merge", tool_parser("genemi generate merge", "join shard manifests",
                                                             MergeOptions), argv[1:], merge, report)
    args = build_parser().parse_args(argv)
    def run():
        from genemi.options import setup_logging

        setup_logging(args)
        return run_pipeline(resolve_config(args), progress=args.progress)

    code, summary = guarded("genemi generate", "rerun the same command to resume", run)
    if code:
        return code
    _print_summary(summary)
    dead = [(name, s) for name, s in summary["stages"].items() if s["processed"] and s["failed"] == s["processed"]]
    if dead:
        name, s = dead[0]
        reason = next(iter(s["failure_reasons"]), "failed")
        print(f"genemi generate: error: every image failed in stage {name} ({reason}: "
              f"{s['failure_examples'].get(reason, '')}); nothing usable was produced", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
