"""IVA ("image variation area"): how much of an image its sibling variations change.

Definition (the original ``score_dataset.py``): stack the K sibling variation images of one item, take the
per-pixel, per-channel standard deviation over the stack (``np.std``: population, ddof=0, in uint8 units),
average it over the 3 channels, and count the pixels where that mean exceeds a threshold (10). IVA is 100 x
the fraction of such pixels, in percent.

Two scopes, both recorded: ``iva_image`` counts over the whole variation image, as the original did (it saved
the whole source with its 512-px window pasted back); ``iva_window`` over the item's crop window only. With
the default mask paste every varying pixel lies in the window, so ``iva_window = iva_image / (the window's
share of the image)``. Which one the filters compare is ``--iva-scope`` (:mod:`genemi.score_filters`).

Differences from the original, on purpose: the siblings are grouped by their item (the original assigned
scores positionally after a shuffle, so they landed on the wrong variations, and it assumed groups of 4);
any group size works. A group of one has no spread: its IVA is 0 and a note says why.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genemi.errors import DataError

#: the original's per-pixel threshold: a pixel varies when its channel-mean std across siblings exceeds it (uint8)
IVA_PIXEL_THRESHOLD = 10.0


def varying_pixels(stack: np.ndarray, threshold: float = IVA_PIXEL_THRESHOLD) -> np.ndarray:
    """``[H, W]`` bool: the pixels of a ``[K, H, W, 3]`` stack of K aligned images (uint8 values; K >= 1) whose
    channel mean of the population std over the K images is > ``threshold`` (strictly)."""
    arr = np.asarray(stack)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise DataError(f"IVA needs a [K, H, W, 3] stack of RGB images, got shape {tuple(arr.shape)}")
    if arr.shape[0] < 1 or arr.shape[1] * arr.shape[2] == 0:
        raise DataError(f"IVA needs at least one non-empty image, got shape {tuple(arr.shape)}")
    return arr.astype(np.float64).std(axis=0, ddof=0).mean(axis=-1) > threshold


def image_variation_area(stack: np.ndarray, threshold: float = IVA_PIXEL_THRESHOLD) -> float:
    """IVA in percent of a ``[K, H, W, 3]`` stack of K aligned images: the share of :func:`varying_pixels`."""
    varying = varying_pixels(stack, threshold)
    return 100.0 * float(np.count_nonzero(varying)) / varying.size


def clip_window(crop: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The ``x0, y0, x1, y1`` window clipped to a ``width x height`` image (raises when nothing is left)."""
    if len(crop) != 4:
        raise DataError(f"crop window must be [x0, y0, x1, y1], got {list(crop)}")
    x0, y0, x1, y1 = (int(round(float(v))) for v in crop)
    x0, x1 = max(0, min(x0, width)), max(0, min(x1, width))
    y0, y1 = max(0, min(y0, height)), max(0, min(y1, height))
    if x1 <= x0 or y1 <= y0:
        raise DataError(f"crop window {list(crop)} does not overlap the {width}x{height} variation image")
    return x0, y0, x1, y1


def sibling_iva(images: Sequence, crop: Sequence[float] | None, threshold: float = IVA_PIXEL_THRESHOLD,
                planned: int | None = None) -> tuple[float, float, str | None]:
    """``(iva_image, iva_window, note)`` of one item's painted sibling variations (PIL images or ``[H, W, 3]``
    uint8 arrays, full size): over the whole image (the original's definition) and over the item's ``crop``
    window (``None``: the whole image again).

    All siblings must have the same size (a DataError says which sizes were found). ``planned`` (the item's
    number of variations) lets the note say when only some of them could be compared. The note is None
    when the IVA is a plain comparison of every planned sibling."""
    arrays = [np.asarray(img.convert("RGB") if hasattr(img, "convert") else img) for img in images]
    if not arrays:
        raise DataError("IVA needs at least one painted variation")
    sizes = sorted({(a.shape[1], a.shape[0]) for a in arrays})
    if len(sizes) > 1:
        raise DataError("IVA: the painted variations of this item differ in size "
                        f"({', '.join(f'{w}x{h}' for w, h in sizes)}); siblings must share the source image's size")
    height, width = arrays[0].shape[:2]
    x0, y0, x1, y1 = clip_window(crop, width, height) if crop is not None else (0, 0, width, height)
    varying = varying_pixels(np.stack(arrays), threshold)
    window = varying[y0:y1, x0:x1]
    iva_image = 100.0 * float(np.count_nonzero(varying)) / varying.size
    iva_window = 100.0 * float(np.count_nonzero(window)) / window.size
    k = len(arrays)
    if k == 1:
        return iva_image, iva_window, ("only 1 variation of this item was painted: IVA needs 2 or more to compare "
                                       "(set to 0)")
    if planned is not None and k < planned:
        return iva_image, iva_window, f"computed over {k} of the item's {planned} variations (the others failed)"
    return iva_image, iva_window, None
