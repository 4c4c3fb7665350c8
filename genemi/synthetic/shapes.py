"""Coloured shapes on plain backgrounds, with captions, variations and text hard negatives.

Each source image shows two items ("a red circle left of a blue square"). Each item has sibling
variations that repaint it in another colour, with captions rewritten to match, exactly the structure
GeNeMi's pipeline produces, so every trainer mode and loss can run end to end on real files.
"""

from __future__ import annotations

import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "blue": (40, 70, 220), "green": (40, 170, 60), "yellow": (230, 210, 40),
           "purple": (140, 50, 170), "orange": (240, 140, 30)}  # fmt: skip
SHAPES = ("circle", "square", "triangle")
IMAGE_SIZE = 64


@dataclass
class ShapesDataset:
    root: Path
    images: Path  # folder with sources/ and variations/
    variations_json: Path  # original GeNeMi variation_annotation.json layout
    variations_jsonl: Path  # genemi VariationRecord manifest
    coco_json: Path  # COCO Karpathy layout over the source images
    negatives_jsonl: Path  # TextNegativeRecord manifest (4 typed negatives per caption)
    csv: Path  # open_clip TSV
    shards: str  # webdataset shard pattern
    num_sources: int
    num_variations: int


def _draw(shape: str, colour: str, box: tuple[int, int, int, int], draw: ImageDraw.ImageDraw) -> None:
    fill = COLOURS[colour]
    x0, y0, x1, y1 = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((x0 + x1) // 2, y0), (x1, y1), (x0, y1)], fill=fill)


def render(items: list[tuple[str, str]]) -> Image.Image:
    """Two (colour, shape) items, left and right, on a grey background."""
    img = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (128, 128, 128))
    draw = ImageDraw.Draw(img)
    boxes = [(4, 18, 30, 44), (34, 18, 60, 44)]
    for (colour, shape), box in zip(items, boxes):
        _draw(shape, colour, box, draw)
    return img


def caption_of(items: list[tuple[str, str]]) -> str:
    (c0, s0), (c1, s1) = items
    return f"a {c0} {s0} left of a {c1} {s1}"


def negatives_of(items: list[tuple[str, str]], rng: random.Random) -> list[dict]:
    """CE-CLIP's four types in its order: relation swap, attribute, object, action (none here: invalid)."""
    (c0, s0), (c1, s1) = items
    other_colour = rng.choice([c for c in COLOURS if c not in (c0, c1)])
    other_shape = next(s for s in SHAPES if s not in (s0, s1)) if s0 != s1 else rng.choice([s for s in SHAPES if s != s0])
    return [
        {"type": "swap_obj", "text": f"a {c1} {s1} left of a {c0} {s0}", "valid": True},
        {"type": "replace_att", "text": f"a {other_colour} {s0} left of a {c1} {s1}", "valid": True},
        {"type": "replace_obj", "text": f"a {c0} {other_shape} left of a {c1} {s1}", "valid": True},
        {"type": "replace_act", "text": "", "valid": False, "reason": "no verb in caption"},
    ]


def write_shapes_dataset(out_dir: str | Path, num_sources: int = 12, variations_per_item: int = 3,
                         seed: int = 0, num_shards: int = 2) -> ShapesDataset:  # fmt: skip
    """Write the shapes world in every training format under ``out_dir``; deterministic for a seed."""
    rng = random.Random(seed)
    root = Path(out_dir)
    images = root / "images"
    (images / "sources").mkdir(parents=True, exist_ok=True)
    (images / "variations").mkdir(parents=True, exist_ok=True)
    legacy, records, coco, negs, rows = [], [], [], [], []
    colours = list(COLOURS)
    for i in range(num_sources):
        items = [(rng.choice(colours), rng.choice(SHAPES)) for _ in range(2)]
        src = f"sources/{i:05d}.png"
        render(items).save(images / src)
        caption = caption_of(items)
        coco.append({"image": src, "caption": caption, "image_id": str(i)})
        coco.append({"image": src, "caption": caption.replace(" left of ", " beside "), "image_id": str(i)})
        negs.append({"id": f"{i:05d}/0", "image": src, "caption": caption, "image_id": str(i),
                     "negatives": negatives_of(items, rng)})  # fmt: skip
        rows.append((src, caption))
        for slot in range(2):
            item = f"{items[slot][0]} {items[slot][1]}"
            new_colours = rng.sample([c for c in colours if c != items[slot][0]], variations_per_item)
            for v, colour in enumerate(new_colours):
                changed = list(items)
                changed[slot] = (colour, items[slot][1])
                name = f"{i:05d}_item{slot}_var{v}"
                save = f"variations/{name}.png"
                render(changed).save(images / save)
                itm = [round(rng.uniform(-0.5, 1.0), 3)]
                iva = round(rng.uniform(5, 40), 2)
                short = f"{colour} {items[slot][1]}"
                rec = {"origin_name": f"{i:05d}", "name": name, "source": src, "item": item, "short": short,
                       "save": save, "tag2text_caption": caption, "original_captions": [caption],
                       "captions": [caption_of(changed)], "itm_score": itm, "iva_score": iva}  # fmt: skip
                legacy.append(rec)
                records.append({"id": f"{i:05d}/item_{slot:02d}/var_{v}", "parent_id": f"{i:05d}/item_{slot:02d}",
                                **rec})  # fmt: skip
    variations_json = root / "variation_annotation.json"
    variations_json.write_text(json.dumps(legacy, indent=1))
    variations_jsonl = root / "variations.jsonl"
    variations_jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    coco_json = root / "coco_karpathy_train.json"
    coco_json.write_text(json.dumps(coco))
    negatives_jsonl = root / "negatives.jsonl"
    negatives_jsonl.write_text("".join(json.dumps(r) + "\n" for r in negs))
    csv_path = root / "pairs.tsv"
    csv_path.write_text("filepath\ttitle\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    for s in range(num_shards):
        with tarfile.open(root / f"shard-{s:03d}.tar", "w") as tar:
            for j, rec in enumerate(negs[s::num_shards]):
                key = f"{s:03d}{j:05d}"
                data = {"png": (images / rec["image"]).read_bytes(), "txt": rec["caption"].encode(),
                        "json": json.dumps({"negatives": rec["negatives"]}).encode()}  # fmt: skip
                for ext, payload in data.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))
    return ShapesDataset(root, images, variations_json, variations_jsonl, coco_json, negatives_jsonl, csv_path,
                         str(root / f"shard-{{000..{num_shards - 1:03d}}}.tar"), num_sources, len(records))  # fmt: skip
