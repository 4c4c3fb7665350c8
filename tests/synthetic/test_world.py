"""The compositional shapes world: deterministic pixels, exact boxes/masks, true captions, clean splits,
exports that load through genemi's own readers, and IVA computed on the real pixels."""

import json
import random
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genemi.variation_area import image_variation_area
from genemi.masks import rle_decode
from genemi.records import RLE
from genemi.synthetic.scenes import (BACKGROUND, COLOURS, RELATIONS, SHAPES, Relation, Scene, SceneObject, SplitSpec,
                                     captions, image_hash, relation_holds, render, sample_split)
from genemi.synthetic.world import SUGARCREPE_SUBSETS, read_scene_annotations, sibling_scenes, write_world

SCENE = Scene((SceneObject("star", "red", "small", "plain", (0, 1)),
               SceneObject("hexagon", "blue", "large", "striped", (2, 1)),
               SceneObject("circle", "yellow", "large", "plain", (2, 0), on_top_of=1)),
              (Relation(0, "left of", 1), Relation(2, "on top of", 1)))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("world"), num_train=40, num_test=40, size=48, seed=3,
                       vga_pairs=2, vga_per_pair=25)


class FileEmbedder:
    """Random unit vectors; an image that cannot be opened is reported as missing (what the harness counts)."""

    key = "files"

    def embed_images(self, images):
        errors = []
        for ref in images:
            try:
                Image.open(ref.path).verify()
                errors.append(None)
            except OSError as exc:
                errors.append(str(exc))
        rng = np.random.default_rng(0)
        v = rng.normal(size=(len(images), 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True), errors

    def embed_texts(self, texts):
        rng = np.random.default_rng(1)
        v = rng.normal(size=(len(texts), 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


# --- rendering ---------------------------------------------------------------------------------------------


def test_rendering_is_deterministic_and_pinned():
    a, b = render(SCENE, 64), render(SCENE, 64)
    assert image_hash(a.image) == image_hash(b.image)
    assert all((m1 == m2).all() for m1, m2 in zip(a.masks, b.masks))
    # Pinned: a change to the renderer that moves any pixel must be deliberate.
    assert image_hash(render(SCENE, 64).image) == PINNED_64
    assert image_hash(render(SCENE, 32, supersample=1).image) == PINNED_32_HARD


def test_any_resolution_and_antialiasing():
    hard, soft = render(SCENE, 96, supersample=1), render(SCENE, 96, supersample=4)
    assert hard.image.size == (96, 96) and soft.image.size == (96, 96)
    colours_hard = {tuple(p) for p in np.asarray(hard.image).reshape(-1, 3)}
    colours_soft = {tuple(p) for p in np.asarray(soft.image).reshape(-1, 3)}
    assert len(colours_soft) > len(colours_hard)  # blended edge pixels exist only with anti-aliasing
    assert render(SCENE, 200).image.size == (200, 200)


@pytest.mark.parametrize("supersample", [1, 4])
def test_boxes_and_masks_match_the_pixels(supersample):
    r = render(SCENE, 64, supersample)
    pix = np.asarray(r.image).astype(int)
    union = np.zeros((64, 64), bool)
    for obj, mask, box in zip(SCENE.objects, r.masks, r.boxes):
        ys, xs = np.nonzero(mask)
        assert box == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        if obj.texture == "plain":
            full = r.coverage[SCENE.objects.index(obj)] > 0.999
            assert full.sum() > 0 and (pix[full] == COLOURS[obj.colour]).all()
        assert not (mask & union).any()  # masks are disjoint (visible surfaces)
        union |= mask
    untouched = sum(r.coverage) < 1e-9
    assert (pix[untouched] == BACKGROUND).all()
    if supersample == 1:  # hard edges: every pixel is background or exactly in one mask
        assert (pix[~union] == BACKGROUND).all()


def test_stacked_object_touches_and_relations_hold():
    for rel in SCENE.relations:
        assert relation_holds(SCENE, rel.subject, rel.relation, rel.object)
    assert relation_holds(SCENE, 2, "above", 1) and not relation_holds(SCENE, 2, "left of", 1)
    for ss in (1, 4):  # the stacked circle's bottom edge meets the hexagon's top edge (up to the shared pixel row)
        r = render(SCENE, 90, supersample=ss)
        assert abs(r.boxes[2][3] - r.boxes[1][1]) <= 1


# --- captions and splits -----------------------------------------------------------------------------------


def test_captions_match_the_scene():
    spec = SplitSpec.default()
    for scene in sample_split(spec, "train", 60, seed=1) + sample_split(spec, "test", 60, seed=1):
        caps = captions(scene)
        assert len(caps) >= 2 and len(set(caps)) == len(caps)
        for cap in caps:
            for obj in scene.objects:
                assert obj.phrase() in cap
            for other in SHAPES:
                if all(o.shape != other for o in scene.objects):
                    assert f" {other}" not in cap
        for rel in scene.relations:
            assert relation_holds(scene, rel.subject, rel.relation, rel.object)
            assert rel.relation in caps[0]


def test_splits_hold_out_what_they_claim(world):
    spec = json.loads(world.splits_json.read_text())
    pairs = {tuple(p) for p in spec["heldout_pairs"]}
    arrangements = {tuple(a) for a in spec["heldout_arrangements"]}
    assert len(pairs) >= 4 and len(arrangements) >= 4
    train, test = read_scene_annotations(world.train_scenes), read_scene_annotations(world.test_scenes)
    for ann in train:
        s = ann["scene"]
        assert not ann["novel"]
        assert all((o.shape, o.colour) not in pairs for o in s.objects)
        assert all((s.objects[r.subject].shape, r.relation, s.objects[r.object].shape) not in arrangements
                   for r in s.relations)
    assert all(ann["novel"] for ann in test)
    # every colour and every shape is still seen in training; only the combinations are new
    seen_colours = {o.colour for a in train for o in a["scene"].objects}
    assert len(seen_colours) >= 6
    # the variations stay in the train split too
    heldout = SplitSpec.default()
    for line in world.variations_jsonl.read_text().splitlines():
        rec = json.loads(line)
        assert rec["source"].startswith("train/")
        shape_colour = rec["short"].split()[-2:]
        assert (shape_colour[1], shape_colour[0]) not in heldout.heldout_pairs


def test_world_is_deterministic(tmp_path):
    a = write_world(tmp_path / "a", num_train=6, num_test=6, size=32, seed=5, vga_pairs=1, vga_per_pair=3)
    b = write_world(tmp_path / "b", num_train=6, num_test=6, size=32, seed=5, vga_pairs=1, vga_per_pair=3)
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    for f in files:
        if f.suffix == ".png":
            assert image_hash(Image.open(a.root / f)) == image_hash(Image.open(b.root / f)), f
        else:
            assert (a.root / f).read_bytes() == (b.root / f).read_bytes(), f


def test_scene_annotations_masks_decode_to_the_rendered_masks(world):
    ann = read_scene_annotations(world.test_scenes)[0]
    r = render(ann["scene"], ann["width"], json.loads(world.splits_json.read_text())["supersample"])
    for obj, mask in zip(ann["objects"], r.masks):
        decoded = rle_decode(RLE(**obj["mask"]))
        assert (decoded == mask).all() and obj["area"] == int(mask.sum())
    img = Image.open(world.images / ann["image"])
    assert image_hash(img) == image_hash(r.image)


# --- exports through the real loaders ----------------------------------------------------------------------


def test_karpathy_captions_load_in_the_trainer_and_retrieval(world):
    from genemi.evaluation.benchmarks.retention import Retrieval
    from genemi.evaluation.runner import evaluate
    from genemi.training.data import read_coco_pairs

    pairs = read_coco_pairs(world.coco_train, world.images)
    assert len(pairs) == 40 and all(Path(p.image).is_file() and len(p.captions) >= 2 for p in pairs)
    bench = Retrieval(world.coco_test, world.images)
    res = evaluate(FileEmbedder(), [bench])["retrieval"]
    assert res.items == 40 and res.missing_images == 0


def test_benchmark_exports_load_and_score(world):
    from genemi.evaluation.benchmarks import build_benchmarks
    from genemi.evaluation.runner import evaluate

    benches = build_benchmarks(["sugarcrepe", "winoground", "aro"], {
        "sugarcrepe": {"root": world.sugarcrepe, "images": world.images},
        "winoground": {"root": world.winoground},
        "aro": {"root": world.aro, "images": world.images}})
    results = evaluate(FileEmbedder(), benches)
    assert set(results) == {"sugarcrepe", "winoground", "aro_vg_relation", "aro_vg_attribution"}
    for res in results.values():
        assert res.items > 0 and res.missing_images == 0 and res.evaluated == res.items
    assert all(s in benches[0].items and benches[0].items[s] for s in SUGARCREPE_SUBSETS)
    vga = results["aro_vg_attribution"].metrics
    assert vga["attribute_pairs_used"] == 2  # 25 items per colour pair: both pairs reach ARO's threshold
    vgr = results["aro_vg_relation"].metrics
    assert vgr["relations_used"] >= 3


def test_sugarcrepe_negatives_are_false_and_positives_true(world):
    anns = {a["image"]: a for a in read_scene_annotations(world.test_scenes)}
    for subset in SUGARCREPE_SUBSETS:
        items = json.loads((world.sugarcrepe / f"{subset}.json").read_text())
        for item in items.values():
            ann = anns[item["filename"]]
            assert item["caption"] == ann["captions"][0]
            assert item["negative_caption"] not in captions(ann["scene"])
            if subset == "add_obj":
                assert item["negative_caption"].startswith(item["caption"] + " and a ")
            if subset.startswith("swap"):
                assert sorted(item["negative_caption"].split()) == sorted(item["caption"].split())
            if subset == "add_att":
                assert "striped" in item["negative_caption"]
                assert len(item["negative_caption"].split()) == len(item["caption"].split()) + 1


def test_winoground_and_aro_items_are_word_order_swaps(world):
    rows = [json.loads(l) for l in (world.winoground / "examples.jsonl").read_text().splitlines()]
    assert rows
    for row in rows:
        assert row["caption_0"] != row["caption_1"]
        assert sorted(row["caption_0"].split()) == sorted(row["caption_1"].split())
        a = np.asarray(Image.open(world.winoground / "images" / f"{row['image_0']}.png"))
        b = np.asarray(Image.open(world.winoground / "images" / f"{row['image_1']}.png"))
        assert (a != b).any()
    for item in json.loads((world.aro / "visual_genome_relation.json").read_text()):
        assert item["relation_name"] in RELATIONS
        assert sorted(item["true_caption"].split()) == sorted(item["false_caption"].split())


def test_variation_records_load_filter_and_mine(world):
    from genemi.training.data import build_variation_table, filter_variations, read_variation_records
    from genemi.training.mining import mining_spec

    records = read_variation_records(world.variations_jsonl)
    assert records and all(r.itm_score is None for r in records)  # nothing invented
    assert all(r.iva_score is not None and r.iva_score > 0 for r in records)
    kept, stats = filter_variations(records, None, 0.0)
    assert stats["kept"] == len(records)
    kept, stats = filter_variations(records, 0.0, None)  # an ITM filter drops them: there is no ITM
    assert stats["kept"] == 0
    for mode in ("allinone", "item_based", "image_based"):
        table = build_variation_table(records, mining_spec(mode), world.images)
        assert table.groups and all(Path(p.image).is_file() for p in table.pairs)
    # the stored IVA is the real formula on the saved sibling images
    groups = {}
    for r in records:
        groups.setdefault(r.parent_id, []).append(r)
    for parent, members in list(groups.items())[:10]:
        stack = np.stack([np.asarray(Image.open(world.images / m.save).convert("RGB")) for m in members])
        assert members[0].iva_score == pytest.approx(image_variation_area(stack), abs=1e-4)


# --- IVA of re-rendered siblings ---------------------------------------------------------------------------


def test_colour_changes_are_iva_visible():
    # Any two colours (and background) differ enough that a one-in-three change passes IVA's threshold (10).
    values = [np.array(c, float) for c in [*COLOURS.values(), BACKGROUND]]
    for a, b in combinations(values, 2):
        assert np.abs(a - b).mean() * np.sqrt(2) / 3 > 10


@pytest.mark.parametrize("obj", [0, 2])
def test_iva_of_a_colour_sibling_group_is_the_objects_share(obj):
    scene = SCENE.with_object(1, texture="plain")
    siblings = [scene.with_object(obj, colour=c) for c in ("green", "purple", "white")]
    hard = [render(s, 64, supersample=1) for s in siblings]
    stack = np.stack([np.asarray(r.image) for r in hard])
    share = 100.0 * hard[0].masks[obj].sum() / 64**2
    assert image_variation_area(stack) == pytest.approx(share, abs=1e-9)
    # anti-aliased: equal up to the object's boundary pixels
    soft = [render(s, 64) for s in siblings]
    iva = image_variation_area(np.stack([np.asarray(r.image) for r in soft]))
    cover = soft[0].coverage[obj]
    lo, hi = 100.0 * (cover > 0.999).sum() / 64**2, 100.0 * (cover > 0).sum() / 64**2
    assert lo <= iva <= hi and abs(iva - 100.0 * soft[0].masks[obj].sum() / 64**2) < 0.5 * (hi - lo) + 1e-9


def test_iva_of_a_mixed_sibling_group_lies_between_intersection_and_union():
    spec = SplitSpec.default()
    scene = SCENE.with_object(1, texture="plain")
    siblings = sibling_scenes(scene, 0, 3, spec, random.Random(0))
    assert len(siblings) == 3 and len({kind for kind, _ in siblings}) == 3  # colour, shape and size
    hard = [render(s, 64, supersample=1) for _, s in siblings]
    stack = np.stack([np.asarray(r.image) for r in hard])
    masks = [r.masks[0] for r in hard]
    union, inter = np.logical_or.reduce(masks), np.logical_and.reduce(masks)
    changed = union & ~inter  # pixels the object covers in some siblings only
    iva = image_variation_area(stack)
    # colours all differ, so every pixel of the union varies: IVA is the changed object's (union) share
    assert iva == pytest.approx(100.0 * union.sum() / 64**2)
    assert changed.any()


PINNED_64 = "5dbee186c3b31fb16fcc62022794ef89fdc17bff9f95e4e1d20a6411efa65585"
PINNED_32_HARD = "5771641402ab9dc2ddba04547b4bbc150b342ade1bb475427183a80cb2478fad"
