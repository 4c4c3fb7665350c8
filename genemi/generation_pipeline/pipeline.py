"""``genemi generate`` / ``python -m genemi.generation_pipeline.pipeline``: the staged generation pipeline.

Stages (this part): ``tag`` -> ``ground`` -> ``segment``. Each reads the previous stage's manifest and appends
to its own (``tags.jsonl``, ``detections.jsonl``, ``masks.jsonl``) in the output folder, one line per image;
rerunning skips what is done. ``--num-shards/--shard-index`` (default: the torch.distributed environment)
split the images; each shard writes under ``shards/``, and ``genemi generate merge`` joins them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError

STAGES = ("tag", "ground", "segment")
#: manifest each stage writes
OUTPUTS = {"tag": "tags.jsonl", "ground": "detections.jsonl", "segment": "masks.jsonl"}


@dataclass
class PipelineConfig:
    output_dir: str = "generation_output"
    input_dir: str | None = None  # image folder; with an annotation file, the root its paths are relative to
    annotation_file: str | None = None
    stages: str = "all"
    limit: int | None = None
    tagger: str = "captions"
    blip_model: str | None = None
    tag2text_checkpoint: str | None = None
    tag2text_threshold: float = 0.64
    image_size: int = 384
    max_items: int = 10
    gd_model: str | None = None
    gd_config: str | None = None
    gd_checkpoint: str | None = None
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    nms_iou: float = 0.25
    sam_checkpoint: str | None = None
    min_crop: int = 512
    sd_checkpoint: str | None = None  # inpainting (next stages); accepted now
    batch_size: dict[str, int] = field(default_factory=lambda: {"tag": 8, "ground": 4, "segment": 4})
    device: str | None = None
    dtype: str = "fp32"
    offload: bool = False
    num_shards: int | None = None
    shard_index: int | None = None
    save_annotated_image: bool = False


def select_stages(spec: str) -> list[str]:
    """``all``, one stage, ``a:b`` (inclusive range) or a comma list, in pipeline order."""
    spec = spec.strip()
    if spec == "all":
        return list(STAGES)
    ranged = ":" in spec
    if ranged:
        names = [s.strip() or d for s, d in zip(spec.split(":", 1), (STAGES[0], STAGES[-1]))]
    else:
        names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage {unknown[0]!r}; stages: {', '.join(STAGES)}")
    if ranged:
        return list(STAGES[STAGES.index(names[0]) : STAGES.index(names[1]) + 1])
    return [s for s in STAGES if s in names]


def shard_setup(cfg: PipelineConfig) -> tuple[int, int]:
    from genemi.distributed import DistEnv

    env = DistEnv.from_environ()
    n = cfg.num_shards if cfg.num_shards is not None else env.world_size
    i = cfg.shard_index if cfg.shard_index is not None else (env.rank if cfg.num_shards in (None, env.world_size) else 0)
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard-index {i} must be in [0, --num-shards {n})")
    return n, i


def stage_dir(cfg: PipelineConfig, n: int, i: int) -> Path:
    out = Path(cfg.output_dir)
    return out if n == 1 else out / "shards" / f"shard-{i:05d}-of-{n:05d}"


def _dtype(name: str):
    import torch

    try:
        return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
    except KeyError as exc:
        raise ConfigError(f"--dtype must be fp32, fp16 or bf16, not {name!r}") from exc


def build_stage(name: str, cfg: PipelineConfig, device: str):
    root = Path(cfg.input_dir or ".")
    dtype = _dtype(cfg.dtype)
    if name == "tag":
        from genemi.generation_pipeline.tagging import TagStage, build_tagger

        tagger = build_tagger(cfg.tagger, blip_model=cfg.blip_model, device=device, dtype=dtype,
                              max_items=cfg.max_items, tag2text_checkpoint=cfg.tag2text_checkpoint,
                              tag2text_threshold=cfg.tag2text_threshold)
        return TagStage(tagger, root)
    if name == "ground":
        from genemi.generation_pipeline.grounding import GroundStage

        return GroundStage(cfg.gd_model, cfg.gd_config, cfg.gd_checkpoint, root, device, dtype, cfg.box_threshold,
                           cfg.text_threshold, cfg.nms_iou)
    from genemi.generation_pipeline.segmentation import SegmentStage

    return SegmentStage(cfg.sam_checkpoint, root, device, cfg.min_crop)


def run_pipeline(cfg: PipelineConfig, progress: bool = True) -> dict:
    """Run the selected stages on this shard's images; returns (and writes) the run summary."""
    import torch

    from genemi.distributed import DistEnv, resolve_device
    from genemi.generation_pipeline.inputs import collect_inputs, shard
    from genemi.generation_pipeline.records import DetectionRecord, TagRecord
    from genemi.generation_pipeline.stage import run_stage
    from genemi.manifest import read_records

    stages = select_stages(cfg.stages)
    n, i = shard_setup(cfg)
    out = stage_dir(cfg, n, i)
    out.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(cfg.device, DistEnv.from_environ()))
    inputs = collect_inputs(cfg.input_dir, cfg.annotation_file)
    if cfg.limit is not None:
        inputs = inputs[: cfg.limit]
    mine = shard(inputs, n, i)
    ids = {r.id for r in mine}
    summary = {"shard": {"index": i, "count": n}, "images": len(mine), "device": device, "stages": {},
               "config": asdict(cfg)}
    start = time.perf_counter()
    previous = {"ground": ("tag", TagRecord), "segment": ("ground", DetectionRecord)}
    for name in stages:
        if name == "tag":
            records = mine
        else:
            prev_name, prev_type = previous[name]
            prev_path = out / OUTPUTS[prev_name]
            if not prev_path.exists():
                raise ConfigError(f"stage {name!r} needs {prev_path} (run --stages {prev_name} first)")
            records = [r for r in read_records(prev_path, prev_type) if r.id in ids]
        stage = build_stage(name, cfg, device)
        stats = run_stage(stage, records, out, int(cfg.batch_size.get(name, 1)), progress)
        if cfg.offload or name == stages[-1]:
            stage.offload()
        summary["stages"][name] = {**asdict(stats), "images_per_second": stats.images_per_second,
                                   "overhead_fraction": stats.overhead_fraction}
        logging.getLogger(__name__).info("%s: %s", name, summary["stages"][name])
        del stage
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if cfg.save_annotated_image and (out / OUTPUTS["segment"]).exists():
        from genemi.generation_pipeline.previews import save_previews
        from genemi.generation_pipeline.records import MaskRecord

        masks = [r for r in read_records(out / OUTPUTS["segment"], MaskRecord) if r.id in ids]
        summary["previews"] = save_previews(masks, Path(cfg.input_dir or "."), out / "previews")
    summary["seconds"] = time.perf_counter() - start
    (out / "run_summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return summary


def merge_shards(output_dir: str | Path) -> dict[str, int]:
    """Join ``shards/*/<stage>.jsonl`` into ``<output_dir>/<stage>.jsonl`` (sorted by id, deduplicated)."""
    from genemi.manifest import iter_json_lines

    root = Path(output_dir)
    shard_dirs = sorted((root / "shards").glob("shard-*-of-*"))
    if not shard_dirs:
        raise ConfigError(f"no shard folders under {root / 'shards'}")
    counts = {}
    for name in OUTPUTS.values():
        records = {}
        for d in shard_dirs:
            if (d / name).exists():
                for _, obj in iter_json_lines(d / name):
                    records.setdefault(obj["id"], obj)
        if not records:
            continue
        tmp = root / (name + ".tmp")
        tmp.write_text("".join(json.dumps(records[k], ensure_ascii=False, separators=(",", ":")) + "\n"
                               for k in sorted(records)), encoding="utf-8")
        tmp.replace(root / name)
        counts[name] = len(records)
    return counts


def _batch_sizes(value: str) -> dict[str, int]:
    if "=" not in value:
        return {s: int(value) for s in STAGES}
    out = {}
    for part in value.split(","):
        k, _, v = part.partition("=")
        if k.strip() not in STAGES:
            raise argparse.ArgumentTypeError(f"unknown stage {k!r} in --batch-size")
        out[k.strip()] = int(v)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genemi generate",
        description="GeNeMi generation pipeline: tag -> ground -> segment (resumable, batched, shardable). "
        "`genemi generate merge --output-dir DIR` joins shard outputs. Defaults in parentheses.",
    )
    io = p.add_argument_group("inputs and outputs (original flags)")
    io.add_argument("--output-dir", default=None, help="output folder (default generation_output)")
    io.add_argument("--input-dir", default=None, help="image folder (searched recursively for jpg/jpeg/png/webp)")
    io.add_argument("--root-dir", default=None, help="root the annotation file's image paths are relative to (alias of --input-dir)")
    io.add_argument("--annotation-file", default=None, help="captions: Karpathy/BLIP JSON list, COCO captions_*.json or JSONL")
    io.add_argument("--save-annotated-image", action="store_true", default=None, help="write previews/ with boxes and masks")
    io.add_argument("--verbose", action="store_true", help="debug logging")
    m = p.add_argument_group("models (original flags)")
    m.add_argument("--tag2text-checkpoint", default=None, help="original Tag2Text .pth (tagger tag2text: not available yet)")
    m.add_argument("--tag2text-threshold", type=float, default=None, help="Tag2Text tag threshold (0.64)")
    m.add_argument("--image-size", type=int, default=None, help="Tag2Text input size (384)")
    m.add_argument("--gd-config", default=None, help="original Grounding DINO .py config (separate issue; use --gd-model)")
    m.add_argument("--gd-checkpoint", default=None, help="original Grounding DINO .pth (separate issue; use --gd-model)")
    m.add_argument("--sam-checkpoint", default=None, help="original SAM checkpoint sam_vit_{h,l,b}_*.pth")
    m.add_argument("--sd-checkpoint", default=None, help="Stable Diffusion inpainting folder (used by the next stages)")
    n = p.add_argument_group("genemi")
    n.add_argument("--config", default=None, help="YAML preset (configs/pipeline/*.yaml); flags override it")
    n.add_argument("--stages", default=None, help=f"all, one of {', '.join(STAGES)}, a range like tag:ground, or a list")
    n.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by path)")
    n.add_argument("--tagger", choices=("captions", "blip", "tag2text"), default=None,
                   help="captions: noun phrases of the given captions; blip: a BLIP caption's noun phrases")
    n.add_argument("--blip-model", default=None, help="local BLIP captioning folder (--tagger blip)")
    n.add_argument("--max-items", type=int, default=None, help="items per image (10)")
    n.add_argument("--gd-model", default=None, help="local transformers Grounding DINO folder (e.g. grounding-dino-tiny)")
    n.add_argument("--box-threshold", type=float, default=None, help="box score threshold (0.35)")
    n.add_argument("--text-threshold", type=float, default=None, help="token score threshold (0.25)")
    n.add_argument("--nms-iou", type=float, default=None, help="class-agnostic NMS IoU (0.25)")
    n.add_argument("--min-crop", type=int, default=None, help="smallest inpainting crop window in px (512)")
    n.add_argument("--batch-size", type=_batch_sizes, default=None, help="images per batch: N, or tag=8,ground=4,segment=4")
    n.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: the local GPU when there is one)")
    n.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="precision of tagging/grounding models")
    n.add_argument("--offload", action="store_true", default=None, help="keep only the active stage's model on the GPU")
    n.add_argument("--num-shards", type=int, default=None, help="split the images in N shards (default: WORLD_SIZE)")
    n.add_argument("--shard-index", type=int, default=None, help="which shard this process runs (default: RANK)")
    n.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


_FLAG_FIELDS = ("output_dir", "annotation_file", "save_annotated_image", "tag2text_checkpoint", "tag2text_threshold",
                "image_size", "gd_config", "gd_checkpoint", "sam_checkpoint", "sd_checkpoint", "stages", "limit",
                "tagger", "blip_model", "max_items", "gd_model", "box_threshold", "text_threshold", "nms_iou",
                "min_crop", "batch_size", "device", "dtype", "offload", "num_shards", "shard_index")


def resolve_config(args) -> PipelineConfig:
    from genemi.presets import load_config

    overrides = {k: getattr(args, k) for k in _FLAG_FIELDS}
    if args.input_dir and args.root_dir and args.input_dir != args.root_dir:
        raise ConfigError("--input-dir and --root-dir name the same folder; give one")
    overrides["input_dir"] = args.input_dir or args.root_dir
    return load_config(PipelineConfig, args.config, overrides)


def _print_summary(summary: dict) -> None:
    shard = summary["shard"]
    print(f"shard {shard['index'] + 1}/{shard['count']}: {summary['images']} images on {summary['device']} "
          f"in {summary['seconds']:.1f}s")
    for name, s in summary["stages"].items():
        print(f"  {name:8s} processed {s['processed']:6d}  already done {s['already_done']:6d}  failed {s['failed']:5d}"
              f"  {s['seconds']:7.1f}s  ({s['images_per_second']:.2f} images/s, "
              f"{100 * s['overhead_fraction']:.0f}% outside model calls)")
    if "previews" in summary:
        print(f"  previews: {summary['previews']}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "merge":
        mp = argparse.ArgumentParser(prog="genemi generate merge", description="join shard manifests")
        mp.add_argument("--output-dir", required=True, help="the --output-dir the shards were run with")
        margs = mp.parse_args(argv[1:])
        from genemi.cli import guarded

        code, counts = guarded("genemi generate merge", "rerun it", lambda: merge_shards(margs.output_dir))
        if code:
            return code
        for name, c in counts.items():
            print(f"{name}: {c} records")
        return 0
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from genemi.cli import guarded

    code, summary = guarded("genemi generate", "rerun the same command to resume",
                            lambda: run_pipeline(resolve_config(args), progress=not args.no_progress))
    if code:
        return code
    _print_summary(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
