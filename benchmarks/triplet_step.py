"""Training-step cost of ``--loss triplet`` (TripletCLIP) against a ``--loss clip`` step with the same batch size,
in one process, through genemi's own ``TrainStep``.

A triplet step encodes twice the images (each image and its negative image) and twice the captions (each caption
and its negative caption), in one forward per tower, so its ideal cost is about 2x; the target is <= 2.2x.
The two steps are timed in interleaved rounds (drift hits both alike); each step time is the median of its rounds'
medians, and the ratio reported is the median of the rounds' ratios (on a shared machine the load changes from
round to round; a round times both steps back to back).

    python benchmarks/triplet_step.py                          # CPU: the tiny test CLIP, batch 32
    python benchmarks/triplet_step.py --model small --clock cpu  # CPU seconds: a machine shared with other work
    python benchmarks/triplet_step.py --model ViT-B-32 --batch 16 --iters 2 --warmup 1
    python benchmarks/triplet_step.py --model ViT-B-32 --batch 256 --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

from train_step import add_timing_flags, build_model, caption_tokens, interleaved, timing_clock


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny", help="'tiny' (the tests' CLIP), 'small' or an open_clip name [tiny]")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    add_timing_flags(p)
    args = p.parse_args(argv)

    from genemi.distributed import DistEnv
    from genemi.models.clip import ContrastiveForward
    from genemi.training.config import TrainConfig
    from genemi.training.data import Batch
    from genemi.training.loop import TrainStep, build_optimizer
    from genemi.training.losses import LossConfig, build_loss

    clock = timing_clock(args)
    device = torch.device(args.device)
    model, cfg = build_model(args.model, device)
    size, b = cfg["vision_cfg"]["image_size"], args.batch
    g = torch.Generator().manual_seed(0)
    images = torch.randn(b, 3, size, size, generator=g).to(device)
    neg_images = torch.randn(b, 3, size, size, generator=g).to(device)
    tokens = caption_tokens(args.model, cfg, 2 * b, device)
    texts, neg_texts = tokens[:b], tokens[b:].view(b, 1, -1)
    every_row = torch.ones(b, dtype=torch.bool, device=device)
    train_cfg = TrainConfig(precision=args.precision, max_logit_scale=100.0)
    train_cfg.optim.optimizer = "adamw"
    optimizer = build_optimizer(model, train_cfg.optim)
    forward, env = ContrastiveForward(model), DistEnv()
    clip_step = TrainStep(forward, build_loss(LossConfig(name="clip")), optimizer, train_cfg, device, env)
    triplet_step = TrainStep(forward, build_loss(LossConfig(name="triplet")), optimizer, train_cfg, device, env)
    plain = Batch(images, texts, None, None, 0)
    triplet = Batch(images, texts, neg_texts, every_row[:, None], 0, neg_images, every_row)

    results = interleaved({"genemi clip": lambda: clip_step([plain], 1e-5),
                           "genemi triplet": lambda: triplet_step([triplet], 1e-5)},
                          args.rounds, args.warmup, args.iters, device,
                          clock)
    med = {k: statistics.median(v) for k, v in results.items()}
    base = med["genemi clip"]
    print(f"device={device} model={args.model} batch={b} precision={args.precision} threads={torch.get_num_threads()} "
          f"rounds={args.rounds} iters={args.iters} clock={args.clock} load={os.getloadavg()[0]:.1f}")
    for key, value in med.items():
        spread = ", ".join(f"{1000 * v:.1f}" for v in results[key])
        print(f"  {key:<16} {1000 * value:8.1f} ms/step   ratio {value / base:5.2f}x   (rounds: {spread} ms)")
    # Each round times the two back to back, so a round's ratio is the least disturbed by load that comes and goes.
    ratios = [t / c for c, t in zip(results["genemi clip"], results["genemi triplet"])]
    ratio = statistics.median(ratios)
    verdict = "met" if ratio <= 2.2 else "NOT met"
    print(f"triplet / clip = {ratio:.2f}x, the median of the rounds' ratios ({', '.join(f'{r:.2f}' for r in ratios)}); "
          f"ratio of the medians {med['genemi triplet'] / base:.2f}x. Target <= 2.2x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
