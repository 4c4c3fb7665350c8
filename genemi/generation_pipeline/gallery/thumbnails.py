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
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import PIL
from PIL import Image, ImageDraw

from genemi.errors import ConfigError, ImageError
from genemi.generation_pipeline.gallery.loading import Row
from genemi.masks import dilate
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
        return entry

    def entry(self, name: str, key: str, thumb: Thumb, *extra: int) -> list:
        """The entry of a thumbnail just written."""
        st = os.stat(self.folder / name)
        return [key, thumb.width, thumb.height, st.st_size, st.st_mtime_ns, *extra]

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
    """Makes (or reuses) the thumbnails of rows; collects the names used and the images that could not be read.

    The rows of one image are one task (its source decoded at most once); with ``threads`` > 1 the tasks run in
    threads (Pillow and scipy release the GIL while they resize, encode and measure)."""

    def __init__(self, output_dir: Path, input_dir: Path, gallery_dir: Path, masks: dict[str, ItemMask], size: int,
                 threads: int = 1):
        self.out, self.inp, self.size, self.masks, self.threads = output_dir, input_dir, size, masks, threads
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
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def items(self, rows: Sequence[Row]) -> list[ItemThumbs]:
        """The thumbnails of ``rows``, in order."""
        tasks = [list(group) for _, group in groupby(rows, key=lambda r: r.image.id)]
        if self.threads > 1 and len(tasks) > 1:
            with ThreadPoolExecutor(min(self.threads, len(tasks))) as pool:
                done = list(pool.map(self._image, tasks))
        else:
            done = [self._image(task) for task in tasks]
        out: list[ItemThumbs] = []
        for thumbs, unreadable in done:
            out += thumbs
            for what in unreadable:  # an image whose items span two pages is reported once
                if what not in self._reported:
                    self._reported.add(what)
                    self.unreadable.append(what)
        return out

    def _image(self, rows: list[Row]) -> tuple[list[ItemThumbs], list[str]]:
        """The thumbnails of one image's rows, and the images that could not be read."""
        task = _ImageTask(self.inp / rows[0].image.image, rows[0].image.id)
        return [self._item(row, task) for row in rows], task.unreadable

    def _item(self, row: Row, task: "_ImageTask") -> ItemThumbs:
        rec, item = row.image, row.item
        mask = self.masks.get(item.id)
        name = thumb_name(item.id, ".src.jpg")
        key = _file_key(task.path, self.size, item.crop, item.box, _mask_digest(mask))
        entry = self.cache.lookup(name, key)
        problem = None
        if entry is not None and len(entry) == 7:
            src_thumb: Thumb | None = self._use(name, entry)
            src_size: tuple[int, int] | None = (entry[5], entry[6])
        else:
            src = task.source()
            if isinstance(src, Image.Image):
                src_thumb = self._save(source_thumbnail(src, item, mask, self.size), name, key, *src.size)
                src_size = src.size
            else:
                src_thumb, problem = None, f"source image unreadable: {src}"
                src_size = (rec.width, rec.height) if rec.width and rec.height else None
        thumbs = ItemThumbs(src_thumb, problem)
        for v in item.variations:
            if v.status == "ok":
                thumbs.variations[v.id] = self._variation(v.id, v.image, item, src_size, task)
        return thumbs

    def _variation(self, vid: str, image: str | None, item: PlannedItem, src_size: tuple[int, int] | None,
                   task: "_ImageTask") -> Thumb | str:
        if image is None:
            return "no image recorded"
        name, path = thumb_name(vid, ".jpg"), self.out / image
        return self._cached(name, _file_key(path, self.size, item.crop, src_size), path, "variation image",
                            lambda img: variation_thumbnail(img, item, src_size, self.size),
                            lambda exc: task.unreadable.append(f"{vid}: {exc}"))

    def plain(self, record_id: str, path: Path, suffix: str = ".jpg") -> Thumb | str:
        """A thumbnail of the whole image at ``path`` (whole-image negatives and their sources), or why there is
        none."""
        def report(exc: ImageError) -> None:
            with self._lock:
                self.unreadable.append(f"{record_id}: {exc}")

        return self._cached(thumb_name(record_id, suffix), _file_key(path, self.size), path, "image",
                            lambda img: fit(img, self.size), report)

    def _cached(self, name: str, key: str, path: Path, what: str, draw: Callable[[Image.Image], Image.Image],
                report: Callable[[ImageError], None]) -> Thumb | str:
        """Thumbnail ``name`` reused when the cache holds ``key``, else ``draw`` of the image at ``path``; an
        unreadable image is passed to ``report`` and its reason returned (``"<what> unreadable: ..."``)."""
        entry = self.cache.lookup(name, key)
        if entry is not None:
            return self._use(name, entry)
        try:
            img = load_rgb(path)
        except ImageError as exc:
            report(exc)
            return f"{what} unreadable: {exc}"
        return self._save(draw(img), name, key)

    def _use(self, name: str, entry: list) -> Thumb:
        with self._lock:
            self.cache.kept[name] = entry
            self.written.add(name)
            self.reused += 1
        return Thumb(name, entry[1], entry[2])

    def _save(self, img: Image.Image, name: str, key: str | None, *extra: int) -> Thumb:
        target = self.folder / name
        if target.resolve().parent != self.folder.resolve():  # names are flattened; never write outside the folder
            raise ConfigError(f"refusing thumbnail name {name!r}")
        img.convert("RGB").save(target, "JPEG", quality=JPEG_QUALITY)
        thumb = Thumb(name, img.width, img.height)
        entry = None if key is None else self.cache.entry(name, key, thumb, *extra)
        with self._lock:
            if entry is not None:
                self.cache.kept[name] = entry
            self.written.add(name)
        return thumb

    def finish(self) -> None:
        """Remove the thumbnails of an earlier run that this one did not use, and record the ones it did."""
        for path in self.folder.glob("*.jpg"):
            if _THUMB_RE.fullmatch(path.name) and path.name not in self.written:
                path.unlink()
        self.cache.save()


class _ImageTask:
    """One source image of a task: decoded when first needed (at most once), and what could not be read."""

    def __init__(self, path: Path, image_id: str):
        self.path, self.image_id = path, image_id
        self.unreadable: list[str] = []
        self._decoded: Image.Image | ImageError | None = None

    def source(self) -> Image.Image | ImageError:
        if self._decoded is None:
            try:
                self._decoded = load_rgb(self.path)
            except ImageError as exc:
                self._decoded = exc
                self.unreadable.append(f"{self.image_id}: {exc}")
        return self._decoded
