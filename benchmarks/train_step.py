"""Training-step cost of genemi's losses against a plain open_clip ``ClipLoss`` step, in one process.

Prints step times and ratios (genemi clip / open_clip, genemi ceclip with K negatives / open_clip), and the
fraction of step time a real ``genemi train`` run spends waiting for data.

    python benchmarks/train_step.py                      # CPU: a small ViT, batch 32
    python benchmarks/train_step.py --model ViT-B-32 --batch 128 --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

SMALL_VIT = {
    "embed_dim": 256,
    "vision_cfg": {"image_size": 96, "layers": 4, "width": 256, "head_width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 256, "heads": 4, "layers": 4},
}


def build_model(name: str, device: torch.device):
    """'small' (SMALL_VIT), 'tiny' (the test suite's tiny CLIP) or an open_clip name, randomly initialised."""
    from genemi.models.clip import build_clip, resolve_model_spec
    from genemi.models.tiny.clip import TINY_CLIP_CFG

    cfg = {"small": SMALL_VIT, "tiny": TINY_CLIP_CFG}.get(name) or resolve_model_spec(name).model_cfg
    torch.manual_seed(0)
    return build_clip(cfg).to(device).train(), cfg


def caption_tokens(name: str, cfg: dict, count: int, device: torch.device) -> torch.Tensor:
    """``count`` COCO-like sentences of 8-16 words, tokenised (padding included) as the trainer sees them."""
    from genemi.models.clip import build_tokenizer

    words = "a man riding a red bike next to a small dog on the wet street near two parked cars".split()
    return build_tokenizer(name, cfg)([" ".join(words[: 8 + i % 9]) for i in range(count)]).to(device)


def timed(fn, warmup: int, iters: int, device: torch.device, clock=time.perf_counter) -> float:
    """Median seconds of ``fn`` over ``iters`` calls after ``warmup``; ``clock=time.process_time`` counts this
    process's CPU seconds (all its threads) instead of wall time, for a CPU shared with other work."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = clock()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(clock() - t0)
    return statistics.median(times)


def interleaved(variants: dict, rounds: int, warmup: int, iters: int, device: torch.device,
                clock=time.perf_counter) -> dict[str, list[float]]:  # fmt: skip
    """Time each variant (name -> step function) once per round, the variants in turn within a round, so drift
    (thermal, other load) hits them alike; returns each variant's per-round medians."""
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            results[name].append(timed(fn, warmup, iters, device, clock))
    return results


def add_timing_flags(p: argparse.ArgumentParser, rounds: int = 3) -> None:
    """``--rounds``, ``--threads`` and ``--clock``: the timing flags the interleaved benchmarks share."""
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--threads", type=int, help="torch CPU threads [torch's default]")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or this process's CPU time (steadier on a CPU shared with other work) [wall]")


def timing_clock(args: argparse.Namespace):
    """Apply ``--threads``; the clock ``--clock`` names, for :func:`interleaved`."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return time.process_time if args.clock == "cpu" else time.perf_counter


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small", help="'small' (CPU-sized ViT) or an open_clip name [small]")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--negatives", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)

    from open_clip.loss import ClipLoss as OpenClipLoss

    from genemi.distributed import DistEnv
    from genemi.training.config import TrainConfig
    from genemi.training.data import Batch
    from genemi.training.loop import TrainStep, build_optimizer
    from genemi.training.losses import LossConfig, build_loss

    device = torch.device(args.device)
    model, cfg = build_model(args.model, device)
    size = cfg["vision_cfg"]["image_size"]
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, size, size, generator=g).to(device)
    tokens = caption_tokens(args.model, cfg, args.batch * (1 + args.negatives), device)
    texts, negs = tokens[: args.batch], tokens[args.batch :].view(args.batch, args.negatives, -1)
    valid = torch.ones(args.batch, args.negatives, dtype=torch.bool, device=device)
    train_cfg = TrainConfig(precision=args.precision, max_logit_scale=100.0)
    train_cfg.optim.optimizer = "adamw"
    optimizer = build_optimizer(model, train_cfg.optim)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    open_clip_loss = OpenClipLoss()

    def baseline():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            img_f, txt_f, scale = model(images, texts)[:3]
            loss = open_clip_loss(img_f, txt_f, scale)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)

    env = DistEnv()
    from genemi.models.clip import ContrastiveForward

    clip_step = TrainStep(ContrastiveForward(model), build_loss(LossConfig(name="clip")), optimizer, train_cfg, device, env)
    ceclip_step = TrainStep(ContrastiveForward(model), build_loss(LossConfig(name="ceclip")), optimizer, train_cfg, device, env)
    plain = Batch(images, texts, None, None, 0)
    hard = Batch(images, texts, negs, valid, 0)

    results = interleaved({"open_clip ClipLoss": baseline, "genemi clip": lambda: clip_step([plain], 1e-5),
                           f"genemi ceclip (K={args.negatives})": lambda: ceclip_step([hard], 1e-5)},
                          3, args.warmup, args.iters, device)  # fmt: skip
    med = {k: statistics.median(v) for k, v in results.items()}
    base = med["open_clip ClipLoss"]
    print(f"device={device} model={args.model} batch={args.batch} precision={args.precision} "
          f"threads={torch.get_num_threads()}")
    for key, value in med.items():
        print(f"  {key:<28} {1000 * value:8.1f} ms/step   ratio {value / base:5.2f}x")

    print("data loading (real `genemi train` run on the shapes data, tiny model, 2 workers):")
    with tempfile.TemporaryDirectory() as tmp:
        from genemi.models.tiny import save_tiny_clip
        from genemi.synthetic import write_shapes_dataset
        from genemi.training import train
        from genemi.training.loop import fit

        data = write_shapes_dataset(Path(tmp) / "data", num_sources=48)
        tiny = save_tiny_clip(Path(tmp) / "tiny")
        run = train.resolve_config(train.build_parser().parse_args([
            "--clip-model", str(tiny["config"]), "--pretrained", str(tiny["openai_state_dict"]),
            "--dataset", str(data.variations_json), "--image-root", str(data.images),
            "--coco-dataset", str(data.coco_json), "--coco-image_dir", str(data.images),
            "--groups-per-batch", "8", "--epoch", "2", "--workers", "2", "--save-path", str(Path(tmp) / "run"),
            "--device", args.device, "--itm-threshold", "none", "--iva-threshold", "none",
        ]))
        run.save_open_clip = False
        result = fit(run, progress=False)
        print(f"  waiting for data: {100 * result.data_wait_fraction:.1f}% of step time "
              f"({result.steps} steps, tiny model: the worst case for this fraction)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
