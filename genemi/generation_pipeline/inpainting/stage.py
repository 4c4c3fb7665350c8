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

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from genemi.errors import DataError
from genemi.generation_pipeline.image_files import (contained_path, id_tail, remove_leftovers, safe_component,
                                                    write_image_atomic)
from genemi.generation_pipeline.inpainting.config import VARIATIONS, InpaintConfig
from genemi.generation_pipeline.inpainting.geometry import Placement, crop_alpha, fit_to_square, paste, unfit
from genemi.masks import dilate
from genemi.masks import rle_decode
from genemi.generation_pipeline.stage import Stage, StageContext, StageItem
from genemi.records import Failure, ItemMask, MaskRecord, PlannedItem, VariationPlan

__all__ = ["InpaintStage", "regenerate_variation", "safe_component", "variation_path"]


def variation_path(output_dir: Path, record_id: str, item_id: str, var_id: str, slug: str, ext: str) -> Path:
    """Where a variation image goes, always inside ``output_dir/variations`` (raises DataError otherwise)."""
    name = f"{safe_component(id_tail(var_id, item_id))}-{safe_component(slug)}.{ext}"
    return contained_path(output_dir, VARIATIONS, (record_id, id_tail(item_id, record_id)), name,
                          f"variation {var_id!r}")


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


class InpaintStage(Stage):
    """Reads ``caption`` (the plans, primary) and ``segment`` (each item's mask, joined by image id)."""

    name = "inpaint"

    def skip(self, item: StageItem[VariationPlan]) -> VariationPlan | None:
        rec = item.record
        if rec.status != "ok" or not any(_paintable(it) for it in rec.items):
            return rec  # failed upstream, or nothing to paint: carried as it is
        return None

    # --- reader thread ----------------------------------------------------------------------------------

    def prepare(self, item: StageItem[VariationPlan]) -> PreparedRecord:
        rec = item.record
        image = np.asarray(self.source_image(item))
        prepared = PreparedRecord(image=image)
        masks_record: MaskRecord | None = item.inputs.get("segment")
        masks = {m.id: m for m in masks_record.items} if masks_record is not None else None
        manifest = self._masks_manifest()
        for plan in rec.items:
            if not _paintable(plan):
                continue
            found = masks.get(plan.id) if masks is not None else None
            if found is None:
                where = f"no record {rec.id!r}" if masks is None else f"record {rec.id!r} has no item {plan.id!r}"
                prepared.failures[plan.id] = Failure(stage=self.name, type="missing_mask",
                                                     message=f"no mask for {plan.id}: {manifest}: {where}")
                continue
            try:
                prepared.items[plan.id] = self._prepare_item(plan, found, image, self.backend.size)
            except (ValueError, DataError) as exc:
                prepared.failures[plan.id] = Failure(stage=self.name, type="bad_mask", message=f"{plan.id}: {exc}")
        return prepared

    def _masks_manifest(self) -> str:
        from genemi.generation_pipeline import registry

        return registry.manifest("segment")

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
        model_rgb, model_mask, placement = fit_to_square(image[y0:y1, x0:x1], dilate(crop_mask, c.mask_dilate), size,
                                                         c.crop_fit)
        ok = [k for k, v in enumerate(item.variations) if v.status == "ok"]
        return PreparedItem(
            item_id=item.id, box=(x0, y0, x1, y1), model_rgb=model_rgb, model_mask=model_mask, placement=placement,
            alpha=crop_alpha(crop_mask, c.paste, c.mask_dilate, c.mask_feather), variations=ok,
            prompts=[item.variations[k].prompt for k in ok], seeds=[item.variations[k].seed for k in ok])

    # --- model ------------------------------------------------------------------------------------------

    def process(self, items: list[StageItem[VariationPlan]]) -> None:
        from genemi.generation_pipeline.inpainting.diffusers_backend import PaintJob

        owners = [p for item in items for p in item.prepared.items.values()]
        if owners:
            jobs = [PaintJob(p.model_rgb, p.model_mask, p.prompts, p.seeds) for p in owners]
            with self.timed():
                results = self.backend.paint(jobs)
            for p, res in zip(owners, results, strict=True):
                p.result = res

    # --- writer thread ----------------------------------------------------------------------------------

    def compose(self, image: np.ndarray, p: PreparedItem, painted: np.ndarray) -> np.ndarray:
        """The full-resolution variation image from the model's output for one variation."""
        x0, y0, x1, y1 = p.box
        return paste(image, unfit(painted, p.placement, (y1 - y0, x1 - x0)), p.box, p.alpha)

    def build(self, item: StageItem[VariationPlan]) -> VariationPlan:
        rec = item.record
        return rec.model_copy(update={"items": [self._finish_item(rec, it, item.prepared) for it in rec.items]})

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
                remove_leftovers(path.parent)
                folder_cleaned = True
            write_image_atomic(path, self.compose(prep.image, p, p.result.images[slot]), ext)
            rel = path.relative_to(self.context.output_dir).as_posix()
            variations[k] = var.model_copy(update={"image": rel})
        return item.model_copy(update={"variations": variations})


def _paintable(item: PlannedItem) -> bool:
    return item.status == "ok" and any(v.status == "ok" for v in item.variations)


def _find_plan(path: Path, variation_id: str) -> VariationPlan:
    """The plan of the image holding ``variation_id``, reduced to that one variation."""
    from genemi.manifest import iter_json_lines

    for _, obj in iter_json_lines(path):
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
    """Repaint one variation alone, from the manifests the stage reads, with its recorded seed: the
    full-resolution image (uint8, H x W x 3) the stage writes for it (before JPEG compression). ``stage``: an
    already loaded :class:`InpaintStage` to reuse (its config and context are then used)."""
    from genemi.generation_pipeline import registry
    from genemi.manifest import ManifestIndex

    output_dir = Path(output_dir)
    if stage is None:
        ctx = replace(context or StageContext(), output_dir=output_dir, image_root=Path(image_root))
        stage = InpaintStage(config, ctx)
        stage.check()
        stage.load()
    spec = stage.spec
    plan = _find_plan(output_dir / registry.manifest(spec.primary), variation_id)
    inputs = {name: ManifestIndex(output_dir / registry.manifest(name), registry.STAGES[name].record).get(plan.id)
              for name in spec.reads[1:]}
    item = StageItem(plan, inputs)
    prep = stage.prepare(item)
    if prep.failures:
        raise DataError(str(next(iter(prep.failures.values()))))
    [p] = prep.items.values()
    item.prepared = prep
    stage.process([item])
    error = p.result.errors[0]
    if error is not None:
        raise error
    return stage.compose(prep.image, p, p.result.images[0])
