"""``genemi train`` / ``python -m genemi.training.train``: fine-tune CLIP on mined hard negatives.

Every option is declared once in :mod:`genemi.training.config` (flag, YAML key, default, help, checks). The
original GeNeMi flags keep working as aliases (``--epoch --mode --save-path/--save_path --dataset --image-root
--coco-dataset --coco-image_dir --model-checkpoint --clip-model --lr --beta-1 --beta-2 --adam-eps
--weight-decay --sample-by-score``), now typed. Precedence: built-in defaults < ``--config`` preset < flags <
``--set``.

Multi-GPU / multi-node: ``accelerate launch -m genemi.training.train …`` or ``torchrun … -m genemi.training.train …``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Sequence

from genemi.options import add_options, build, command_parser, gather, setup_logging
from genemi.training.config import TrainConfig


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("genemi train", "Fine-tune a CLIP model on generated variations (GeNeMi), text hard "
                       "negatives (CE-CLIP / NegCLIP) or triplets (TripletCLIP). Every flag is also a YAML key of "
                       "--config (configs/train/*.yaml) and of --set, e.g. --set optim.min_lr=1e-7.", progress=True)
    add_options(p, TrainConfig, "run and model")
    return p


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < preset < flags < --set, validated."""
    values = gather(TrainConfig, args)
    if str(values.get("clip_model", "")).startswith("local-dir:") and "pretrained" not in values:
        values["pretrained"] = None  # genemi's own export format carries its weights: the folder's, not OpenAI's tag
    return build(TrainConfig, values, args)


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import guarded, parse_command

    args = parse_command(build_parser(), argv)
    if isinstance(args, int):
        return args

    def run():
        from genemi.training.loop import fit

        setup_logging(args, logging.INFO, "%(asctime)s %(levelname)s %(name)s: %(message)s")
        return fit(resolve_config(args), progress=args.progress)

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
