"""The ground-truth tag/ground/segment backends: the pipeline's first three stages against known answers."""


import numpy as np
import pytest

from genemi.generation_pipeline import pipeline
from genemi.masks import rle_decode
from genemi.manifest import read_records
from genemi.records import MaskRecord, TagRecord
from genemi.synthetic.ground_truth import SceneIndex, decode_mask, match_item
from genemi.synthetic.world import read_scene_annotations, write_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("gt_world"), num_train=8, num_test=4, size=48, seed=2,
                       vga_pairs=1, vga_per_pair=2)


def test_scene_index_finds_scenes_by_pixels(world):
    from PIL import Image

    index = SceneIndex.for_root(world.images)
    for ann in read_scene_annotations(world.train_scenes):
        with Image.open(world.images / ann["image"]) as img:
            assert index.find(img)["id"] == ann["id"]
            assert index.find(np.asarray(img))["id"] == ann["id"]
    noise = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    assert index.find(noise) is None


def test_match_item():
    objects = [{"phrase": "small red circle"}, {"phrase": "large striped red square"}]
    assert match_item("small red circle", objects) == [objects[0]]
    assert match_item("red", objects) == objects
    assert match_item("blue circle", objects) == []


def test_pipeline_tag_ground_segment_reproduce_the_annotations(world, tmp_path):
    out = tmp_path / "gen"
    rc = pipeline.main(["--annotation-file", str(world.coco_train), "--root-dir", str(world.images),
                        "--output-dir", str(out), "--stages", "tag,ground,segment", "--tagger", "ground_truth",
                        "--grounder", "ground_truth", "--segmenter", "ground_truth", "--device", "cpu",
                        "--no-progress"])
    assert rc == 0
    anns = {a["image"]: a for a in read_scene_annotations(world.train_scenes)}
    tags = read_records(out / "tags.jsonl", TagRecord)
    assert len(tags) == len(anns)
    for rec in tags:
        ann = anns[rec.image]
        assert rec.caption == ann["captions"][0]
        assert sorted(rec.tags) == sorted({o["phrase"] for o in ann["objects"] if o["area"] > 0})
    masks = read_records(out / "masks.jsonl", MaskRecord)
    assert len(masks) == len(anns)
    for rec in masks:
        ann = anns[rec.image]
        assert rec.status == "ok" and not rec.ungrounded
        by_phrase = {}
        for o in ann["objects"]:
            by_phrase.setdefault(o["phrase"], []).append(o)
        for item in rec.items:
            truth = by_phrase[item.item]
            # identical phrases in one scene: the stage keeps the best-scoring box of the item (one of them)
            match = [o for o in truth if o["box"] == [int(v) for v in item.box]]
            assert match, (item.item, item.box)
            assert (rle_decode(item.mask) == decode_mask(match[0])).all()
            assert item.area == match[0]["area"] and item.mask_score == 1.0
