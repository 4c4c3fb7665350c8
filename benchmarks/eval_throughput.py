"""Evaluation throughput: genemi's batched harness against one-item-at-a-time scoring (the official
scripts' way), same model, same inputs, same process; plus the full SugarCrepe wall time.

    python benchmarks/eval_throughput.py                                  # ViT-B-32, random weights, CPU
    python benchmarks/eval_throughput.py --device cuda --subset 2000
    python benchmarks/eval_throughput.py --sugarcrepe-root sugar-crepe/data --images coco/val2017  # real images

Without ``--images`` a deterministic synthetic image is written for each COCO file name (so only speed,
not accuracy, is meaningful). Annotation files default to ../shared/data/sugarcrepe when present.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sugarcrepe"


def synthetic_images(names, folder: Path) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(sorted(names)):
        g = torch.Generator().manual_seed(k)
        arr = (torch.rand(240, 320, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(folder / name, quality=90)
    return folder


def subset_files(root: Path, n_images: int, out: Path) -> Path:
    """Every item (of every file) whose image is among the first ``n_images`` file names: keeps SugarCrepe's
    real ratio of items to unique images (7,511 / 1,560), which is what sharing image embeddings exploits."""
    files = {f.name: json.loads(f.read_text()) for f in sorted(root.glob("*.json"))}
    names = sorted({v["filename"] for data in files.values() for v in data.values()})[:n_images]
    keep = set(names)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_text(json.dumps({k: v for k, v in data.items() if v["filename"] in keep}))
    return out


@torch.no_grad()
def one_at_a_time(bundle, bench, device) -> dict[str, float]:
    from genemi.images import load_rgb

    transform, model, out = bundle.transform(False), bundle.model, {}
    for subset, items in bench.items.items():
        correct = 0
        for _, filename, pos, neg in items:
            img = transform(load_rgb(bench.images / filename))[None].to(device)
            i = torch.nn.functional.normalize(model.encode_image(img), dim=-1)
            t = torch.nn.functional.normalize(model.encode_text(bundle.tokenizer([pos, neg]).to(device)), dim=-1)
            s = (i @ t.T)[0]
            correct += bool(s[0] > s[1])
        out[subset] = 100 * correct / len(items)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--sugarcrepe-root", default=str(SHARED))
    ap.add_argument("--images", default=None, help="COCO val2017 folder (default: synthetic images)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--subset", type=int, default=150,
                    help="compare on the items of the first N images (all subsets), default 150")
    ap.add_argument("--skip-full", action="store_true", help="only the comparison, not the full 7,511 items")
    args = ap.parse_args()

    from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe
    from genemi.evaluation.runner import evaluate
    from genemi.evaluation.scoring import ClipEmbedder
    from genemi.models.clip import create_clip

    root = Path(args.sugarcrepe_root)
    tmp = Path(tempfile.mkdtemp(prefix="genemi-evalbench-"))
    full = SugarCrepe(root, args.images or tmp)
    images = Path(args.images) if args.images else synthetic_images(
        {f for items in full.items.values() for _, f, _, _ in items}, tmp / "val2017")
    torch.manual_seed(0)
    bundle = create_clip(args.model, None)
    device = torch.device(args.device)
    bundle.model.to(device)
    embedder = ClipEmbedder(bundle, device, args.batch_size, args.workers, progress=False)

    small = SugarCrepe(subset_files(root, args.subset, tmp / "subset"), images)
    n_small = sum(len(v) for v in small.items.values())
    start = time.perf_counter()
    batched = evaluate(embedder, [small])["sugarcrepe"].metrics
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single = one_at_a_time(bundle, small, device)
    t_single = time.perf_counter() - start
    same = all(abs(batched[s] - v) < 1e-9 for s, v in single.items())
    print(f"{args.model} (random weights) on {args.device}, torch threads {torch.get_num_threads()}, "
          f"batch {args.batch_size}, {args.workers} loader workers")
    print(f"  subset: {n_small} SugarCrepe items on {args.subset} images")
    print(f"    one at a time (official way) : {t_single:7.1f} s  ({n_small / t_single:6.1f} items/s)")
    print(f"    genemi batched harness       : {t_batched:7.1f} s  ({n_small / t_batched:6.1f} items/s)")
    print(f"    speed-up                     : {t_single / t_batched:7.2f}x   identical accuracies: {same}")
    if not args.skip_full:
        start = time.perf_counter()
        evaluate(embedder, [SugarCrepe(root, images)])
        t_full = time.perf_counter() - start
        n_full = sum(len(v) for v in full.items.values())
        print(f"  full SugarCrepe ({n_full} items, 1,560 images): {t_full:.1f} s wall ({n_full / t_full:.1f} items/s)")


if __name__ == "__main__":
    main()
