"""The learned-inpainter arm (issue 27, item 3): train a small Stable Diffusion inpainting model on the shapes world
(:mod:`genemi.synthetic.inpainter_training`), then measure how often its variations show the requested edit
(:mod:`genemi.synthetic.edit_fidelity`) against the exact ``render`` inpainter and the untrained tiny random model.

Each arm is one ``genemi generate`` run on the held-out (test-split) images of a fresh world, up to the inpaint
stage: ground-truth tag/ground/segment, ``rules`` portrayals (``--num-portrayals``), then

* ``render``:  ``--inpainter render --paste crop`` (the world re-rendered: exact; the measurement's ceiling);
* ``trained``: ``--inpainter diffusers --sd-checkpoint <out>/pipeline`` (the trained folder, loaded unchanged);
* ``untrained``: the same with the tiny random pipeline the training starts from (same seed).

The diffusers arms paste the mask (``--paste mask --mask-feather 0``); all use the training's ``--mask-dilate``.
Writes ``<out>/pipeline/`` (the diffusers folder), ``<out>/training.json`` (losses, timings, settings),
``<out>/fidelity.json`` (per arm: counts, colour and shape hit rates, by portrayal kind) and the three runs under
``<out>/eval/``. Torch runs on one thread (``--threads``): on a shared 2-core machine two threads under load were
20x slower per step than one.

    python benchmarks/learned_inpainter.py                       # train (~10 min on 2 cores) and measure
    python benchmarks/learned_inpainter.py --skip-training       # measure the folder already in --output-dir
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_OUTPUT = "runs/learned_inpainter"


def _generate_argv(world, out: Path, inpainter: list[str], args) -> list[str]:
    return ["--annotation-file", str(world.coco_test), "--root-dir", str(world.images), "--stages", ":inpaint",
            "--tagger", "ground_truth", "--grounder", "ground_truth", "--segmenter", "ground_truth",
            "--num-portrayals", str(args.num_portrayals), "--mask-dilate", str(args.mask_dilate),
            *inpainter, "--output-dir", str(out), "--device", "cpu", "--seed", str(args.seed), "--no-progress"]


def _progress_bar():
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(phase: str, step: int, total: int, loss: float) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, unit="step", file=sys.stderr, leave=True)
        bar.update(step - bar.n)
        if loss == loss:  # not NaN
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if step == total:
            bar.close()

    return update


def main(argv=None) -> int:
    from genemi.synthetic.inpainter_training import PIPELINE_DIR, InpainterTrainingConfig

    defaults = InpainterTrainingConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT, help=f"where everything goes [{DEFAULT_OUTPUT}]")
    p.add_argument("--skip-training", action="store_true", help="measure the pipeline already in --output-dir")
    p.add_argument("--num-scenes", type=int, default=defaults.num_scenes, help="training scenes")
    p.add_argument("--vae-steps", type=int, default=defaults.vae_steps)
    p.add_argument("--unet-steps", type=int, default=defaults.unet_steps)
    p.add_argument("--mask-dilate", type=int, default=defaults.mask_dilate)
    p.add_argument("--seed", type=int, default=defaults.seed, help="training seed and genemi generate's --seed")
    p.add_argument("--eval-images", type=int, default=24, help="held-out world images the arms paint")
    p.add_argument("--eval-seed", type=int, default=1, help="seed of the held-out world")
    p.add_argument("--num-portrayals", type=int, default=8, help="portrayals per item (rules)")
    p.add_argument("--sd-num-steps", type=int, default=20, help="denoising steps of the diffusers arms")
    p.add_argument("--sd-guidance", type=float, default=7.5)
    p.add_argument("--arms", default="render,trained,untrained", help="comma list of render, trained, untrained")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    args = p.parse_args(argv)
    unknown = set(args.arms.split(",")) - {"render", "trained", "untrained"}
    if unknown:
        p.error(f"--arms: unknown {', '.join(sorted(unknown))} (render, trained, untrained)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from genemi.errors import GenemiError
    from genemi.generation_pipeline import pipeline
    from genemi.models.tiny import save_tiny_sd_inpainting
    from genemi.synthetic import write_world
    from genemi.synthetic.edit_fidelity import measure_run
    from genemi.synthetic.inpainter_training import train_inpainter

    torch.set_num_threads(args.threads)
    out = Path(args.output_dir)
    cfg = InpainterTrainingConfig(num_scenes=args.num_scenes, vae_steps=args.vae_steps, unet_steps=args.unet_steps,
                                  mask_dilate=args.mask_dilate, seed=args.seed)
    try:
        if not args.skip_training:
            load = os.getloadavg()
            report = train_inpainter(out, cfg, _progress_bar())
            summary = {**report.to_dict(), "torch_threads": args.threads, "cpu_count": os.cpu_count(),
                       "load_average_before": load, "load_average_after": os.getloadavg()}
            (out / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
            parts = ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items())
            print(f"trained on {report.num_examples} examples in {sum(report.seconds.values()):.0f} s ({parts}); UNet "
                  f"loss {report.unet_losses[0]:.4f} -> {report.unet_losses[-1]:.4f}; folder {report.pipeline_dir}")
        folder = out / PIPELINE_DIR
        if not (folder / "model_index.json").is_file():
            raise GenemiError(f"{folder}: no trained pipeline (run without --skip-training first)")
        world = write_world(out / "eval" / "world", num_train=8, num_test=args.eval_images, size=cfg.image_size,
                            seed=args.eval_seed, vga_pairs=1, vga_per_pair=2)
        untrained = save_tiny_sd_inpainting(out / "eval" / "models", cfg.seed)["sd_inpainting"]
        diffusers = ["--inpainter", "diffusers", "--paste", "mask", "--mask-feather", "0", "--sd-num-steps",
                     str(args.sd_num_steps), "--sd-guidance", str(args.sd_guidance), "--sd-size", str(cfg.image_size)]
        arms = {"render": ["--inpainter", "render", "--paste", "crop"],
                "trained": [*diffusers, "--sd-checkpoint", str(folder)],
                "untrained": [*diffusers, "--sd-checkpoint", str(untrained)]}
        results = {}
        for arm in args.arms.split(","):
            run = out / "eval" / arm
            start = time.perf_counter()
            if pipeline.main(_generate_argv(world, run, arms[arm], args)) != 0:
                print(f"genemi generate failed for the {arm} arm", file=sys.stderr)
                return 1
            fidelity = measure_run(run, world.test_scenes, args.mask_dilate)
            results[arm] = {**fidelity.to_dict(), "seconds": time.perf_counter() - start}
    except GenemiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (out / "fidelity.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n| arm | measured variations | colour = asked | held-out pair: colour = asked | shape = asked | "
          "shape changed as asked |")
    print("|---|---|---|---|---|---|")
    for arm, r in results.items():
        change = r["shape_change_rate"]
        held = r["heldout_colour_rate"]
        print(f"| {arm} | {r['measured']} of {r['variations']} | {r['colour_rate']:.1%} | "
              f"{'n/a' if held is None else f'{held:.1%}'} ({r['heldout']}) | {r['shape_rate']:.1%} | "
              f"{'n/a' if change is None else f'{change:.1%}'} ({r['shape_changes']}) |")
    print(f"\nwrote {out / 'fidelity.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
