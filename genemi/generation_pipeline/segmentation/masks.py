"""Binary masks on disk (uncompressed COCO RLE) and the crop window the inpainting stage works in."""

from __future__ import annotations

import numpy as np

from genemi.records import RLE

MIN_CROP = 512


def rle_encode(mask: np.ndarray) -> RLE:
    """COCO uncompressed RLE: column-major runs, the first run counts zeros (possibly 0)."""
    h, w = mask.shape
    flat = np.asarray(mask, dtype=bool).flatten(order="F")
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return RLE.model_construct(size=[int(h), int(w)], counts=counts)  # already valid: skip re-validation


def rle_decode(rle: RLE) -> np.ndarray:
    h, w = rle.size
    values = np.zeros(len(rle.counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, rle.counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts sum to {flat.size}, expected {h}x{w}")
    return flat.reshape((h, w), order="F")


def crop_window(mask: np.ndarray, min_size: int = MIN_CROP) -> list[int]:
    """A square window of at least ``min_size`` px (or the mask's extent) centred on the mask, shifted to
    stay inside the image and clipped where the image is smaller: ``[x0, y0, x1, y1]``."""
    h, w = mask.shape
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        cx, cy, extent = w / 2, h / 2, 0
    else:
        x0, x1, y0, y1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
        cx, cy, extent = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
    side = max(min_size, int(extent))

    def span(center: float, length: int) -> tuple[int, int]:
        if side >= length:
            return 0, length
        start = int(round(center - side / 2))
        start = min(max(start, 0), length - side)
        return start, start + side

    (a, b), (c, d) = span(cx, w), span(cy, h)
    return [a, c, b, d]
