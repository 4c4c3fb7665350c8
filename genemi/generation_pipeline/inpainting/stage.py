"""The ``inpaint`` stage: every planned variation painted into its item's mask (``variations.jsonl`` + images).

Per item (``captions.jsonl`` plans it, ``masks.jsonl`` holds its mask): the crop window and the mask grown by
``--mask-dilate`` are fitted into the model's square input without distortion (:mod:`.geometry`); all the
batch's variations are painted in one backend call; each output is resized back to the crop and only the
dilated, feathered mask region is blended into the full-resolution source (``--paste crop``: the whole
window, as the original did). Each image is written atomically to
``variations/<image id>/<item_k>/<var_j>-<slug>.<jpg|png>`` (every component sanitised) before its manifest
line is appended, so a killed run never leaves a record without its image; a rerun repaints what is missing
with the same seeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from genemi.errors import ConfigError, DataError, ImageError, ManifestError
from genemi.generation_pipeline.inpainting.config import InpaintConfig
from genemi.generation_pipeline.inpainting.geometry import Placement, crop_alpha, dilate, fit_to_square, paste, unfit
from genemi.masks import rle_decode
from genemi.generation_pipeline.stage import Stage, StageContext
from genemi.images import load_images
from genemi.records import Failure, ItemMask, MaskRecord, PlannedItem, VariationPlan

MASKS = "masks.jsonl"
VARIATIONS = "variations"
TMP_PREFIX = ".tmp-"  # unfinished image files (ignored by merge, removed when their folder is written again)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_component(text: str, limit: int = 100) -> str:
    """One path component from data: ``[A-Za-z0-9._-]`` kept, anything else ``_``, no leading dot (so never
    ``.``, ``..`` or hidden), at most ``limit`` characters; a name that had to change gets a short hash of the
    original so that different names stay different."""
    clean = _UNSAFE.sub("_", text)
    clean = re.sub(r"^\.+", lambda m: "_" * len(m[0]), clean) or "_"
    if clean != text or len(clean) > limit:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        clean = f"{clean[:limit]}-{digest}"
    return clean


def _tail(child_id: str, parent_id: str) -> str:
    return child_id[len(parent_id) + 1 :] if child_id.startswith(parent_id + "/") else child_id


def variation_path(output_dir: Path, record_id: str, item_id: str, var_id: str, slug: str, ext: str) -> Path:
    """Where a variation image goes, always inside ``output_dir/variations`` (raises DataError otherwise)."""
    root = Path(output_dir) / VARIATIONS
    item_part = _tail(item_id, record_id)
    name = f"{safe_component(_tail(var_id, item_id))}-{safe_component(slug)}.{ext}"
    path = root / safe_component(record_id) / safe_component(item_part) / name
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root) or path.resolve() == resolved_root:
        raise DataError(f"variation {var_id!r}: image path {path} would leave {root}")
    return path


def write_image_atomic(path: Path, array: np.ndarray, fmt: str) -> None:
    """Write an RGB image through a temporary file in the same folder + ``os.replace`` (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(TMP_PREFIX + path.name)
    img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    with open(tmp, "wb") as fh:
        if fmt == "png":
            img.save(fh, format="PNG")
        else:
            img.save(fh, format="JPEG", quality=95)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _remove_leftovers(folder: Path) -> None:
    if folder.is_dir():
        for entry in os.scandir(folder):
            if entry.name.startswith(TMP_PREFIX) and entry.is_file():
                Path(entry.path).unlink(missing_ok=True)


@dataclass
class PreparedItem:
    """One item ready to paint: the model's input, how to put the result back, and its variations to paint."""

    item_id: str
    box: tuple[int, int, int, int]  # crop window, x0 y0 x1 y1
    model_rgb: np.ndarray
    model_mask: np.ndarray
    placement: Placement
    alpha: np.ndarray  # paste weights, crop size
    variations: list[int]  # indices into item.variations that are painted
    prompts: list[str]
    seeds: list[int]
    result: object = None  # the backend's PaintResult, set by process


@dataclass
class PreparedRecord:
    image: np.ndarray | None  # full-resolution source (None when nothing is painted)
    items: dict[str, PreparedItem] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)  # item id -> why it cannot be painted


class MaskIndex:
    """``masks.jsonl`` indexed by record id (byte offset and length of its line), read lazily: only the
    lines of the records being painted are parsed again (memory stays O(images), not O(mask pixels))."""

    def __init__(self, path: Path):
        self.path = path
        self._lines: dict[str, tuple[int, int]] | None = None
        self._lock = threading.Lock()

    def _index(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            if self._lines is None:
                lines, offset = {}, 0
                with open(self.path, "rb") as fh:
                    for number, line in enumerate(fh, start=1):
                        if line.strip():
                            try:
                                lines[str(json.loads(line)["id"])] = (offset, len(line))
                            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
                                if not line.endswith(b"\n"):
                                    break  # a truncated last line (interrupted write): that record is not there
                                raise ManifestError(f"{self.path}:{number}: not a mask record: {exc}") from exc
                        offset += len(line)
                self._lines = lines
            return self._lines

    def items(self, record_id: str) -> dict[str, ItemMask] | None:
        """The record's item masks by item id, or None when ``masks.jsonl`` has no such record."""
        where = self._index().get(record_id)
        if where is None:
            return None
        with open(self.path, "rb") as fh:
            fh.seek(where[0])
            line = fh.read(where[1])
        rec = MaskRecord.model_validate_json(line)
        return {m.id: m for m in rec.items}


class InpaintStage(Stage):
    name = "inpaint"

    def __init__(self, config: InpaintConfig, context: StageContext):
        super().__init__(config, context)
        self.masks = MaskIndex(Path(context.output_dir) / MASKS)

    def check(self) -> None:
        if self.config.paste not in ("mask", "crop"):
            raise ConfigError(f"--paste {self.config.paste!r}: choose mask or crop")
        if self.config.variation_format not in ("jpg", "png"):
            raise ConfigError(f"--variation-format {self.config.variation_format!r}: choose jpg or png")
        super().check()

    def load(self) -> None:
        if not self.masks.path.is_file():
            raise ConfigError(f"stage inpaint needs {self.masks.path} (the segment stage's masks; run "
                              "--stages segment first, in the same --output-dir)")
        super().load()

    # --- reader thread ----------------------------------------------------------------------------------

    def prepare(self, batch: Sequence[VariationPlan]) -> dict[str, PreparedRecord | Failure]:
        todo = [r for r in batch if r.status == "ok" and any(_paintable(it) for it in r.items)]
        images = load_images(self.context.image_root, [r.image for r in todo])
        out: dict[str, PreparedRecord | Failure] = {}
        for rec, image in zip(todo, images):
            if isinstance(image, ImageError):
                out[rec.id] = Failure.from_exception(self.name, image)
                continue
            out[rec.id] = self._prepare_record(rec, np.asarray(image))
        return out

    def _prepare_record(self, rec: VariationPlan, image: np.ndarray) -> PreparedRecord:
        prepared = PreparedRecord(image=image)
        masks = self.masks.items(rec.id)
        size = self.backend.size
        for item in rec.items:
            if not _paintable(item):
                continue
            found = masks.get(item.id) if masks is not None else None
            if found is None:
                where = f"no record {rec.id!r}" if masks is None else f"record {rec.id!r} has no item {item.id!r}"
                prepared.failures[item.id] = Failure(stage=self.name, type="missing_mask",
                                                     message=f"no mask for {item.id}: {self.masks.path.name}: {where}")
                continue
            try:
                prepared.items[item.id] = self._prepare_item(item, found, image, size)
            except (ValueError, DataError) as exc:
                prepared.failures[item.id] = Failure(stage=self.name, type="bad_mask", message=f"{item.id}: {exc}")
        return prepared

    def _prepare_item(self, item: PlannedItem, found: ItemMask, image: np.ndarray, size: int) -> PreparedItem:
        h, w = image.shape[:2]
        mask = rle_decode(found.mask)
        if mask.shape != (h, w):
            raise DataError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {w}x{h}")
        x0, y0, x1, y1 = (int(v) for v in item.crop)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            raise DataError(f"crop window {item.crop} is empty inside the {w}x{h} image")
        crop_mask = mask[y0:y1, x0:x1]
        if not crop_mask.any():
            raise DataError(f"the mask is empty inside the crop window {item.crop}")
        c = self.config
        model_rgb, model_mask, placement = fit_to_square(image[y0:y1, x0:x1], dilate(crop_mask, c.mask_dilate), size)
        ok = [k for k, v in enumerate(item.variations) if v.status == "ok"]
        return PreparedItem(
            item_id=item.id, box=(x0, y0, x1, y1), model_rgb=model_rgb, model_mask=model_mask, placement=placement,
            alpha=crop_alpha(crop_mask, c.paste, c.mask_dilate, c.mask_feather), variations=ok,
            prompts=[item.variations[k].prompt for k in ok], seeds=[item.variations[k].seed for k in ok])

    # --- model ------------------------------------------------------------------------------------------

    def process(self, batch: Sequence[VariationPlan], prepared=None) -> list:
        from genemi.generation_pipeline.inpainting.diffusers_backend import PaintJob

        prepared = prepared if prepared is not None else self.prepare(batch)
        owners = [p for rec in batch if isinstance(prepared.get(rec.id), PreparedRecord)
                  for p in prepared[rec.id].items.values()]
        if owners:
            jobs = [PaintJob(p.model_rgb, p.model_mask, p.prompts, p.seeds) for p in owners]
            with self.timed():
                results = self.backend.paint(jobs)
            for p, res in zip(owners, results):
                p.result = res
        return [(rec, prepared.get(rec.id)) for rec in batch]

    # --- writer thread ----------------------------------------------------------------------------------

    def compose(self, image: np.ndarray, p: PreparedItem, painted: np.ndarray) -> np.ndarray:
        """The full-resolution variation image from the model's output for one variation."""
        x0, y0, x1, y1 = p.box
        return paste(image, unfit(painted, p.placement, (y1 - y0, x1 - x0)), p.box, p.alpha)

    def finish(self, raw) -> list[VariationPlan]:
        out = []
        for rec, prep in raw:
            if rec.status != "ok" or prep is None:
                out.append(rec)  # failed upstream, or nothing to paint: carried as it is
            elif isinstance(prep, Failure):
                out.append(self.fail(rec, prep))
            else:
                out.append(rec.model_copy(update={"items": [self._finish_item(rec, it, prep) for it in rec.items]}))
        return out

    def _finish_item(self, rec: VariationPlan, item: PlannedItem, prep: PreparedRecord) -> PlannedItem:
        if item.id in prep.failures:
            return item.model_copy(update={"status": "failed", "error": prep.failures[item.id]})
        p = prep.items.get(item.id)
        if p is None:
            return item
        ext = self.config.variation_format
        variations = list(item.variations)
        folder_cleaned = False
        for slot, k in enumerate(p.variations):
            var = variations[k]
            error = p.result.errors[slot]
            if error is not None:
                variations[k] = var.model_copy(update={"status": "failed",
                                                       "error": Failure.from_exception(self.name, error)})
                continue
            path = variation_path(self.context.output_dir, rec.id, item.id, var.id, var.slug, ext)
            if not folder_cleaned:
                _remove_leftovers(path.parent)
                folder_cleaned = True
            write_image_atomic(path, self.compose(prep.image, p, p.result.images[slot]), ext)
            rel = path.relative_to(self.context.output_dir).as_posix()
            variations[k] = var.model_copy(update={"image": rel})
        return item.model_copy(update={"variations": variations})


def _paintable(item: PlannedItem) -> bool:
    return item.status == "ok" and any(v.status == "ok" for v in item.variations)


def _find_plan(path: Path, variation_id: str) -> VariationPlan:
    from genemi.manifest import iter_json_lines

    for line_no, obj in iter_json_lines(path):
        if variation_id.startswith(str(obj.get("id")) + "/"):
            plan = VariationPlan.model_validate(obj)
            for item in plan.items:
                for var in item.variations:
                    if var.id == variation_id:
                        only = item.model_copy(update={"status": "ok", "variations": [
                            var.model_copy(update={"status": "ok", "error": None})]})
                        return plan.model_copy(update={"status": "ok", "items": [only]})
    raise DataError(f"variation {variation_id!r} is not in {path}")


def regenerate_variation(output_dir: str | Path, image_root: str | Path, variation_id: str,
                         config: InpaintConfig, context: StageContext | None = None,
                         stage: InpaintStage | None = None) -> np.ndarray:
    """Repaint one variation alone, from ``captions.jsonl`` and ``masks.jsonl`` with its recorded seed: the
    full-resolution image (uint8, H x W x 3) the stage writes for it (before JPEG compression). ``stage``: an
    already loaded :class:`InpaintStage` to reuse (its config and context are then used)."""
    output_dir = Path(output_dir)
    if stage is None:
        ctx = replace(context or StageContext(), output_dir=output_dir, image_root=Path(image_root))
        stage = InpaintStage(config, ctx)
        stage.check()
        stage.load()
    plan = _find_plan(output_dir / "captions.jsonl", variation_id)
    prepared = stage.prepare([plan])
    prep = prepared[plan.id]
    if isinstance(prep, Failure):
        raise ImageError(str(prep))
    if prep.failures:
        raise DataError(str(next(iter(prep.failures.values()))))
    [p] = prep.items.values()
    stage.process([plan], prepared)
    error = p.result.errors[0]
    if error is not None:
        raise error
    return stage.compose(prep.image, p, p.result.images[0])
