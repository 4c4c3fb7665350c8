"""The crop window the inpainting stage works in, around an item's mask (the original's per-axis rule)."""

from __future__ import annotations

import numpy as np

MIN_CROP = 512


def crop_window(mask: np.ndarray, min_size: int = MIN_CROP) -> list[int]:
    """The inpainting window around a mask, ``[x0, y0, x1, y1]``, by the original's per-axis rule: on each axis
    a mask extent under ``min_size`` gets a ``min_size`` window centred on the mask and shifted to stay inside
    the image (clipped where the image is smaller); a larger extent is kept exactly. Windows are therefore at
    least ``min_size`` per side (image permitting) and may be non-square. An empty mask gives the centre."""
    h, w = mask.shape
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if cols.size == 0:
        cols, rows = np.array([w // 2]), np.array([h // 2])

    def span(first: int, last: int, length: int) -> tuple[int, int]:
        lo, hi = int(first), int(last) + 1
        if hi - lo >= min_size:
            return lo, hi
        if min_size >= length:
            return 0, length
        start = int(round((lo + hi) / 2 - min_size / 2))
        start = min(max(start, 0), length - min_size)
        return start, start + min_size

    (x0, x1), (y0, y1) = span(cols[0], cols[-1], w), span(rows[0], rows[-1], h)
    return [x0, y0, x1, y1]
