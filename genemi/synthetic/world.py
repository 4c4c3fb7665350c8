"""Write the compositional shapes world to disk in real dataset formats, each readable by genemi's loaders.

``write_world(out)`` writes (every image path is relative to ``out/images``)::

    splits.json                       the split definitions (held-out pairs / arrangements) and the settings
    scenes_train.jsonl, scenes_test.jsonl
                                      one scene per line: spec, captions, exact per-object pixel boxes and
                                      masks (uncompressed COCO RLE), the held-out elements it contains
    coco_karpathy_train.json          Karpathy/BLIP training list [{image, caption, image_id}] (trainer input)
    coco_karpathy_test.json           Karpathy test list [{image, caption: [...], image_id}] (retrieval)
    sugarcrepe/<subset>.json          the 7 SugarCrepe subsets {key: {filename, caption, negative_caption}}
    winoground/examples.jsonl + images/
                                      2 images x 2 captions with the same words in another order
    aro/visual_genome_relation.json, aro/visual_genome_attribution.json
                                      ARO VG-R / VG-A items (image_path, relative to images/, + crop box +
                                      true/false caption)
    variations.jsonl                  ground-truth variation records (VariationRecord): each item re-rendered
                                      with its colour, shape or size changed; IVA computed on the pixels of
                                      the sibling images (no ITM: nothing scored them)
    relation_variations.jsonl         the same records for edits aimed at relations and word order
                                      (:mod:`genemi.synthetic.relation_edits`: two objects swap places or one
                                      attribute, stacking order reversed, a relation changed), one group per scene
                                      (``item`` = ``arrangement``), ``kind`` naming each edit; with counted
                                      scenes also ``count``: another number of copies
    valse/counting-small-quant.json + images/valse/
                                      only with counted scenes (``counted`` > 0): a counting test in VALSE's
                                      format, dedicated held-out counted scenes, the foil's number one off

``counted`` is the share of one-object scenes drawn as counted scenes: 2-4 copies of one object, captioned with a
number ("three red circles"); 0 (the default) gives a world with no number words, the same scenes as before.

Benchmarks and retrieval are built from held-out (test) scenes only; the variations from train scenes only,
and a variation never creates a held-out pair or arrangement (held out geometrically: the train split stays
clean in any wording; :mod:`genemi.synthetic.heldout` checks texts the same way).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genemi.variation_area import image_variation_area
from genemi.synthetic.relation_edits import ARRANGEMENT_KINDS, KINDS, relation_edits
from genemi.synthetic.scenes import (COLOURS, GRID, MAX_COUNT, RELATIONS, SHAPES, SIZES, Relation, Rendered, Scene,
                                     SceneObject, SplitSpec, caption, captions, random_object, random_scene,
                                     relation_holds, render, sample_split, with_count)  # fmt: skip

SUGARCREPE_SUBSETS = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att")
#: the VALSE instrument the world's counting test is written as (small numbers, foil one off)
COUNTING_INSTRUMENT = "counting-small-quant"


@dataclass
class ShapesWorld:
    root: Path
    images: Path
    splits_json: Path
    train_scenes: Path
    test_scenes: Path
    coco_train: Path
    coco_test: Path
    sugarcrepe: Path
    winoground: Path
    aro: Path
    variations_jsonl: Path
    counts: dict
    relation_variations_jsonl: Path | None = None
    valse: Path | None = None  # the counting test's folder (None: the world has no counted scenes)

    @classmethod
    def at(cls, root: str | Path) -> "ShapesWorld":
        """The world written under ``root`` (paths only; ``counts`` from ``splits.json``)."""
        root = Path(root)
        counts = json.loads((root / "splits.json").read_text(encoding="utf-8")).get("counts", {})
        valse = root / "valse" if (root / "valse").is_dir() else None
        return cls(root, root / "images", root / "splits.json", root / "scenes_train.jsonl",
                   root / "scenes_test.jsonl", root / "coco_karpathy_train.json", root / "coco_karpathy_test.json",
                   root / "sugarcrepe", root / "winoground", root / "aro", root / "variations.jsonl", counts,
                   root / "relation_variations.jsonl", valse)  # fmt: skip


def _rle(mask: np.ndarray) -> dict:
    from genemi.masks import rle_encode

    rle = rle_encode(mask)
    return {"size": list(rle.size), "counts": list(rle.counts)}


def scene_annotation(scene_id: str, image: str, scene: Scene, size: int, supersample: int, spec: SplitSpec,
                     split: str) -> tuple[dict, Rendered]:  # fmt: skip
    """Render the scene and describe it: captions, per-object box / mask / area, relations, held-out elements."""
    r = render(scene, size, supersample)
    objects = []
    for k, (obj, mask, box) in enumerate(zip(scene.objects, r.masks, r.boxes)):
        objects.append({"index": k, "phrase": obj.phrase(), "shape": obj.shape, "colour": obj.colour,
                        "size": obj.size, "texture": obj.texture, "box": box, "area": int(mask.sum()),
                        "mask": _rle(mask)})  # fmt: skip
    ann = {"id": scene_id, "image": image, "split": split, "width": size, "height": size,
           "captions": captions(scene), "objects": objects, "scene": scene.to_dict(),
           "relations": [{"subject": x.subject, "relation": x.relation, "object": x.object} for x in scene.relations],
           "novel": spec.novel(scene)}  # fmt: skip
    return ann, r


def _jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# --- SugarCrepe-style negatives ------------------------------------------------------------------------


def sugarcrepe_negative(scene: Scene, subset: str, rng: random.Random) -> str | None:
    """A caption of ``subset``'s edit that is false of the scene (None when the edit does not apply)."""
    objs = scene.objects
    if subset in ("replace_att", "replace_obj"):  # of a counted scene: every copy (the caption names the group)
        k = rng.randrange(len(objs))
        if subset == "replace_att":
            changed = scene.with_item(k, colour=rng.choice([c for c in COLOURS if c != objs[k].colour]))
        else:
            changed = scene.with_item(k, shape=rng.choice([s for s in SHAPES if s != objs[k].shape]))
        return caption(changed)
    if subset == "replace_rel":
        if not scene.relations:
            return None
        j = rng.randrange(len(scene.relations))
        r = scene.relations[j]
        false = [x for x in RELATIONS if not relation_holds(scene, r.subject, x, r.object)]
        rels = list(scene.relations)
        rels[j] = Relation(r.subject, rng.choice(false), r.object)
        return caption(Scene(objs, tuple(rels)))
    if subset in ("swap_att", "swap_obj"):
        if len(scene.relations) != 1:  # 3 objects: the shared object is named twice, a swap is no permutation
            return None
        r = scene.relations[0]
        a, b = objs[r.subject], objs[r.object]
        key = "colour" if subset == "swap_att" else "shape"
        if getattr(a, key) == getattr(b, key):
            return None
        swapped = scene.with_object(r.subject, **{key: getattr(b, key)}).with_object(r.object, **{key: getattr(a, key)})
        return caption(swapped)
    if subset == "add_obj":
        present = {(o.shape, o.colour) for o in objs}
        while True:
            new = SceneObject(rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(list(SIZES)))
            if (new.shape, new.colour) not in present:
                return f"{caption(scene)} and a {new.phrase()}"
    if subset == "add_att":
        named_twice = {r.object for r in scene.relations} if len(scene.relations) > 1 else set()
        plain = [k for k, o in enumerate(objs) if o.texture == "plain" and k not in named_twice]
        if not plain:
            return None
        return caption(scene.with_item(rng.choice(plain), texture="striped"))
    raise ValueError(f"unknown SugarCrepe subset {subset!r}")


# --- Winoground / ARO ---------------------------------------------------------------------------------


def winoground_partner(scene: Scene, kind: str) -> Scene | None:
    """The second image of a 2x2 item: the two related objects swapped whole ('object') or only their colours.
    Scenes with one relation only, so the two captions hold the same words in another order."""
    if len(scene.relations) != 1:
        return None
    r = scene.relations[0]
    a, b = scene.objects[r.subject], scene.objects[r.object]
    if kind == "object":
        if a.phrase() == b.phrase():
            return None
        fields = ("shape", "colour", "size", "texture")
    else:
        if a.colour == b.colour or a.shape == b.shape:
            return None
        fields = ("colour",)
    return scene.with_object(r.subject, **{f: getattr(b, f) for f in fields}).with_object(
        r.object, **{f: getattr(a, f) for f in fields})


def _union_box(boxes: list[list[int]], size: int, pad: int = 2) -> list[int]:
    x0 = max(0, min(b[0] for b in boxes) - pad)
    y0 = max(0, min(b[1] for b in boxes) - pad)
    x1 = min(size, max(b[2] for b in boxes) + pad)
    y1 = min(size, max(b[3] for b in boxes) + pad)
    return [x0, y0, x1 - x0, y1 - y0]


# --- variations ---------------------------------------------------------------------------------------


def sibling_scenes(scene: Scene, index: int, count: int, spec: SplitSpec,
                   rng: random.Random) -> list[tuple[str, Scene]]:
    """``count`` re-renderings of ``scene`` with object ``index``'s colour, shape or size changed (kinds in turn;
    in a counted scene every copy's), each distinct and free of held-out elements."""
    obj = scene.objects[index]
    options = {"colour": [c for c in COLOURS if c != obj.colour], "shape": [s for s in SHAPES if s != obj.shape],
               "size": [s for s in SIZES if s != obj.size]}  # fmt: skip
    for values in options.values():
        rng.shuffle(values)
    kinds = ["colour", "shape", "size"]
    rng.shuffle(kinds)
    out: list[tuple[str, Scene]] = []
    for step in range(count * 3):
        kind = kinds[step % 3]
        while options[kind]:
            changed = scene.with_item(index, **{kind: options[kind].pop()})
            if not spec.novel(changed):
                out.append((kind, changed))
                break
        if len(out) == count:
            break
    return out


#: the ``item`` of a relation/order edit's record: the edit is of the scene's arrangement, not of one object
ARRANGEMENT_ITEM = "arrangement"


def variation_group(ann: dict, scene: Scene, edits: list[tuple[str, Scene]], slot: str, item: str, images: Path,
                    size: int, supersample: int, short) -> list[dict]:  # fmt: skip
    """Render one sibling group (``edits``: (kind, edited scene) of one item, or of the scene's arrangement)
    under ``images/variations/`` and return its :class:`~genemi.records.VariationRecord` rows, IVA computed on the
    siblings' pixels, no ITM (nothing scored them). ``short(edited scene)`` names the new item."""
    stem = ann["id"].replace("/", "_")
    pixels, rows = [], []
    for v, (kind, changed) in enumerate(edits):
        name = f"{stem}_{slot}_var{v}"
        save = f"variations/{name}.png"
        img = render(changed, size, supersample).image
        img.save(images / save)
        pixels.append(np.asarray(img))
        rows.append({"id": f"{ann['id']}/{slot}/var_{v}", "parent_id": f"{ann['id']}/{slot}",
                     "origin_name": ann["id"], "item": item, "name": name, "source": ann["image"], "save": save,
                     "short": short(changed), "portrayal": f"{kind}: {item} -> {short(changed)}", "kind": kind,
                     "tag2text_caption": caption(scene), "original_captions": ann["captions"],
                     "captions": captions(changed), "itm_score": None})  # fmt: skip
    iva = round(image_variation_area(np.stack(pixels)), 4)
    for row in rows:
        row.update(iva_score=iva, iva_image=iva, iva_window=iva)  # the window is the whole (small) image
    return rows


# --- the writer ---------------------------------------------------------------------------------------


def write_world(out_dir: str | Path, num_train: int = 200, num_test: int = 100, size: int = 64, seed: int = 0,
                variations_per_item: int = 3, relation_variations: int = 4, supersample: int = 4,
                texture_prob: float = 0.25, vga_pairs: int = 4, vga_per_pair: int = 25, winoground: int | None = None,
                spec: SplitSpec | None = None, counted: float = 0.0, counting_items: int = 200) -> ShapesWorld:  # fmt: skip
    """Write the whole world (see the module docstring); deterministic for the arguments. ``counting_items``:
    the counting test's size (written only when ``counted`` > 0)."""
    if not 0.0 <= counted <= 1.0:
        raise ValueError(f"counted must be a share in [0, 1], not {counted}")
    spec = spec or SplitSpec.default()
    root = Path(out_dir)
    images = root / "images"
    for sub in ("train", "test", "variations"):
        (images / sub).mkdir(parents=True, exist_ok=True)
    scenes = {"train": sample_split(spec, "train", num_train, seed, texture_prob=texture_prob, counted=counted),
              "test": sample_split(spec, "test", num_test, seed, texture_prob=texture_prob, counted=counted)}
    anns: dict[str, list[dict]] = {}
    renders: dict[str, list] = {}
    for split, items in scenes.items():
        anns[split], renders[split] = [], []
        for i, scene in enumerate(items):
            image = f"{split}/{i:05d}.png"
            ann, r = scene_annotation(f"{split}/{i:05d}", image, scene, size, supersample, spec, split)
            r.image.save(images / image)
            anns[split].append(ann)
            renders[split].append(r)
    splits_json = root / "splits.json"
    splits_json.write_text(json.dumps({**spec.to_dict(), "seed": seed, "image_size": size,
                                       "supersample": supersample, "texture_prob": texture_prob, "counted": counted,
                                       "counts": {k: len(v) for k, v in scenes.items()},
                                       "shapes": list(SHAPES), "colours": list(COLOURS), "sizes": list(SIZES),
                                       "relations": list(RELATIONS)}, indent=1))  # fmt: skip
    train_scenes, test_scenes = root / "scenes_train.jsonl", root / "scenes_test.jsonl"
    _jsonl(train_scenes, anns["train"])
    _jsonl(test_scenes, anns["test"])

    coco_train = root / "coco_karpathy_train.json"
    coco_train.write_text(json.dumps([{"image": a["image"], "caption": c, "image_id": a["id"]}
                                      for a in anns["train"] for c in a["captions"]]))  # fmt: skip
    coco_test = root / "coco_karpathy_test.json"
    coco_test.write_text(json.dumps([{"image": a["image"], "caption": a["captions"], "image_id": a["id"]}
                                     for a in anns["test"]]))  # fmt: skip

    # SugarCrepe: one item per (test scene, subset) where the edit applies.
    rng = random.Random(f"{seed}:sugarcrepe")
    sugar = root / "sugarcrepe"
    sugar.mkdir(exist_ok=True)
    counts: dict = {"train": num_train, "test": num_test}
    for subset in SUGARCREPE_SUBSETS:
        items = {}
        for a, scene in zip(anns["test"], scenes["test"]):
            neg = sugarcrepe_negative(scene, subset, rng)
            if neg is not None and neg != caption(scene):
                items[str(len(items))] = {"filename": a["image"], "caption": caption(scene), "negative_caption": neg}
        (sugar / f"{subset}.json").write_text(json.dumps(items, indent=1))
        counts[f"sugarcrepe/{subset}"] = len(items)

    # Winoground: 2x2 items from test scenes with a relation; partner images rendered next to them.
    wino = root / "winoground"
    (wino / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, scene in enumerate(scenes["test"]):
        if winoground is not None and len(rows) >= winoground:
            break
        kind = "object" if i % 2 == 0 else "colour"
        partner = winoground_partner(scene, kind) or winoground_partner(scene, "object")
        if partner is None:
            continue
        c0, c1 = caption(scene), caption(partner)
        if c0 == c1:
            continue
        n = len(rows)
        render(scene, size, supersample).image.save(wino / "images" / f"ex{n:05d}_0.png")
        render(partner, size, supersample).image.save(wino / "images" / f"ex{n:05d}_1.png")
        rows.append({"id": n, "image_0": f"ex{n:05d}_0", "image_1": f"ex{n:05d}_1", "caption_0": c0,
                     "caption_1": c1, "tag": kind, "source": anns["test"][i]["id"]})  # fmt: skip
    _jsonl(wino / "examples.jsonl", rows)
    counts["winoground"] = len(rows)

    # ARO VG-Relation: each stated relation of a test scene; false caption swaps subject and object.
    aro = root / "aro"  # image paths relative to images/ (pass it as the benchmark's image folder)
    aro.mkdir(exist_ok=True)
    (images / "aro").mkdir(exist_ok=True)
    vgr = []
    for a, scene, r in zip(anns["test"], scenes["test"], renders["test"]):
        for rel in scene.relations:
            s, o = scene.objects[rel.subject].phrase(), scene.objects[rel.object].phrase()
            if s == o:
                continue
            x, y, w, h = _union_box([r.boxes[rel.subject], r.boxes[rel.object]], size)
            vgr.append({"image_id": a["id"], "image_path": a["image"], "bbox_x": x, "bbox_y": y,
                        "bbox_w": w, "bbox_h": h, "relation_name": rel.relation,
                        "true_caption": f"the {s} is {rel.relation} the {o}",
                        "false_caption": f"the {o} is {rel.relation} the {s}"})  # fmt: skip
    (aro / "visual_genome_relation.json").write_text(json.dumps(vgr, indent=1))
    counts["aro_vg_relation"] = len(vgr)

    # ARO VG-Attribution: dedicated 2-object held-out scenes over a few colour pairs (>= 25 items per pair, the
    # benchmark's threshold); false caption swaps the two attributes.
    arng = random.Random(f"{seed}:vga")
    pairs = []
    colours = list(COLOURS)
    while len(pairs) < vga_pairs:
        c = tuple(arng.sample(colours, 2))
        if c not in pairs:
            pairs.append(c)
    vga = []
    for c1, c2 in pairs:
        made = 0
        while made < vga_per_pair:
            scene = random_scene(arng, num_objects=2, texture_prob=0.0, relations=RELATIONS[:4])
            s1, s2 = arng.sample(SHAPES, 2)
            scene = scene.with_object(0, colour=c1, shape=s1).with_object(1, colour=c2, shape=s2)
            if not spec.novel(scene):
                continue
            name = f"aro/vga_{len(vga):05d}.png"
            r = render(scene, size, supersample)
            r.image.save(images / name)
            x, y, w, h = _union_box(r.boxes, size)
            vga.append({"image_id": name, "image_path": name, "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h,
                        "attributes": [c1, c2], "true_caption": f"the {c1} {s1} and the {c2} {s2}",
                        "false_caption": f"the {c2} {s1} and the {c1} {s2}"})  # fmt: skip
            made += 1
    (aro / "visual_genome_attribution.json").write_text(json.dumps(vga, indent=1))
    counts["aro_vg_attribution"] = len(vga)
    valse = _write_counting(root, images, spec, seed, size, supersample, texture_prob, counting_items) \
        if counted > 0 else None
    if valse is not None:
        counts[f"valse/{COUNTING_INSTRUMENT}"] = counting_items

    # Ground-truth variations of the train scenes: one object's colour/shape/size, and relation/order edits.
    vrng = random.Random(f"{seed}:variations")
    records = []
    for a, scene in zip(anns["train"], scenes["train"]):
        # an item is one object; in a counted scene, the group of copies ("two red circles")
        items = [(k, 1) for k in range(len(scene.objects))] if scene.relations else scene.groups()
        for k, n in items:
            siblings = sibling_scenes(scene, k, variations_per_item, spec, vrng)
            if len(siblings) >= 2:
                records += variation_group(a, scene, siblings, f"item{k}", scene.objects[k].phrase(count=n), images,
                                           size, supersample, lambda changed, k=k, n=n: changed.objects[k].phrase(count=n))
    variations_jsonl = root / "variations.jsonl"
    _jsonl(variations_jsonl, records)
    counts["variations"] = len(records)
    rrng = random.Random(f"{seed}:relation_variations")
    relation_records = []
    for a, scene in zip(anns["train"], scenes["train"]):
        edits = relation_edits(scene, relation_variations, spec, rrng,
                               KINDS if counted > 0 else ARRANGEMENT_KINDS) if relation_variations else []
        if edits:
            relation_records += variation_group(a, scene, edits, "arrangement", ARRANGEMENT_ITEM, images, size,
                                                supersample, caption)
    relation_jsonl = root / "relation_variations.jsonl"
    _jsonl(relation_jsonl, relation_records)
    counts["relation_variations"] = len(relation_records)
    return ShapesWorld(root, images, splits_json, train_scenes, test_scenes, coco_train, coco_test, sugar, wino, aro,
                       variations_jsonl, counts, relation_jsonl, valse)  # fmt: skip


def _write_counting(root: Path, images: Path, spec: SplitSpec, seed: int, size: int, supersample: int,
                    texture_prob: float, items: int) -> Path:  # fmt: skip
    """The counting test (VALSE's file format, instrument :data:`COUNTING_INSTRUMENT`): ``items`` dedicated
    held-out counted scenes (1 to 4 copies of an object with a held-out (shape, colour) pair, numbers drawn
    evenly), caption true of the image, foil the same caption with the number one off ("two red circles" vs
    "three red circles")."""
    crng = random.Random(f"{seed}:counting")
    folder = root / "valse"
    folder.mkdir(exist_ok=True)
    (images / "valse").mkdir(exist_ok=True)
    out = {}
    for n in range(items):
        shape, colour = crng.choice(spec.heldout_pairs)
        obj = random_object(crng, texture_prob)
        single = Scene((SceneObject(shape, colour, obj.size, obj.texture, (crng.randrange(GRID), crng.randrange(GRID))),))
        have = n % MAX_COUNT + 1
        scene = with_count(single, have, crng)
        foil = have + crng.choice([d for d in (-1, 1) if 1 <= have + d <= MAX_COUNT])
        name = f"valse/count_{n:05d}.png"
        render(scene, size, supersample).image.save(images / name)
        out[str(n)] = {"dataset": "shapes-world", "image_file": name, "caption": caption(scene),
                       "foil": caption(with_count(scene, foil, crng)), "count": have, "foil_count": foil,
                       "mturk": {"caption": 3}}  # fmt: skip
    (folder / f"{COUNTING_INSTRUMENT}.json").write_text(json.dumps(out, indent=1))
    return folder


def read_scene_annotations(path: str | Path) -> list[dict]:
    """The scene annotation lines (``scenes_*.jsonl``) with each scene spec parsed back into a :class:`Scene`."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            ann = json.loads(line)
            ann["scene"] = Scene.from_dict(ann["scene"])
            out.append(ann)
    return out
