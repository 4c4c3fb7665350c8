"""Annotated previews (``--save-annotated-image``): boxes, item names and mask overlays on the image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from genemi.records import MaskRecord
from genemi.generation_pipeline.segmentation.masks import rle_decode
from genemi.images import load_rgb

_PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128)]


def safe_name(record_id: str, suffix: str = ".jpg") -> str:
    """A flat file name from an id: no separators, no '..', bounded length (never escapes the folder)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", record_id.replace("/", "__")).strip("._") or "image"
    return name[:180] + suffix


def draw_preview(image: Image.Image, record: MaskRecord) -> Image.Image:
    base = np.asarray(image.convert("RGB")).astype(np.float32)
    for k, item in enumerate(record.items):
        colour = np.array(_PALETTE[k % len(_PALETTE)], dtype=np.float32)
        mask = rle_decode(item.mask)
        base[mask] = 0.55 * base[mask] + 0.45 * colour
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for k, item in enumerate(record.items):
        colour = _PALETTE[k % len(_PALETTE)]
        x0, y0, x1, y1 = item.box
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=max(1, round(min(out.size) / 200)))
        label = f"{item.item} {item.box_score:.2f}"
        tx, ty = x0 + 2, max(0, y0 - 12)
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
