"""``genemi generate --executor ray`` against the local executor on the same run (tiny models, the shapes world).

Both executors run the GeNeMi chain (tag -> ground -> segment -> portray -> caption -> inpaint -> score) on the same
``--images`` world images with the same batch sizes, into fresh folders, alternating (local, ray, local, ray, ...)
for ``--rounds`` rounds; prints each round's wall time, the medians and their ratio (throughput of ray / local),
checks the two executors wrote the same manifests, and prints Ray's per-stage busy intervals of the last round:
the share of the Ray run during which several stages were busy at once (stage overlap).

    python benchmarks/ray_executor.py                      # 200 images, 1 round each
    python benchmarks/ray_executor.py --images 400 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

STAGES = ("tag", "ground", "segment", "portray", "caption", "inpaint", "score")


def overlap(busy: dict[str, list[list[float]]], stages=STAGES) -> tuple[float, float, dict[str, float]]:
    """(seconds with >= 2 stages busy, seconds with any busy, busy seconds per stage) from the intervals."""
    events = sorted((t, d, s) for s in stages for a, b in busy.get(s, []) for t, d in ((a, 1), (b, -1)))
    active, last, both, any_ = 0, None, 0.0, 0.0
    for t, delta, _ in events:
        if last is not None:
            any_ += (t - last) * (active >= 1)
            both += (t - last) * (active >= 2)
        active, last = active + delta, t
    return both, any_, {s: sum(b - a for a, b in busy.get(s, [])) for s in stages}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4, help="inpainting steps of the tiny SD model")
    ap.add_argument("--local-threads", type=int, default=1,
                    help="torch threads of the local executor (Ray's actors run 1 each; with 1 here both give the "
                    "same bytes, which the benchmark checks)")
    ap.add_argument("--group-size", type=int, default=None, help="--ray-group-size (default: the executor's)")
    args = ap.parse_args()

    import torch

    from genemi.demo import write_demo_inputs
    from genemi.generation_pipeline import pipeline

    torch.set_num_threads(args.local_threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, models = write_demo_inputs(root)
        from genemi.synthetic import write_world

        data = write_world(root / "big", num_train=args.images, num_test=8, size=64, vga_pairs=1, vga_per_pair=4)

        def argv(out: Path) -> list[str]:
            return ["--annotation-file", str(data.coco_train), "--root-dir", str(data.images), "--output-dir", str(out),
                    "--stages", "variations", "--gd-model", str(models["grounding_dino"]), "--sam-checkpoint",
                    str(models["sam"]), "--sd-checkpoint", str(models["sd_inpainting"]), "--sd-num-steps",
                    str(args.steps), "--blip-model", str(models["blip_itm"]), "--limit", str(args.images),
                    "--device", "cpu", "--no-progress"]

        times: dict[str, list[float]] = {"local": [], "ray": []}
        summaries = {}
        for r in range(args.rounds):
            for name in ("local", "ray"):
                out = root / f"{name}-{r}"
                start = time.perf_counter()
                ray_flags = ["--executor", "ray"] + (["--ray-group-size", str(args.group_size)] if args.group_size else [])
                rc = pipeline.main(argv(out) + (ray_flags if name == "ray" else []))
                times[name].append(time.perf_counter() - start)
                assert rc == 0, name
                summaries[name] = (out, json.loads((out / "run_summary.json").read_text()))
        (local_dir, _), (ray_dir, ray_summary) = summaries["local"], summaries["ray"]
        same = all((local_dir / manifest).read_bytes() == (ray_dir / manifest).read_bytes()
                   for manifest in ("tags.jsonl", "detections.jsonl", "masks.jsonl", "portrayals.jsonl",
                                    "captions.jsonl", "variations.jsonl", "scores.jsonl"))
        both, any_, per_stage = overlap({k: v.get("busy", []) for k, v in ray_summary["stages"].items()})
        shutil.rmtree(root, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.images} images, {args.rounds} round(s), torch threads {args.local_threads} in the local executor "
          f"(1 per Ray actor), Ray group size {args.group_size or 'default'}")
    for name, values in times.items():
        print(f"  {name:5s} " + ", ".join(f"{t:.1f}s" for t in values) + f"  median {med[name]:.1f}s "
              f"({args.images / med[name]:.2f} images/s)")
    print(f"ray / local throughput: {med['local'] / med['ray']:.2f}x; manifests identical: {same}")
    print(f"ray, last round: {any_:.1f}s with a stage busy, {both:.1f}s of it with two or more busy at once "
          f"({100 * both / max(any_, 1e-9):.0f}%); busy seconds per stage: "
          + ", ".join(f"{s} {t:.1f}" for s, t in per_stage.items()))


if __name__ == "__main__":
    main()
