"""Geometry of the ``inpaint`` stage (numpy / PIL only): a crop window and its mask in and out of the model's
square input without distorting them, the grown and feathered paste mask, and the paste itself.

The original squashed every crop to 512 x 512 (aspect distortion) and pasted the whole crop window back; by
default the crop is resized keeping its aspect ratio and padded (the padding is never painted), and only the
dilated, feathered mask region replaces source pixels: every pixel outside it is left exactly as it was
(``squash`` and ``crop`` give the original's way).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from genemi.masks import dilate


@dataclass(frozen=True)
class Placement:
    """Where the resized crop sits in the model's ``size x size`` input."""

    left: int
    top: int
    width: int
    height: int
    size: int


def fit_to_square(crop_rgb: np.ndarray, crop_mask: np.ndarray, size: int,
                  fit: str = "letterbox") -> tuple[np.ndarray, np.ndarray, Placement]:
    """``(model_rgb [size, size, 3] uint8, model_mask [size, size] bool, placement)``. ``letterbox``: the crop
    resized so its longer side is ``size`` (aspect ratio kept), centred; the image is padded by repeating its
    edge pixels, the mask with False (padding is never painted). ``squash``: resized to ``size x size`` whatever
    its aspect ratio (the original's)."""
    h, w = crop_mask.shape
    if crop_rgb.shape[:2] != (h, w):
        raise ValueError(f"crop image {crop_rgb.shape[:2]} and mask {(h, w)} differ in size")
    if h < 1 or w < 1:
        raise ValueError(f"empty crop ({w}x{h})")
    if fit == "squash":
        nw = nh = size
    elif fit == "letterbox":
        scale = size / max(h, w)
        nw, nh = min(size, max(1, round(w * scale))), min(size, max(1, round(h * scale)))
    else:
        raise ValueError(f"unknown crop fit {fit!r}")
    left, top = (size - nw) // 2, (size - nh) // 2
    rgb = np.asarray(Image.fromarray(np.ascontiguousarray(crop_rgb, dtype=np.uint8)).resize((nw, nh), Image.BICUBIC))
    mask = np.asarray(Image.fromarray(crop_mask.astype(np.uint8) * 255).resize((nw, nh), Image.BILINEAR)) >= 128
    pad = ((top, size - nh - top), (left, size - nw - left))
    model_rgb = np.pad(rgb, pad + ((0, 0),), mode="edge")
    model_mask = np.pad(mask, pad, mode="constant", constant_values=False)
    return model_rgb, model_mask, Placement(left, top, nw, nh, size)


def unfit(model_rgb: np.ndarray, placement: Placement, crop_shape: tuple[int, ...]) -> np.ndarray:
    """The model's output back at crop size: padding removed, resized to ``crop_shape[:2]`` (height, width)."""
    p = placement
    content = np.ascontiguousarray(model_rgb[p.top : p.top + p.height, p.left : p.left + p.width], dtype=np.uint8)
    h, w = crop_shape[:2]
    if (h, w) == content.shape[:2]:
        return content.copy()
    return np.asarray(Image.fromarray(content).resize((w, h), Image.BICUBIC))


def paste_alpha(mask: np.ndarray, dilate_px: int, feather_px: int) -> np.ndarray:
    """Paste weights (float32, same shape as ``mask``): exactly 0 outside the mask dilated by ``dilate_px``,
    1 on the mask itself, and inside the dilated region rising from its edge over ``feather_px`` pixels
    (distance to the nearest outside pixel / ``feather_px``). With ``feather_px <= dilate_px`` the ramp lies
    entirely in the grown ring; with a wider feather the ramp is cut off at the mask (the old item never shows
    through)."""
    from scipy.ndimage import distance_transform_edt

    mask = np.asarray(mask, dtype=bool)
    grown = dilate(mask, dilate_px)
    if feather_px <= 0:
        alpha = grown.astype(np.float32)
    else:
        alpha = np.clip(distance_transform_edt(grown) / feather_px, 0.0, 1.0).astype(np.float32)
        alpha[~grown] = 0.0
    alpha[mask] = 1.0
    return alpha


def paste(source: np.ndarray, painted_crop: np.ndarray, crop_box: tuple[int, int, int, int] | list[int],
          alpha: np.ndarray) -> np.ndarray:
    """A copy of ``source`` (full resolution, uint8) with ``painted_crop`` blended into the window ``crop_box``
    (x0, y0, x1, y1) by ``alpha`` (crop size): ``source * (1 - a) + painted * a``, rounded. Pixels where
    ``a == 0`` (and everything outside the window) are exactly the source's."""
    x0, y0, x1, y1 = (int(v) for v in crop_box)
    out = np.array(source, dtype=np.uint8, copy=True)
    region = out[y0:y1, x0:x1]
    if painted_crop.shape[:2] != region.shape[:2] or alpha.shape != region.shape[:2]:
        raise ValueError(f"painted crop {painted_crop.shape[:2]} / alpha {alpha.shape} do not fit the window "
                         f"{region.shape[:2]}")
    a = alpha[..., None].astype(np.float32)
    blended = np.rint(region.astype(np.float32) * (1.0 - a) + painted_crop.astype(np.float32) * a)
    out[y0:y1, x0:x1] = np.where(a > 0, np.clip(blended, 0, 255).astype(np.uint8), region)
    return out


def crop_alpha(mask: np.ndarray, mode: str, dilate_px: int, feather_px: int) -> np.ndarray:
    """The paste weights of one crop for ``--paste mask`` (dilated, feathered mask) or ``--paste crop`` (the
    whole window, the original's behaviour)."""
    if mode == "crop":
        return np.ones(mask.shape, dtype=np.float32)
    if mode != "mask":
        raise ValueError(f"unknown paste mode {mode!r}")
    return paste_alpha(mask, dilate_px, feather_px)
