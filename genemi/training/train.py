"""``genemi train`` / ``python -m genemi.training.train``: fine-tune CLIP on mined hard negatives.

Keeps the original GeNeMi flags (``--epoch --mode --save-path --dataset --image-root --coco-dataset
--coco-image_dir --model-checkpoint --clip-model --lr --beta-1 --beta-2 --adam-eps --weight-decay``), now
typed, and adds genemi's. Precedence: built-in defaults < ``--config`` preset < flags < ``--set``.

Multi-GPU / multi-node: ``accelerate launch -m genemi.training.train …`` or ``torchrun … -m genemi.training.train …``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

from genemi.cli import HelpFormatter
from genemi.presets import load_config, merge_dicts, parse_set_overrides
from genemi.score_filters import DEFAULT_IVA_SCOPE, DEFAULT_MIN_IVA, IVA_SCOPES
from genemi.training.config import TrainConfig
from genemi.training.datasets import DATASET_TYPES
from genemi.training.losses import LOSSES
from genemi.training.mining import MINING_MODES


def _on_off(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got {value!r}")


def _threshold(value: str) -> float | str:
    return "none" if value.lower() == "none" else float(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genemi train",
        description="Fine-tune a CLIP model on generated variations (GeNeMi) or text hard negatives (CE-CLIP).",
        formatter_class=HelpFormatter,
        argument_default=None,
    )
    g = p.add_argument_group("run")
    g.add_argument("--config", help="YAML preset, e.g. configs/train/genemi_paper.yaml (default: built-in defaults)")
    g.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override any config field, e.g. --set optim.min_lr=1e-7 (repeatable)")
    g.add_argument("--epoch", "--epochs", dest="epochs", type=int, help="number of epochs [10]")
    g.add_argument("--output-dir", "--save-path", "--save_path", dest="save_path", type=str,
                   help="output folder for snapshots and metrics [runs/genemi]")
    g.add_argument("--resume", type=str, help="snapshot model_{epoch}.pt to continue from, or 'latest'")
    g.add_argument("--model-checkpoint", dest="resume",
                   help="original GeNeMi flag: same as --resume (continues after the snapshot's epoch)")
    g.add_argument("--seed", type=int, help="seed for data order and sampling [0]")
    g.add_argument("--device", help="cpu, cuda or cuda:N [cuda if available]")
    g.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="autocast precision; weights stay fp32 [auto: bf16 on capable GPUs, else fp32]")
    g.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    g.add_argument("--max-nonfinite-steps", type=int, help="abort after this many non-finite losses in a row [10]")
    g.add_argument("--log-every", type=int, help="write metrics every N steps [10]")
    g.add_argument("--allow-changed-settings", action="store_true", default=None,
                   help="with --resume: continue although settings differ from the run's config.yaml (otherwise refused)")
    g.add_argument("--trust-pickle", action="store_true", default=None,
                   help="allow checkpoints that need full unpickling (unsafe for untrusted files)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    g = p.add_argument_group("model")
    g.add_argument("--clip-model", help="open_clip or OpenAI name, local-dir:<folder>, or config .json [ViT-B/32]")
    g.add_argument("--pretrained", help="open_clip tag (cached locally), checkpoint file, or 'none' [openai]")
    g.add_argument("--quick-gelu", dest="quick_gelu", nargs="?", const="on", choices=("auto", "on", "off"),
                   help="QuickGELU: auto (decided from the weights), on, off; a bare --quick-gelu means on [auto]")
    g.add_argument("--no-quick-gelu", dest="quick_gelu", action="store_const", const="off", help="same as --quick-gelu off")
    g.add_argument("--lock-image", action="store_true", default=None, help="freeze the image tower")
    g.add_argument("--lock-text", action="store_true", default=None, help="freeze the text tower")

    g = p.add_argument_group("data")
    g.add_argument("--dataset-type", choices=list(DATASET_TYPES), metavar="TYPE",
                   help="format of --dataset [variations]: "
                   + "; ".join(f"{name}: {description}" for name, (_, description) in DATASET_TYPES.items()))
    g.add_argument("--dataset", help="variation_annotation.json / variations .jsonl / negatives .jsonl / CSV / shards")
    g.add_argument("--image-root", help="folder the dataset's image paths are relative to")
    g.add_argument("--coco-dataset", help="COCO Karpathy JSON whose pairs are mixed into each group")
    g.add_argument("--coco-image_dir", "--coco-image-dir", dest="coco_image_dir", help="COCO image folder")
    g.add_argument("--source-image-root",
                   help="folder of unedited source images (--include-source; the triplets' image) [--coco-image_dir, "
                   "else --image-root]")
    g.add_argument("--itm-threshold", type=_threshold, help="keep variations with mean ITM > this; 'none' = off [0]")
    g.add_argument("--iva-threshold", type=_threshold,
                   help=f"keep variations with IVA (%%, of --iva-scope) > this; 'none' = off [{DEFAULT_MIN_IVA:g}]")
    g.add_argument("--iva-scope", choices=IVA_SCOPES,
                   help=f"which IVA --iva-threshold compares: image (the original's) or window [{DEFAULT_IVA_SCOPE}]")
    g.add_argument("--include-source", action="store_true", default=None,
                   help="add each group's unedited source image and caption (mining in both directions)")
    g.add_argument("--csv-img-key", help="CSV image column [filepath]")
    g.add_argument("--csv-caption-key", help="CSV caption column [title]")
    g.add_argument("--csv-separator", help="CSV separator [tab]")
    g.add_argument("--csv-neg-caption-key", help="CSV column of a negative caption per row, e.g. neg_caption [none]")
    g.add_argument("--csv-neg-image-key",
                   help="CSV column of that negative caption's picture, e.g. neg_image (for --loss triplet) [none]")
    g.add_argument("--workers", type=int, help="data loader processes [2]")
    g.add_argument("--augment", action="store_true", default=None, help="random resized crops (default: eval transform)")
    g.add_argument("--max-negatives", type=int, help="hard negatives per caption to use [all]")
    g.add_argument("--encoding", help="text encoding of the caption files (e.g. latin-1, cp1252) [utf-8]")
    g.add_argument("--train-num-samples", type=int,
                   help="webdataset: samples per epoch, split evenly over ranks [sizes.json, else counted in the shards]")
    g.add_argument("--dataset-resampled", action="store_true", default=None,
                   help="webdataset: draw shards with replacement per worker (any shard count works)")

    g = p.add_argument_group("batch mining")
    g.add_argument("--mode", choices=list(MINING_MODES), help="batch composition [item_based]")
    g.add_argument("--groups-per-batch", type=int, help="groups per step [mode: 100/20/20]")
    g.add_argument("--variations-per-group", type=int, help="variations per group [mode: 1/2/2]")
    g.add_argument("--coco-per-group", type=int, help="COCO pairs per group [mode: 1/8/8]")
    g.add_argument("--sample-by-score", type=_on_off, nargs="?", const=True, metavar="on|off",
                   help="score-weighted variation sampling; a bare --sample-by-score (the original's switch) means on "
                   "[mode: off/on/on]")
    g.add_argument("--batch-size", type=int, help="pairs per step for flat datasets [256]")

    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=["adam", "adamw"], help="[adam, as the original]")
    g.add_argument("--lr", type=float, help="peak learning rate [1e-6]")
    g.add_argument("--beta-1", type=float, help="Adam beta1 [0.9]")
    g.add_argument("--beta-2", type=float, help="Adam beta2 [0.98]")
    g.add_argument("--adam-eps", type=float, help="Adam epsilon [1e-6]")
    g.add_argument("--weight-decay", type=float, help="[0.1]")
    g.add_argument("--scheduler", choices=["constant", "cosine"], help="lr schedule after warm-up [constant]")
    g.add_argument("--warmup", type=int, help="linear warm-up steps [0]")
    g.add_argument("--grad-clip", type=float, help="clip gradient norm to this value [off]")
    g.add_argument("--accum-freq", type=int, help="micro-batches per optimizer step [1]")

    g = p.add_argument_group("loss")
    g.add_argument("--loss", choices=list(LOSSES), help="objective [clip]")
    g.add_argument("--imc-weight", type=float, help="CE-CLIP IMC weight [0.2]")
    g.add_argument("--cmr-weight", type=float, help="CE-CLIP CMR weight [0.2]")
    g.add_argument("--imc-variant", choices=["fixed", "released_2024", "released_2023"],
                   help="IMC target: fixed (default) or the shipped buggy variants, for reproduction only")
    g.add_argument("--threshold-type", choices=["mean", "max", "fixed"], help="CMR margin schedule [mean]")
    g.add_argument("--upper-bound", type=float, help="CMR adaptive margin cap, logit units [10]")
    g.add_argument("--fixed-threshold", type=float, help="CMR margin for --threshold-type fixed [2]")
    return p


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Nested config overrides from the flags that were given (absent flags are None and skipped)."""
    return {
        "epochs": args.epochs, "save_path": args.save_path, "resume": args.resume, "seed": args.seed,
        "device": args.device, "precision": args.precision, "max_steps": args.max_steps,
        "max_nonfinite_steps": args.max_nonfinite_steps, "log_every": args.log_every,
        "trust_pickle": args.trust_pickle, "allow_changed_settings": args.allow_changed_settings,
        "clip_model": args.clip_model, "quick_gelu": {None: None, "on": True, "off": False}.get(args.quick_gelu),
        "lock_image": args.lock_image, "lock_text": args.lock_text,
        "data": {
            "dataset_type": args.dataset_type, "dataset": args.dataset, "image_root": args.image_root,
            "coco_dataset": args.coco_dataset, "coco_image_dir": args.coco_image_dir,
            "source_image_root": args.source_image_root, "include_source": args.include_source,
            "csv_img_key": args.csv_img_key, "csv_caption_key": args.csv_caption_key,
            "csv_separator": args.csv_separator, "csv_neg_caption_key": args.csv_neg_caption_key,
            "csv_neg_image_key": args.csv_neg_image_key, "workers": args.workers, "augment": args.augment,
            "max_negatives": args.max_negatives, "encoding": args.encoding,
            "train_num_samples": args.train_num_samples, "dataset_resampled": args.dataset_resampled,
            "itm_threshold": None if args.itm_threshold == "none" else args.itm_threshold,  # "none": below
            "iva_threshold": None if args.iva_threshold == "none" else args.iva_threshold,
            "iva_scope": args.iva_scope,
        },
        "mining": {
            "mode": args.mode, "groups_per_batch": args.groups_per_batch,
            "variations_per_group": args.variations_per_group, "coco_per_group": args.coco_per_group,
            "sample_by_score": args.sample_by_score, "batch_size": args.batch_size,
        },
        "optim": {
            "optimizer": args.optimizer, "lr": args.lr, "eps": args.adam_eps, "weight_decay": args.weight_decay,
            "scheduler": args.scheduler, "warmup_steps": args.warmup, "grad_clip": args.grad_clip,
            "accum_freq": args.accum_freq,
        },
        "loss": {
            "name": args.loss, "imc_weight": args.imc_weight, "cmr_weight": args.cmr_weight,
            "imc_variant": args.imc_variant, "threshold_type": args.threshold_type,
            "upper_bound": args.upper_bound, "fixed_threshold": args.fixed_threshold,
        },
    }  # fmt: skip


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < preset < flags < --set, validated."""
    overrides = overrides_from_args(args)
    if args.beta_1 is not None or args.beta_2 is not None:  # one beta given: the other from preset/defaults
        base = load_config(TrainConfig, preset=args.config).optim.betas
        overrides["optim"]["betas"] = (base[0] if args.beta_1 is None else args.beta_1,
                                       base[1] if args.beta_2 is None else args.beta_2)  # fmt: skip
    merged = merge_dicts(overrides, parse_set_overrides(args.set))
    cfg = load_config(TrainConfig, preset=args.config, overrides=merged)
    # Explicit "none" values (the None-skipping merge cannot carry them).
    if args.pretrained is not None:
        cfg.pretrained = None if args.pretrained.lower() == "none" else args.pretrained
    elif str(cfg.clip_model).startswith("local-dir:") and cfg.pretrained == "openai":
        cfg.pretrained = None  # genemi's own export format carries its weights: the folder's, not OpenAI's tag
    if args.itm_threshold == "none":
        cfg.data.itm_threshold = None
    if args.iva_threshold == "none":
        cfg.data.iva_threshold = None
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    from genemi.cli import guarded

    def run():
        from genemi.training.loop import fit

        return fit(resolve_config(args), progress=not args.no_progress)

    code, result = guarded("genemi train", "rerun with --resume latest to continue", run)
    if code:
        return code
    from genemi.distributed import DistEnv

    if DistEnv.from_environ().is_main:
        losses = ", ".join(f"{v:.4f}" for v in result.epoch_losses)
        print(
            f"done: {len(result.epoch_losses)} epoch(s), {result.steps} steps in {result.seconds:.1f}s; "
            f"mean loss per epoch [{losses}]; non-finite steps skipped {result.nonfinite_steps}; "
            f"images skipped {result.skipped_images}; data wait {100 * result.data_wait_fraction:.1f}% of step time"
        )
        for path in result.snapshots:
            print(f"  snapshot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
