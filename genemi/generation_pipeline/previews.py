"""Annotated previews (``--save-annotated-image``): boxes, item names and mask overlays on the image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from genemi.records import MaskRecord
from genemi.masks import rle_decode
from genemi.images import load_rgb

_PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]


def safe_name(record_id: str, suffix: str = ".jpg") -> str:
    """A flat file name from an id: no separators, no '..', bounded length (never escapes the folder)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", record_id.replace("/", "__")).strip("._") or "image"
    return name[:180] + suffix


#: previews of smaller images are enlarged to this shorter side, so that item labels have room
MIN_PREVIEW_SIDE = 256


def _fit_label(draw: ImageDraw.ImageDraw, label: str, box: tuple[float, float, float, float],
               size: tuple[int, int]) -> tuple[str, tuple[int, int]]:
    """The label (shortened with "..." only if wider than the image) and where it lies wholly inside the
    image: above the box when there is room, else just inside its top edge."""
    width, height = size

    def extent(text: str) -> tuple[int, int]:  # pixels the text covers when drawn at (0, 0), inclusive
        right, bottom = draw.textbbox((0, 0), text)[2:]
        return right + 1, bottom + 1

    text = label
    while len(text) > 1 and extent(text)[0] > width:
        text = text[:-4].rstrip() + "..." if len(text) > 4 else text[:-1]
    w, h = extent(text)
    x0, y0 = box[0], box[1]
    tx = int(min(max(0, x0 + 2), max(0, width - w)))
    ty = int(y0 - h - 1) if y0 - h - 1 >= 0 else int(y0 + 2)
    ty = min(max(0, ty), max(0, height - h))
    return text, (tx, ty)


def draw_preview(image: Image.Image, record: MaskRecord) -> Image.Image:
    image = image.convert("RGB")
    scale = max(1.0, MIN_PREVIEW_SIDE / max(1, min(image.size)))
    size = (round(image.width * scale), round(image.height * scale))
    if scale > 1:
        image = image.resize(size, Image.Resampling.BICUBIC)
    base = np.asarray(image).astype(np.float32)
    for k, item in enumerate(record.items):
        colour = np.array(_PALETTE[k % len(_PALETTE)], dtype=np.float32)
        mask = rle_decode(item.mask)
        if mask.shape != (size[1], size[0]):
            mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
        base[mask] = 0.55 * base[mask] + 0.45 * colour
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for k, item in enumerate(record.items):
        colour = _PALETTE[k % len(_PALETTE)]
        x0, y0, x1, y1 = (v * scale for v in item.box)
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=max(1, round(min(out.size) / 200)))
        label, (tx, ty) = _fit_label(draw, f"{item.item} {item.box_score:.2f}", (x0, y0, x1, y1), out.size)
        draw.rectangle(draw.textbbox((tx, ty), label), fill=colour)
        draw.text((tx, ty), label, fill=(255, 255, 255))
    return out


def save_previews(records: list[MaskRecord], image_root: Path, folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for rec in records:
        if rec.status != "ok":
            continue
        target = (folder / safe_name(rec.id)).resolve()
        if target.parent != folder.resolve():  # paranoia: ids come from file names
            continue
        draw_preview(load_rgb(image_root / rec.image), rec).save(target, quality=90)
        written += 1
    return written
