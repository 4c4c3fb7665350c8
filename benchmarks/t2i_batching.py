"""Text-to-image (stage ``t2i``) batched against one prompt at a time, with the tiny Stable Diffusion text-to-image
pipeline of the test factory (native 32 px), through genemi's own backend: the same prompts, seeds, steps and
guidance; only ``--t2i-batch-size`` differs (1 = one pipeline call per prompt). Target: batched >= 2x.

The two are timed in interleaved rounds (``train_step.interleaved``: drift hits both alike); each time is the
median of its rounds, and the ratio reported is the median of the rounds' ratios (a round times both back to
back). The images of the two are compared too (each prompt has its own seeded generator, so batching must not
change a picture beyond floating-point noise).

    python benchmarks/t2i_batching.py                          # CPU, 16 prompts, 10 steps, batch 8
    python benchmarks/t2i_batching.py --clock cpu              # CPU seconds: a machine shared with other work
    python benchmarks/t2i_batching.py --device cuda --size 64 --prompts 64 --batch 16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from train_step import add_timing_flags, interleaved, timing_clock

COLOURS = ["red", "blue", "green", "yellow", "purple", "white", "orange", "cyan"]
SHAPES = ["circle", "square", "triangle", "star", "hexagon", "cross", "diamond", "pentagon"]


def prompts(n: int) -> list[str]:
    return [f"a large {COLOURS[k % 8]} {SHAPES[(3 * k) % 8]} left of a small {COLOURS[(k + 3) % 8]} "
            f"{SHAPES[(5 * k + 1) % 8]}" for k in range(n)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--batch", type=int, default=8, help="prompts per pipeline call when batched [8]")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--size", type=int, default=None, help="image side (default: the tiny model's native 32 px)")
    p.add_argument("--device", default="cpu")
    add_timing_flags(p)
    args = p.parse_args(argv)

    from genemi.generation_pipeline.stage import StageContext
    from genemi.generation_pipeline.t2i.config import T2IConfig
    from genemi.generation_pipeline.t2i.diffusers_backend import DiffusersPainter
    from genemi.models.tiny import save_tiny_sd_t2i

    clock = timing_clock(args)
    folder = save_tiny_sd_t2i(Path(tempfile.mkdtemp(prefix="genemi-t2ibench-")))["sd_t2i"]
    painters = {}
    for name, batch in (("one prompt at a time", 1), (f"batched ({args.batch} per call)", args.batch)):
        config = T2IConfig(t2i_model=str(folder), t2i_steps=args.steps, t2i_guidance=args.guidance, t2i_size=args.size,
                           t2i_batch_size=batch)
        painter = DiffusersPainter(config, StageContext(device=args.device))
        painter.check()
        painter.load()
        painters[name] = painter
    texts, seeds = prompts(args.prompts), list(range(args.prompts))
    images = {}

    def paint(name: str):
        return lambda: images.__setitem__(name, painters[name].paint(texts, seeds))

    for painter in painters.values():  # warm-up: first calls allocate and pick kernels
        painter.paint(texts[:2], seeds[:2])
    rounds = interleaved({name: paint(name) for name in painters}, args.rounds, 0, 1, torch.device(args.device),
                         clock)
    alone, batched = painters
    diff = max(int(np.abs(a.image.astype(int) - b.image).max()) for a, b in zip(images[alone], images[batched]))
    size = painters[alone].size
    print(f"t2i: tiny SD text-to-image {size}x{size}, {args.prompts} prompts, {args.steps} steps, guidance "
          f"{args.guidance}, device={args.device} threads={torch.get_num_threads()} rounds={args.rounds} "
          f"clock={args.clock} load={os.getloadavg()[0]:.1f}")
    for name, times in rounds.items():
        med = statistics.median(times)
        spread = ", ".join(f"{t:.2f}" for t in times)
        print(f"  {name:<22} {med:7.2f} s -> {args.prompts / med:6.2f} images/s   (rounds: {spread} s)")
    ratios = [a / b for a, b in zip(rounds[alone], rounds[batched])]
    ratio = statistics.median(ratios)
    print(f"batched / one at a time = {ratio:.2f}x, the median of the rounds' ratios "
          f"({', '.join(f'{r:.2f}' for r in ratios)}); target >= 2x: {'met' if ratio >= 2 else 'NOT met'}; "
          f"largest pixel difference between the two: {diff}/255")
    return 0


if __name__ == "__main__":
    sys.exit(main())
