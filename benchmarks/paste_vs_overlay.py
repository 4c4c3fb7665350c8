"""genemi's window and paste against diffusers' ``padding_mask_crop`` + ``apply_overlay``, on the shapes world
(where every object's true pixel coverage is known).

* **Paste.** A segmenter's mask is binary (here: coverage >= 0.5, as the world's ground-truth masks are), while
  an object's edge pixels are partly the object. ``apply_overlay`` keeps every pixel outside the binary mask as
  the source's, so those edge pixels keep a trace of the old object around the new one; genemi grows the mask
  by ``--mask-dilate`` (8 px) and feathers ``--mask-feather`` (4 px) inside the grown ring. Reported per object:
  the old object's coverage still visible outside the mask after the paste (sum of ``coverage * (1 - alpha)``,
  in pixels) and how many pixels keep more than 5 % of it.
* **Window.** ``padding_mask_crop=P`` crops the mask's bounding box grown by P px, widened to a square; the
  original (and genemi) takes at least 512 px per side around the mask (``find_square``). Reported: how often
  the two windows are equal, and the median share of the original's window that diffusers' would show the model.

    python benchmarks/paste_vs_overlay.py --scenes 100 --size 768
"""

from __future__ import annotations

import argparse
import random
import statistics

import numpy as np
from PIL import Image

from genemi.generation_pipeline.inpainting.geometry import paste_alpha
from genemi.generation_pipeline.segmentation.crop import crop_window
from genemi.synthetic.scenes import random_scene, render


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--size", type=int, default=768, help="image side in pixels")
    p.add_argument("--dilate", type=int, default=8)
    p.add_argument("--feather", type=int, default=4)
    p.add_argument("--padding-mask-crop", type=int, default=32)
    args = p.parse_args(argv)
    from diffusers.image_processor import VaeImageProcessor

    rng = random.Random(0)
    overlay, genemi, overlay_px, genemi_px, equal, shown = [], [], [], [], 0, []
    for _ in range(args.scenes):
        rendered = render(random_scene(rng), size=args.size)
        for mask, cov in zip(rendered.masks, rendered.coverage):
            if not mask.any():
                continue
            outside = ~mask
            overlay.append(float(cov[outside].sum()))
            overlay_px.append(int((cov[outside] > 0.05).sum()))
            left = cov * (1 - paste_alpha(mask, args.dilate, args.feather))
            genemi.append(float(left[outside].sum()))
            genemi_px.append(int((left[outside] > 0.05).sum()))
            x0, y0, x1, y1 = crop_window(mask)
            d = VaeImageProcessor.get_crop_region(Image.fromarray(mask.astype(np.uint8) * 255), 512, 512,
                                                  pad=args.padding_mask_crop)
            equal += [x0, y0, x1, y1] == list(d)
            ix = max(0, min(x1, d[2]) - max(x0, d[0]))
            iy = max(0, min(y1, d[3]) - max(y0, d[1]))
            shown.append(ix * iy / ((x1 - x0) * (y1 - y0)))
    n = len(overlay)
    print(f"{n} objects of {args.scenes} scenes at {args.size} px")
    print(f"old object left outside the mask (coverage-weighted px, median / max): apply_overlay "
          f"{statistics.median(overlay):.1f} / {max(overlay):.1f}; genemi (dilate {args.dilate}, feather "
          f"{args.feather}) {statistics.median(genemi):.1f} / {max(genemi):.1f}")
    print(f"pixels keeping > 5% of the old object (median / max): apply_overlay {statistics.median(overlay_px)} / "
          f"{max(overlay_px)}; genemi {statistics.median(genemi_px)} / {max(genemi_px)}")
    print(f"window: padding_mask_crop={args.padding_mask_crop} equals the original's on {equal} of {n}; median "
          f"share of the original's window it shows: {statistics.median(shown):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
