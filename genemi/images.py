"""Image loading: one place that turns a file into a usable RGB image or raises ``ImageError``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO, Sequence

from PIL import Image, ImageOps

from genemi.errors import ImageError

#: Refuse images with more pixels than this (decompression-bomb guard; 16k x 16k).
MAX_PIXELS = 16384 * 16384
#: file suffixes taken as images when a folder is scanned (compare lower-cased)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


def under_root(root: str | Path, path: str, what: str) -> Path:
    """``root / path`` for an image path read from an annotation file; a relative path that climbs out of
    ``root`` (``../../etc/passwd``) is a DataError naming ``what`` (the file and flag), and is never opened. An
    absolute path is taken as it is (the annotation names the file on purpose)."""
    import os

    from genemi.errors import DataError

    if Path(path).is_absolute():
        return Path(path)
    joined = os.path.normpath(os.path.join(root, path))
    inside = os.path.relpath(joined, os.path.normpath(root))
    if inside == os.curdir or inside == os.pardir or inside.startswith(os.pardir + os.sep):
        raise DataError(f"{what}: image path {path!r} leaves the image folder {root}; refused (fix the annotation, or "
                        "give the image folder its paths are relative to)")
    return Path(joined)


def load_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` as an RGB image with EXIF orientation applied.

    Grayscale, palette, RGBA (composited on white) and CMYK images are converted. Raises ``ImageError``
    naming the file for missing, truncated, undecodable or too large images.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image not found: {path}")
    return decode_rgb(path, str(path), max_pixels)


def decode_rgb(source: str | Path | BinaryIO, name: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``source`` (a file or an open binary stream, e.g. a zip member's bytes) as :func:`load_rgb` does;
    errors name the image as ``name``."""
    # genemi checks the size itself from the header (``max_pixels``, default 16384^2) before decoding; PIL's
    # own, lower bomb limit (89 M pixels) would reject legitimate 10k x 10k photos, so it is off for this call.
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.width * img.height > max_pixels:
                    raise ImageError(f"image too large ({img.width}x{img.height} > {max_pixels} pixels): {name}")
                img.load()
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"cannot read image {name}: {exc}") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def load_images(root: str | Path, paths: Sequence[str]) -> list[Image.Image | ImageError]:
    """Each ``root / path`` as RGB, or the ImageError saying why it cannot be used (batch stages record it)."""
    out: list[Image.Image | ImageError] = []
    for p in paths:
        try:
            out.append(load_rgb(Path(root) / p))
        except ImageError as exc:
            out.append(exc)
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")
