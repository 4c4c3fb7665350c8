"""Variation image files: PNG (the default) against JPEG quality 95 (``--variation-format jpg``), on photos.

Each photo is first saved as a JPEG (quality 90: a JPEG source, as COCO's are) and decoded; an elliptic item
region (a quarter of the shorter side across) is then "painted" (its pixels replaced by the photo shifted by a
third of its size, so the painted pixels look like photo content) and blended in through genemi's own paste
(dilated 8 px, feathered 4 px). The variation is written both ways, as the inpaint stage writes it, and
reported: file size, and for JPEG how many pixels outside the painted region differ from the decoded source and
by how much (PNG: none, by construction; checked).

    python benchmarks/variation_format.py --images DIR     # every *.png / *.jpg of DIR (e.g. scikit-image's data)
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from genemi.generation_pipeline.inpainting.geometry import paste, paste_alpha


def encode(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(array)
    img.save(buf, format="PNG") if fmt == "png" else img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def measure(path: Path) -> dict:
    with Image.open(path) as img:
        photo = np.asarray(img.convert("RGB"))
    source = np.asarray(Image.open(io.BytesIO(encode_jpeg_source(photo))).convert("RGB"))
    h, w = source.shape[:2]
    rows, cols = np.indices((h, w))
    r = min(h, w) // 8
    mask = ((rows - h / 2) / r) ** 2 + ((cols - w / 2) / (1.3 * r)) ** 2 <= 1
    alpha = paste_alpha(mask, 8, 4)
    painted = np.roll(source, (h // 3, w // 3), axis=(0, 1))
    variation = paste(source, painted, (0, 0, w, h), alpha)
    outside = alpha == 0
    out = {"image": path.name, "size": f"{w}x{h}", "outside_share": float(outside.mean())}
    for fmt in ("png", "jpg"):
        data = encode(variation, fmt)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
        diff = np.abs(decoded - source.astype(int))[outside]
        out[fmt] = {"bytes": len(data), "changed_outside": float((diff.max(axis=-1) > 0).mean()),
                    "max_diff_outside": int(diff.max())}
    return out


def encode_jpeg_source(photo: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", required=True, type=Path, help="folder of photos (*.png, *.jpg)")
    args = p.parse_args(argv)
    paths = sorted(q for q in args.images.iterdir() if q.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        print(f"no photos in {args.images}", file=sys.stderr)
        return 2
    rows = [measure(q) for q in paths]
    print(f"{'image':28s} {'size':>9s} {'png KiB':>8s} {'jpg KiB':>8s} {'jpg/png':>7s} "
          f"{'jpg: outside changed':>20s} {'max':>4s}")
    for r in rows:
        print(f"{r['image']:28s} {r['size']:>9s} {r['png']['bytes'] / 1024:8.1f} {r['jpg']['bytes'] / 1024:8.1f} "
              f"{r['jpg']['bytes'] / r['png']['bytes']:7.2f} {100 * r['jpg']['changed_outside']:19.1f}% "
              f"{r['jpg']['max_diff_outside']:4d}")
        assert r["png"]["changed_outside"] == 0.0  # lossless: nothing outside the painted region moves
    ratio = statistics.median(r["jpg"]["bytes"] / r["png"]["bytes"] for r in rows)
    print(f"median jpg/png size: {ratio:.2f}; PNG changes no pixel outside the painted region")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
