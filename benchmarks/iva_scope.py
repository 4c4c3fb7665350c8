"""Which IVA scope and threshold keep true edits and drop failed ones: measured on the shapes world, where
whether an edit happened is known.

For every object of random shapes-world scenes, rendered at each ``--sizes`` side, two sibling groups of K
variations are made the way the inpaint stage makes them (each painted picture blended into the source through
genemi's default paste: the object's mask dilated 8 px, feathered 4 px):

* **true edits**: the world's own siblings (the object's colour, shape or size changed, K different ones);
* **failed edits**: the model repainted the old object (the source itself);

and every painted picture gets the generator's own pixel noise (Gaussian, sigma ``--noise``; a failed group is
also tried with ``--failed-noise``, a model that repaints the old object with a different texture). IVA is
computed over the whole image (``iva_image``, the original's definition) and over the item's crop window (the
original's >= 512 px rule; ``iva_window``). For each scope the threshold that best separates the two (balanced
accuracy over every size) is reported, with the accuracy of the original trainer's 14.

    python benchmarks/iva_scope.py                       # sizes 512 and 1024, 40 scenes each
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from genemi.generation_pipeline.inpainting.geometry import paste, paste_alpha
from genemi.generation_pipeline.segmentation.crop import crop_window
from genemi.synthetic.scenes import SplitSpec, random_scene, render
from genemi.synthetic.world import sibling_scenes
from genemi.variation_area import sibling_iva

THRESHOLDS = [round(0.25 * k, 2) for k in range(1, 121)]  # 0.25 .. 30 %


def groups(size: int, scenes: int, k: int, noise: float, failed_noise: float, seed: int):
    """``(label, iva_image, iva_window, mask share of the window)`` per sibling group."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    spec = SplitSpec.default()

    def noisy(img: np.ndarray, sigma: float) -> np.ndarray:
        return np.clip(img + nrng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)

    out = []
    for _ in range(scenes):
        scene = random_scene(rng)
        source = np.asarray(render(scene, size, 2).image)
        whole = (0, 0, size, size)
        for index, mask in enumerate(render(scene, size, 2).masks):
            siblings = sibling_scenes(scene, index, k, spec, rng)
            if not mask.any() or len(siblings) < k:
                continue
            alpha, window = paste_alpha(mask, 8, 4), crop_window(mask)
            share = float(mask[window[1]:window[3], window[0]:window[2]].mean())
            true = [paste(source, noisy(np.asarray(render(s, size, 2).image), noise), whole, alpha)
                    for _, s in siblings]
            cases = [("true", true)] + [(f"failed (noise {sigma:g})",
                                         [paste(source, noisy(source, sigma), whole, alpha) for _ in range(k)])
                                        for sigma in (noise, failed_noise)]
            for label, images in cases:
                iva_image, iva_window, _ = sibling_iva(images, window)
                out.append((label, iva_image, iva_window, share, size))
    return out


def balanced(rows, scope: int, threshold: float) -> tuple[float, float, float]:
    """(kept true edits, dropped failed edits, their mean) at ``IVA > threshold``."""
    true = [r[scope] > threshold for r in rows if r[0] == "true"]
    failed = [r[scope] <= threshold for r in rows if r[0] != "true"]
    kept, dropped = sum(true) / len(true), sum(failed) / len(failed)
    return kept, dropped, (kept + dropped) / 2


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="512,1024", help="image sides (square renders), comma separated")
    p.add_argument("--scenes", type=int, default=40, help="scenes per size")
    p.add_argument("--k", type=int, default=4, help="variations per item")
    p.add_argument("--noise", type=float, default=3.0, help="pixel noise of every painted picture (sigma, uint8)")
    p.add_argument("--failed-noise", type=float, default=12.0, help="a failed group's texture noise (sigma)")
    args = p.parse_args(argv)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += groups(size, args.scenes, args.k, args.noise, args.failed_noise, seed=size)
    for label in dict.fromkeys(r[0] for r in rows):
        for size in dict.fromkeys(r[4] for r in rows):
            sel = [r for r in rows if r[0] == label and r[4] == size]
            print(f"{label:22s} {size:5d} px  n={len(sel):3d}  "
                  f"iva_image median {np.median([r[1] for r in sel]):5.2f} "
                  f"[{min(r[1] for r in sel):5.2f}, {max(r[1] for r in sel):5.2f}]  iva_window median "
                  f"{np.median([r[2] for r in sel]):5.2f} "
                  f"[{min(r[2] for r in sel):5.2f}, {max(r[2] for r in sel):5.2f}]")
    shares = [r[3] for r in rows if r[0] == "true"]
    print(f"mask share of its window: median {100 * np.median(shares):.1f}%, "
          f"min {100 * min(shares):.1f}%, max {100 * max(shares):.1f}%")
    for scope, name in ((1, "image"), (2, "window")):
        best = max(THRESHOLDS, key=lambda t: (balanced(rows, scope, t)[2], -t))
        kept, dropped, acc = balanced(rows, scope, best)
        k14, d14, a14 = balanced(rows, scope, 14.0)
        print(f"scope {name:6s}: best threshold {best:5.2f}: keeps {100 * kept:5.1f}% of true edits, drops "
              f"{100 * dropped:5.1f}% of failed ones (balanced {100 * acc:5.1f}%); at 14: keeps {100 * k14:5.1f}%, "
              f"drops {100 * d14:5.1f}% ({100 * a14:5.1f}%)")
        for size in dict.fromkeys(r[4] for r in rows):
            sel = [r for r in rows if r[4] == size]
            kept, dropped, acc = balanced(sel, scope, best)
            print(f"    at {size} px with {best:g}: keeps {100 * kept:5.1f}%, drops {100 * dropped:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
