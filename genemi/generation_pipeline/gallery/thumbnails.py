"""The gallery's thumbnails: the source image of an item with its mask outline, box and crop window, and the
crop window of each variation, as JPEGs under ``thumbs/``.

A thumbnail is encoded once: ``thumbs.json`` in the gallery folder records, per thumbnail, a key of what it was
made from (the image file's path, size and modification time, the thumbnail size, the item's crop window, box and
mask) and the thumbnail file's own size and modification time. A rerun reuses a thumbnail whose key and file are
unchanged without decoding its image; any other is drawn again. Thumbnails of an earlier run that this one does
not show are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import PIL
from PIL import Image, ImageDraw

from genemi.errors import ConfigError, ImageError
from genemi.generation_pipeline.gallery.loading import Row
from genemi.generation_pipeline.inpainting.geometry import dilate
from genemi.generation_pipeline.previews import safe_name
from genemi.images import load_rgb
from genemi.manifest import write_atomic
from genemi.masks import rle_decode
from genemi.records import ItemMask, PlannedItem

#: the record of the thumbnails written, in the gallery folder
CACHE_NAME = "thumbs.json"
#: bump when the drawing or the encoding of thumbnails changes: every thumbnail is then drawn again
THUMB_FORMAT = 1
JPEG_QUALITY = 88

_MASK_COLOUR = (0, 235, 255)
_BOX_COLOUR = (255, 0, 200)
_THUMB_RE = re.compile(r".+-[0-9a-f]{10}(\.src)?\.jpg")


class Thumb(NamedTuple):
    """A thumbnail written: its file name under ``thumbs/`` and its size."""

    name: str
    width: int
    height: int


@dataclass
class ItemThumbs:
    """The thumbnails of one item, or why one is missing (shown as placeholder text)."""

    source: Thumb | None
    source_problem: str | None
    #: painted variation id -> its thumbnail, or why there is none
    variations: dict[str, Thumb | str] = field(default_factory=dict)


def thumb_name(record_id: str, suffix: str = ".jpg") -> str:
    """A flat, unique file name for an id (sanitised by ``previews.safe_name`` plus a hash of the id)."""
    digest = hashlib.sha1(record_id.encode("utf-8")).hexdigest()[:10]
    return safe_name(record_id, "")[:150] + f"-{digest}{suffix}"


def fit(img: Image.Image, size: int) -> Image.Image:
    """``img`` scaled so that its longer side is ``size``."""
    scale = size / max(img.size)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def _dashed_rect(draw: ImageDraw.ImageDraw, box: Sequence[float], dash: int = 5) -> None:
    x0, y0, x1, y1 = (round(v) for v in box)
    for a, b, fixed, horizontal in ((x0, x1, y0, True), (x0, x1, y1, True), (y0, y1, x0, False), (y0, y1, x1, False)):
        for k, s in enumerate(range(a, b, dash)):
            e = min(s + dash - 1, b)
            xy = [(s, fixed), (e, fixed)] if horizontal else [(fixed, s), (fixed, e)]
            draw.line(xy, fill=(255, 255, 255) if k % 2 == 0 else (0, 0, 0), width=1)


def source_thumbnail(image: Image.Image, item: PlannedItem, mask: ItemMask | None, size: int) -> Image.Image:
    """The whole source image fitted to ``size`` with the item's mask outline, box and crop window."""
    thumb = fit(image, size)
    sx, sy = thumb.width / image.width, thumb.height / image.height
    if mask is not None:
        try:
            m = rle_decode(mask.mask)
        except ValueError:
            m = None
        if m is not None and m.any():
            scaled = Image.fromarray(m.astype(np.uint8) * 255).resize(thumb.size, Image.Resampling.BILINEAR)
            small = np.asarray(scaled) >= 128
            inner = small & dilate(~small, 2)  # a 2 px band inside the mask edge
            halo = dilate(small, 1) & ~small
            px = np.asarray(thumb).copy()
            px[halo] = (0, 0, 0)
            px[inner] = _MASK_COLOUR
            thumb = Image.fromarray(px)
    draw = ImageDraw.Draw(thumb)
    x0, y0, x1, y1 = item.crop
    if (x0, y0, x1, y1) != (0, 0, image.width, image.height):
        _dashed_rect(draw, [x0 * sx, y0 * sy, x1 * sx - 1, y1 * sy - 1])
    # the box is framed just outside its edges, so a mask that fills its box keeps a visible outline
    bx0, by0, bx1, by1 = (round(v * f) for v, f in zip(item.box, (sx, sy, sx, sy)))
    draw.rectangle([bx0 - 3, by0 - 3, max(bx0, bx1) + 2, max(by0, by1) + 2], outline=_BOX_COLOUR, width=2)
    return thumb


def variation_thumbnail(image: Image.Image, item: PlannedItem, source_size: tuple[int, int] | None,
                        size: int) -> Image.Image:
    """The crop window of a variation image fitted to ``size`` (scaled if the image is not at source size)."""
    w, h = source_size or image.size
    sx, sy = image.width / max(1, w), image.height / max(1, h)
    x0, y0, x1, y1 = item.crop
    box = (max(0, round(x0 * sx)), max(0, round(y0 * sy)),
           min(image.width, round(x1 * sx)), min(image.height, round(y1 * sy)))
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        box = (0, 0, image.width, image.height)
    return fit(image.crop(box), size)


def _file_key(path: Path, *settings: object) -> str | None:
    """What a thumbnail of ``path`` is made from, as a short hash; None when the file cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return settings_key(str(path), st.st_size, st.st_mtime_ns, *settings)


def settings_key(*settings: object) -> str:
    """A short hash of ``settings`` (JSON values), the thumbnail format and the Pillow version."""
    text = json.dumps([THUMB_FORMAT, PIL.__version__, *settings], separators=(",", ":"))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _mask_digest(mask: ItemMask | None) -> str | None:
    if mask is None:
        return None
    return hashlib.sha1(json.dumps([mask.mask.size, mask.mask.counts]).encode("ascii")).hexdigest()[:16]


class ThumbCache:
    """``thumbs.json``: per thumbnail ``[key, width, height, file bytes, file mtime_ns, *extra]``, and per other
    file derived from the thumbnails (the contact sheet) ``[key, file bytes, file mtime_ns]``."""

    def __init__(self, path: Path, folder: Path):
        self.path, self.folder = path, folder
        self.entries: dict[str, list] = {}
        self.files: dict[str, list] = {}
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and loaded.get("format") == THUMB_FORMAT:
                self.entries = {k: v for k, v in loaded["thumbs"].items() if isinstance(v, list) and len(v) >= 5}
                self.files = {k: v for k, v in loaded["files"].items() if isinstance(v, list) and len(v) == 3}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # no record (first run) or an unreadable one: every thumbnail is drawn
        self.kept: dict[str, list] = {}
        self.kept_files: dict[str, list] = {}

    @staticmethod
    def _unchanged(path: Path, recorded: list) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return [st.st_size, st.st_mtime_ns] == recorded

    def lookup(self, name: str, key: str | None) -> list | None:
        """The entry of thumbnail ``name`` if it was made from ``key`` and its file is as it was written."""
        entry = self.entries.get(name)
        if key is None or entry is None or entry[0] != key or not self._unchanged(self.folder / name, entry[3:5]):
            return None
        self.kept[name] = entry
        return entry

    def store(self, name: str, key: str | None, thumb: Thumb, *extra: int) -> None:
        if key is not None:
            st = os.stat(self.folder / name)
            self.kept[name] = [key, thumb.width, thumb.height, st.st_size, st.st_mtime_ns, *extra]

    def key_of(self, name: str) -> str | None:
        """The key of a thumbnail used by this run (None: not recorded)."""
        entry = self.kept.get(name)
        return entry[0] if entry else None

    def reuse_file(self, path: Path, key: str | None) -> bool:
        """Whether ``path`` (in the gallery folder) was made from ``key`` and is as it was written."""
        entry = self.files.get(path.name)
        if key is None or entry is None or entry[0] != key or not self._unchanged(path, entry[1:]):
            return False
        self.kept_files[path.name] = entry
        return True

    def store_file(self, path: Path, key: str | None) -> None:
        if key is not None:
            st = os.stat(path)
            self.kept_files[path.name] = [key, st.st_size, st.st_mtime_ns]

    def save(self) -> None:
        """Write the entries of the files used by this run (the other thumbnails are removed)."""
        data = {"format": THUMB_FORMAT, "files": dict(sorted(self.kept_files.items())),
                "thumbs": dict(sorted(self.kept.items()))}
        write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode("utf-8"))


class Thumbnailer:
    """Makes (or reuses) the thumbnails of each row; collects the names used and the images that could not be
    read."""

    def __init__(self, output_dir: Path, input_dir: Path, gallery_dir: Path, masks: dict[str, ItemMask], size: int):
        self.out, self.inp, self.size, self.masks = output_dir, input_dir, size, masks
        self.folder = gallery_dir / "thumbs"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the gallery folder {self.folder}: {exc.strerror or exc}") from exc
        self.cache = ThumbCache(gallery_dir / CACHE_NAME, self.folder)
        self.written: set[str] = set()
        self.reused = 0
        #: "<id>: <reason>" for each source or variation image that could not be read
        self.unreadable: list[str] = []
        self._source: tuple[str, Image.Image | ImageError] | None = None

    def item(self, row: Row) -> ItemThumbs:
        rec, item = row.image, row.item
        mask = self.masks.get(item.id)
        name = thumb_name(item.id, ".src.jpg")
        key = _file_key(self.inp / rec.image, self.size, item.crop, item.box, _mask_digest(mask))
        entry = self.cache.lookup(name, key)
        problem = None
        if entry is not None and len(entry) == 7:
            src_thumb: Thumb | None = self._use(name, entry)
            src_size: tuple[int, int] | None = (entry[5], entry[6])
        else:
            src = self._decode_source(rec.id, self.inp / rec.image)
            if isinstance(src, Image.Image):
                src_thumb = self._save(source_thumbnail(src, item, mask, self.size), name, key, *src.size)
                src_size = src.size
            else:
                src_thumb, problem = None, f"source image unreadable: {src}"
                src_size = (rec.width, rec.height) if rec.width and rec.height else None
        thumbs = ItemThumbs(src_thumb, problem)
        for v in item.variations:
            if v.status == "ok":
                thumbs.variations[v.id] = self._variation(v.id, v.image, item, src_size)
        return thumbs

    def _variation(self, vid: str, image: str | None, item: PlannedItem,
                   src_size: tuple[int, int] | None) -> Thumb | str:
        if image is None:
            return "no image recorded"
        name, path = thumb_name(vid, ".jpg"), self.out / image
        key = _file_key(path, self.size, item.crop, src_size)
        entry = self.cache.lookup(name, key)
        if entry is not None:
            return self._use(name, entry)
        try:
            img = load_rgb(path)
        except ImageError as exc:
            self.unreadable.append(f"{vid}: {exc}")
            return f"variation image unreadable: {exc}"
        return self._save(variation_thumbnail(img, item, src_size, self.size), name, key)

    def _decode_source(self, image_id: str, path: Path) -> Image.Image | ImageError:
        """The decoded source image (one kept: an image's items are consecutive), or why it cannot be read."""
        if self._source is None or self._source[0] != image_id:
            try:
                self._source = (image_id, load_rgb(path))
            except ImageError as exc:
                self._source = (image_id, exc)
                self.unreadable.append(f"{image_id}: {exc}")
        return self._source[1]

    def _use(self, name: str, entry: list) -> Thumb:
        self.written.add(name)
        self.reused += 1
        return Thumb(name, entry[1], entry[2])

    def _save(self, img: Image.Image, name: str, key: str | None, *extra: int) -> Thumb:
        target = self.folder / name
        if target.resolve().parent != self.folder.resolve():  # names are flattened; never write outside the folder
            raise ConfigError(f"refusing thumbnail name {name!r}")
        img.convert("RGB").save(target, "JPEG", quality=JPEG_QUALITY)
        thumb = Thumb(name, img.width, img.height)
        self.cache.store(name, key, thumb, *extra)
        self.written.add(name)
        return thumb

    def finish(self) -> None:
        """Remove the thumbnails of an earlier run that this one did not use, and record the ones it did."""
        for path in self.folder.glob("*.jpg"):
            if _THUMB_RE.fullmatch(path.name) and path.name not in self.written:
                path.unlink()
        self.cache.save()
