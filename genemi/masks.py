"""Binary masks: on disk as uncompressed COCO run-length encoding (column-major runs, the first counts zeros), and
grown by a disk (:func:`dilate`).

Shared by the generation pipeline (``masks.jsonl``, the inpaint stage's grown masks), the shapes world's
ground-truth masks and inpainter training, and the gallery.
"""

from __future__ import annotations

import numpy as np

from genemi.records import RLE


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


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` grown by ``px`` pixels: binary dilation by a disk of radius ``px`` (every pixel whose centre
    lies within Euclidean distance ``px`` of a mask pixel), computed with one distance transform."""
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask, dtype=bool)
    if px <= 0 or not mask.any():
        return mask.copy()
    return distance_transform_edt(~mask) <= px
