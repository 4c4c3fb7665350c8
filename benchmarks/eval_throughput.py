"""Evaluation throughput: ``genemi eval``'s harness with its defaults against SugarCrepe's official script
(``main_eval.py`` at RAIVNLab/sugar-crepe ``0047054b``) with its defaults, same model, same items, same process,
interleaved rounds, medians.

    python benchmarks/eval_throughput.py --model tiny                 # genemi's tiny CLIP (tests' model), CPU
    python benchmarks/eval_throughput.py --model ViT-B-32             # random weights, CPU
    python benchmarks/eval_throughput.py --model tiny --sweep 1:0,2:0,1:1,2:2   # genemi under threads:workers
    python benchmarks/eval_throughput.py --device cuda --subset 0     # every item, on a GPU

The baseline does what ``main_eval.py`` does per item, with its defaults (torch's default thread count, no
loader): open the image, encode the caption, encode the negative caption, encode the transformed image (three
forward passes of batch 1, texts padded to the context length), compare ``pos > neg``. The candidate is
``evaluate()`` with a :class:`ClipEmbedder` built with no options, as ``genemi eval`` builds it without flags.
Each round runs both (the order alternates); the report gives each side's median over the rounds, the ratio
of medians and the median of the per-round ratios, and checks that both reach the same accuracies.

Items: every item whose image is among the first ``--subset`` file names (all subsets), which keeps SugarCrepe's
ratio of items to images (7,511 / 1,560). Without ``--images`` a deterministic synthetic JPEG of ``--image-size``
(default 640x480, COCO's usual size) is written per file name, so speed but not accuracy is meaningful.
Annotation files default to ../shared/data/sugarcrepe when present.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sugarcrepe"


def synthetic_images(names, folder: Path, size: tuple[int, int]) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(sorted(names)):
        rng = np.random.default_rng(k)
        small = rng.integers(0, 256, (size[1] // 20, size[0] // 20, 3), dtype=np.uint8)  # smooth, JPEG-like
        Image.fromarray(small).resize(size, Image.BICUBIC).save(folder / name, quality=90)
    return folder


def subset_files(root: Path, n_images: int, out: Path) -> Path:
    """Every item (of every file) whose image is among the first ``n_images`` file names (0: all)."""
    files = {f.name: json.loads(f.read_text()) for f in sorted(root.glob("*.json"))}
    names = sorted({v["filename"] for data in files.values() for v in data.values()})
    keep = set(names[:n_images] if n_images else names)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_text(json.dumps({k: v for k, v in data.items() if v["filename"] in keep}))
    return out


@torch.no_grad()
def official_script(bundle, bench, device) -> dict[str, float]:
    """main_eval.py's loop: per item, Image.open, then encode_text(caption), encode_text(negative),
    encode_image(transform(image)), each normalised, and ``pos > neg``; accuracy per subset in percent."""
    from PIL import Image

    transform, model, out = bundle.transform(False), bundle.model, {}
    for subset, items in bench.items.items():
        correct = 0
        for _, filename, pos, neg in items:
            image = Image.open(bench.images / filename)
            p = torch.nn.functional.normalize(model.encode_text(bundle.tokenizer(pos).to(device)), dim=-1)
            n = torch.nn.functional.normalize(model.encode_text(bundle.tokenizer(neg).to(device)), dim=-1)
            i = torch.nn.functional.normalize(model.encode_image(transform(image).unsqueeze(0).to(device)), dim=-1)
            correct += (p @ i.T).item() > (n @ i.T).item()
        out[subset] = 100 * correct / len(items) if items else float("nan")
    return out


def genemi(bundle, bench, device, threads=None, workers=None) -> dict[str, float]:
    """evaluate() with a ClipEmbedder of genemi's defaults (or the given threads / workers); the accuracies and,
    under ``"threads"``, the torch threads it used for the texts."""
    from genemi.evaluation.runner import evaluate
    from genemi.evaluation.scoring import ClipEmbedder

    embedder = ClipEmbedder(bundle, device, progress=False, threads=threads, workers=workers)
    metrics = evaluate(embedder, [bench])["sugarcrepe"].metrics
    return {**{s: metrics[s] for s in bench.items}, "threads": embedder.threads_used}


def timed(fn, *args, **kwargs) -> tuple[float, dict]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def build_model(name: str, tmp: Path):
    from genemi.models.clip import create_clip

    torch.manual_seed(0)
    if name == "tiny":
        from genemi.models.tiny.clip import tiny_clip_config

        config = tmp / "tiny-clip.json"
        config.write_text(json.dumps({"model_cfg": tiny_clip_config()}))
        return create_clip(str(config), None)
    return create_clip(name, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32", help="open_clip name, or 'tiny' (genemi's test CLIP)")
    ap.add_argument("--sugarcrepe-root", default=str(SHARED))
    ap.add_argument("--images", default=None, help="COCO val2017 folder (default: synthetic images)")
    ap.add_argument("--image-size", default="640x480", help="synthetic image size WxH")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--subset", type=int, default=150, help="items of the first N images (0: every item)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians are reported)")
    ap.add_argument("--baseline-threads", type=int, default=None, metavar="N",
                    help="run the official script with N torch threads instead of torch's default (for context: "
                    "its default on a shared box is what users get)")
    ap.add_argument("--sweep", default=None, metavar="T:W,...",
                    help="instead of the comparison: genemi alone under these torch threads:loader workers")
    args = ap.parse_args()

    from genemi.evaluation.benchmarks.sugarcrepe import SugarCrepe
    from genemi.evaluation.scoring import default_threads, default_workers

    tmp = Path(tempfile.mkdtemp(prefix="genemi-evalbench-"))
    root = subset_files(Path(args.sugarcrepe_root), args.subset, tmp / "annotations")
    names = {f for data in (json.loads(f.read_text()) for f in root.glob("*.json")) for f in
             (v["filename"] for v in data.values())}
    w, h = (int(v) for v in args.image_size.split("x"))
    images = Path(args.images) if args.images else synthetic_images(names, tmp / "val2017", (w, h))
    bench = SugarCrepe(root, images)
    n_items = sum(len(v) for v in bench.items.values())
    device = torch.device(args.device)
    bundle = build_model(args.model, tmp)
    bundle.model.to(device).eval()
    start_threads = torch.get_num_threads()
    print(f"{args.model} (random weights) on {device}, {n_items} SugarCrepe items over {len(names)} images "
          f"({'synthetic ' + args.image_size if not args.images else args.images}); torch {torch.__version__}, "
          f"default threads {start_threads}")

    if args.sweep:
        configs = [tuple(int(x) for x in c.split(":")) for c in args.sweep.split(",")]
        times = {c: [] for c in configs}
        genemi(bundle, bench, device, *configs[0])  # warm-up (page cache, first loader)
        for r in range(args.rounds):
            for c in (configs if r % 2 == 0 else configs[::-1]):
                times[c].append(timed(genemi, bundle, bench, device, *c)[0])
                torch.set_num_threads(start_threads)
        for (t, wk), ts in times.items():
            med = statistics.median(ts)
            print(f"  genemi, {t} thread(s), {wk} loader worker(s): median {med:6.2f} s  ({n_items / med:7.1f} items/s)"
                  f"  rounds {', '.join(f'{x:.2f}' for x in ts)}")
        return

    print(f"  genemi defaults on {device.type}: {default_workers(device)} loader worker(s), batch 256, torch threads "
          f"by device (CPU: the idle cores when embedding starts; now {default_threads(device) or start_threads})")
    warm = SugarCrepe(subset_files(root, 3, tmp / "warm"), images)
    official_script(bundle, warm, device), genemi(bundle, warm, device)  # warm-up (kernels, first loader)
    torch.set_num_threads(start_threads)
    base_threads = args.baseline_threads or start_threads
    print(f"  official script: {base_threads} thread(s)" + ("" if args.baseline_threads else " (torch's default)"))
    base_t, cand_t = [], []
    for r in range(args.rounds):
        order = ("base", "cand") if r % 2 == 0 else ("cand", "base")
        for side in order:
            torch.set_num_threads(base_threads)  # the official script runs with torch's default
            if side == "base":
                t, base_acc = timed(official_script, bundle, bench, device)
                base_t.append(t)
            else:
                t, cand_acc = timed(genemi, bundle, bench, device)
                cand_t.append(t)
        print(f"  round {r + 1}: official {base_t[-1]:7.2f} s, genemi {cand_t[-1]:6.2f} s "
              f"({cand_acc['threads']} thread(s)), ratio {base_t[-1] / cand_t[-1]:5.2f}x", flush=True)
    same = all(abs(base_acc[s] - cand_acc[s]) < 1e-9 for s in base_acc)
    mb, mc = statistics.median(base_t), statistics.median(cand_t)
    ratios = [b / c for b, c in zip(base_t, cand_t)]
    print(f"  official script (main_eval.py's way)          : median {mb:7.2f} s  ({n_items / mb:7.1f} items/s)")
    print(f"  genemi harness (defaults)                     : median {mc:7.2f} s  ({n_items / mc:7.1f} items/s)")
    print(f"  speed-up: {mb / mc:.2f}x (ratio of medians), {statistics.median(ratios):.2f}x (median of per-round "
          f"ratios, range {min(ratios):.2f}-{max(ratios):.2f}) over {args.rounds} rounds; identical accuracies: {same}")


if __name__ == "__main__":
    main()
