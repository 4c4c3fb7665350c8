"""A finished pipeline run built by hand (no models): source images, ``masks.jsonl``, variation images,
``variations.jsonl`` and ``scores.jsonl`` with known scores, for the export, stats and gallery tests.

Layout: 3 images x 2 items x 4 variations. Known cases:

* ``img_0``: both items pass (mean ITM > 0, IVA 40 / 30);
* ``img_1``: ``item_00`` has one failed variation (inpaint error) and its ``var_1`` has mean ITM < 0;
  ``item_01`` has IVA 2 over the image (below the default 2.25 and the original's 14; over its window: 8);
* ``img_2``: failed upstream (no boxes) and has no items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from genemi.masks import rle_encode
from genemi.manifest import encode_line
from genemi.records import Failure, ItemMask, MaskRecord, PlannedItem, PlannedVariation, VariationPlan

W, H = 96, 80
BOXES = [(8, 8, 40, 40), (50, 30, 90, 70)]  # x0, y0, x1, y1 of item_00 and item_01
SHORTS = ["red cube", "blue ball", "green cone", "yellow star"]
IVA = {("img_0", 0): 40.0, ("img_0", 1): 30.0, ("img_1", 0): 25.0, ("img_1", 1): 2.0}  # iva_image
COLOURS = [(220, 30, 30), (30, 30, 220), (30, 200, 30), (230, 220, 20)]


@dataclass
class ScoredRun:
    input_dir: Path
    output_dir: Path
    #: variation id -> (mean ITM, IVA) of every painted variation
    scores: dict[str, tuple[float, float]]
    failed_variation: str
    failed_image: str


def _line(rec) -> str:
    return encode_line(rec.model_dump(mode="json", exclude_none=True)) + "\n"


def write_scored_run(root: Path) -> ScoredRun:
    inp, out = root / "images", root / "run"
    inp.mkdir(parents=True)
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    masks, plans, scored, scores = [], [], [], {}
    failed_variation = "img_1.png/item_00/var_2"
    for i in range(3):
        name = f"img_{i}"
        src = (rng.integers(60, 190, (H, W, 3))).astype(np.uint8)
        Image.fromarray(src).save(inp / f"{name}.png")
        base = dict(id=f"{name}.png", image=f"{name}.png", width=W, height=H, caption=f"a cat and a dog number {i}",
                    original_captions=[f"a cat next to a dog {i}"])
        if i == 2:
            err = Failure(stage="ground", type="no_boxes", message="no item grounded to a box")
            masks.append(MaskRecord(**base, status="failed", error=err))
            plans.append(VariationPlan(**base, status="failed", error=err))
            scored.append(VariationPlan(**base, status="failed", error=err))
            continue
        mask_items, items, scored_items = [], [], []
        for k, (x0, y0, x1, y1) in enumerate(BOXES):
            item_id, item = f"{name}.png/item_{k:02d}", ["cat", "dog"][k]
            m = np.zeros((H, W), bool)
            m[y0:y1, x0:x1] = True
            mask_items.append(ItemMask(id=item_id, item=item, box=[x0, y0, x1, y1], box_score=0.9, mask=rle_encode(m),
                                       mask_score=0.95, area=int(m.sum()), crop=[0, 0, W, H]))
            variations, scored_vars = [], []
            for j, short in enumerate(SHORTS):
                vid = f"{item_id}/var_{j}"
                slug = short.replace(" ", "_")
                caps = [f"a {short} and a {'dog' if k == 0 else 'cat'}", f"a {short} next to something"]
                planned = PlannedVariation(id=vid, kind="category", prompt=f"a photo of a {short}", short=short,
                                           slug=slug, seed=1000 * i + 10 * k + j, captions=caps)
                if vid == failed_variation:
                    failed = planned.model_copy(update={"status": "failed", "error": Failure(
                        stage="inpaint", type="NonFiniteOutput", message="the model returned NaN pixels")})
                    variations.append(failed)
                    scored_vars.append(failed)
                    continue
                rel = f"variations/{name}.png/item_{k:02d}/var_{j}-{slug}.png"
                var_img = src.copy()
                var_img[y0:y1, x0:x1] = COLOURS[j]
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(var_img).save(out / rel)
                painted = planned.model_copy(update={"image": rel})
                itm = [1.5 - 0.5 * j, 0.5] if not (i == 1 and k == 0 and j == 1) else [-2.0, -1.0]
                iva = IVA[(name, k)]
                variations.append(painted)
                scored_vars.append(painted.model_copy(update={
                    "itm_score": itm, "itm_prob": [float(1 / (1 + np.exp(-x))) for x in itm], "iva_image": iva,
                    "iva_window": 4 * iva}))
                scores[vid] = (sum(itm) / len(itm), iva)
            common = dict(id=item_id, item=item, box=[x0, y0, x1, y1], crop=[0, 0, W, H], backend="rules")
            items.append(PlannedItem(**common, variations=variations))
            scored_items.append(PlannedItem(**common, variations=scored_vars))
        masks.append(MaskRecord(**base, items=mask_items))
        plans.append(VariationPlan(**base, items=items))
        scored.append(VariationPlan(**base, items=scored_items))
    for fname, recs in [("masks.jsonl", masks), ("variations.jsonl", plans), ("scores.jsonl", scored)]:
        (out / fname).write_text("".join(_line(r) for r in recs))
    return ScoredRun(inp, out, scores, failed_variation, "img_2.png")


# --- a large synthetic run (the gallery benchmark and its size test) -------------------------------------

_NOUNS = ["man", "woman", "dog", "cat", "bicycle", "car", "bench", "umbrella", "horse", "kite", "pizza", "train"]
_PLACES = ["down a busy city street", "on a sandy beach at sunset", "in a small kitchen", "next to a wooden fence",
           "in front of an old brick building", "across a grassy field"]
_SHORTS = ["red vintage bicycle", "striped umbrella", "golden retriever", "blue ceramic mug", "wooden rocking chair",
           "green double-decker bus", "black leather handbag", "white porcelain vase"]


def write_large_run(root: Path, items: int, *, items_per_image: int = 2, variations: int = 4,
                    size: tuple[int, int] = (64, 48), seed: int = 0) -> tuple[Path, Path]:
    """A scored run of ``items`` items (COCO-like ids, captions of COCO's length, prompts, K variations with
    scores; about 1% failed images and 2% failed variations), with tiny source and variation images. Returns
    ``(input_dir, output_dir)``."""
    rng = np.random.default_rng(seed)
    inp, out = root / "images", root / "run"
    inp.mkdir(parents=True)
    out.mkdir(parents=True)
    w, h = size
    box = [w // 4, h // 4, 3 * w // 4, 3 * h // 4]
    m = np.zeros((h, w), bool)
    m[box[1]:box[3], box[0]:box[2]] = True
    rle = rle_encode(m)
    masks, scored = [], []
    left, i = items, -1
    while left > 0:
        i += 1
        name = f"COCO_train2014_{i:012d}.jpg"
        src = rng.integers(40, 215, (h, w, 3), dtype=np.uint8)
        Image.fromarray(src).save(inp / name, quality=90)
        caption = f"a {_NOUNS[i % len(_NOUNS)]} with a {_NOUNS[(i * 7 + 3) % len(_NOUNS)]} {_PLACES[i % len(_PLACES)]}"
        base = dict(id=name, image=name, width=w, height=h, caption=caption, original_captions=[caption])
        if i % 100 == 99:
            err = Failure(stage="ground", type="no_boxes", message="no item grounded to a box")
            masks.append(MaskRecord(**base, status="failed", error=err))
            scored.append(VariationPlan(**base, status="failed", error=err))
            continue
        mask_items, plan_items = [], []
        for k in range(min(items_per_image, left)):
            left -= 1
            item_id, item = f"{name}/item_{k:02d}", _NOUNS[(i + k) % len(_NOUNS)]
            mask_items.append(ItemMask(id=item_id, item=item, box=box, box_score=0.9, mask=rle, mask_score=0.95,
                                       area=int(m.sum()), crop=[0, 0, w, h]))
            iva = float(rng.uniform(0, 60))
            plan_vars = []
            for j in range(variations):
                short = _SHORTS[(i + k + j) % len(_SHORTS)]
                vid = f"{item_id}/var_{j}"
                slug = short.replace(" ", "_")
                var = PlannedVariation(
                    id=vid, kind="category", prompt=f"a photo of a {short}, detailed, natural light, high quality",
                    short=short, slug=slug, seed=int(rng.integers(0, 2**31)),
                    captions=[caption.replace(item, short, 1), f"a {short} {_PLACES[(i + j) % len(_PLACES)]}"])
                if rng.random() < 0.02:
                    plan_vars.append(var.model_copy(update={"status": "failed", "error": Failure(
                        stage="inpaint", type="NonFiniteOutput", message="the model returned NaN pixels")}))
                    continue
                rel = f"variations/{name}/item_{k:02d}/var_{j}-{slug}.png"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                img = src.copy()
                img[box[1]:box[3], box[0]:box[2]] = COLOURS[j % len(COLOURS)]
                Image.fromarray(img).save(out / rel)
                itm = [float(x) for x in rng.normal(0.5, 1.0, 2)]
                plan_vars.append(var.model_copy(update={
                    "image": rel, "itm_score": itm, "itm_prob": [float(1 / (1 + np.exp(-x))) for x in itm],
                    "iva_image": iva, "iva_window": iva}))
            plan_items.append(PlannedItem(id=item_id, item=item, box=box, crop=[0, 0, w, h], backend="rules",
                                          variations=plan_vars))
        masks.append(MaskRecord(**base, items=mask_items))
        scored.append(VariationPlan(**base, items=plan_items))
    for fname, recs in [("masks.jsonl", masks), ("scores.jsonl", scored)]:
        (out / fname).write_text("".join(_line(r) for r in recs))
    return inp, out
