"""Counted scenes of the shapes world ("two red circles"), count-change edits and the world's counting test.

Expected values come from hand-written captions and from the rendered pixels (objects counted as connected
regions of non-background pixels), not from the code that placed them."""

import json
import random
import re

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import label

from genemi.evaluation.benchmarks.valse import Valse
from genemi.synthetic.heldout import heldout_named
from genemi.synthetic.parsing import boxes_apart, parse_caption, parse_objects
from genemi.synthetic.relation_edits import KINDS, relation_edits
from genemi.synthetic.scenes import (BACKGROUND, Relation, Scene, SceneObject, SplitSpec, caption, captions, layout,
                                     render, sample_split, with_count)
from genemi.synthetic.world import COUNTING_INSTRUMENT, read_scene_annotations, write_world

SPEC = SplitSpec.default()
NUMBER = {"a": 1, "two": 2, "three": 3, "four": 4}


def objects_in(image) -> int:
    """Objects drawn: connected regions (8-neighbourhood) of pixels away from the grey background."""
    pixels = np.asarray(image, dtype=np.int16)
    drawn = np.abs(pixels - np.array(BACKGROUND)).max(axis=-1) > 8  # a dark stripe of white is 18 off
    return label(drawn, structure=np.ones((3, 3)))[1]


def stated_count(text: str) -> int:
    first = re.sub(r"^(a picture of |there are )", "", text).split()[0]
    return NUMBER[first]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("cworld"), num_train=80, num_test=30, size=48, seed=3,
                       vga_pairs=1, vga_per_pair=3, counted=0.6, counting_items=24)


def test_counted_captions_are_written_and_read_as_by_hand():
    obj = SceneObject("cross", "red", "small", "striped", cell=(0, 0))
    three = Scene((obj, SceneObject("cross", "red", "small", "striped", cell=(2, 0)),
                   SceneObject("cross", "red", "small", "striped", cell=(1, 2))))
    assert captions(three) == ["three small striped red crosses", "a picture of three small striped red crosses",
                               "three small striped red crosses on a grey background"]
    assert caption(Scene((SceneObject("circle", "blue", cell=(1, 1)),))) == "a large blue circle"
    mixed = Scene((SceneObject("star", "green", cell=(0, 0)), SceneObject("circle", "red", cell=(1, 1)),
                   SceneObject("star", "green", cell=(2, 2))))
    assert caption(mixed) == "two large green stars and a large red circle"
    objects, relations = parse_objects("There are four blue squares.")
    assert [(o.shape, o.colour, o.size) for o in objects] == [("square", "blue", "large")] * 4 and relations == []
    scene = parse_caption("a picture of three small striped red crosses", seed=2)
    assert scene.count() == 3 and objects_in(render(scene, 48).image) == 3
    assert boxes_apart(layout(scene))


def test_with_count_adds_and_removes_copies_on_free_cells():
    one = Scene((SceneObject("hexagon", "orange", cell=(1, 1)),))
    rng = random.Random(0)
    for n in (1, 2, 3, 4):
        scene = with_count(one, n, rng)
        assert scene.count() == n and len({o.cell for o in scene.objects}) == n
        assert objects_in(render(scene, 48).image) == n
        assert caption(scene).split()[0] == {1: "a", 2: "two", 3: "three", 4: "four"}[n]
    four = with_count(one, 4, rng)
    assert with_count(four, 2, rng).objects == four.objects[:2]  # removing copies keeps the others where they are
    with pytest.raises(ValueError, match="count must be 1 to 4"):
        with_count(one, 5, rng)
    related = Scene((SceneObject("star", "red", cell=(0, 1)), SceneObject("cross", "red", cell=(2, 1))),
                    (Relation(0, "left of", 1),))
    with pytest.raises(ValueError, match="not one group"):
        with_count(related, 2, rng)


def test_count_edits_change_only_the_number():
    scene = with_count(Scene((SceneObject("circle", "purple", "small", cell=(0, 0)),)), 2, random.Random(1))
    assert not SPEC.novel(scene)
    edits = relation_edits(scene, 4, SPEC, random.Random(5), KINDS)
    assert sorted(e.count() for _, e in edits) == [1, 3, 4] and {k for k, _ in edits} == {"count"}
    for _, edited in edits:
        words, original = caption(edited).split(), caption(scene).split()
        assert words[1:-1] == original[1:-1] and words[-1].rstrip("s") == original[-1].rstrip("s")
        assert objects_in(render(edited, 48).image) == edited.count()
    # a world without counted scenes makes none: the default kinds leave a one-object scene alone
    assert relation_edits(scene, 4, SPEC, random.Random(5)) == []


def test_a_world_without_counted_scenes_has_no_number_words(tmp_path):
    plain = write_world(tmp_path / "plain", num_train=40, num_test=10, size=32, seed=3, vga_pairs=1, vga_per_pair=2)
    texts = json.dumps(json.loads(plain.coco_train.read_text())) + plain.relation_variations_jsonl.read_text()
    assert not re.search(r"\b(two|three|four)\b", texts)
    assert plain.valse is None and not (tmp_path / "plain" / "valse").exists()
    assert all(json.loads(line)["kind"] != "count" for line in plain.relation_variations_jsonl.read_text().splitlines())


def test_counted_world_captions_match_the_pixels_and_stay_off_the_heldout_split(world):
    counted = 0
    for path in (world.train_scenes, world.test_scenes):
        for ann in read_scene_annotations(path):
            scene = ann["scene"]
            if scene.relations:
                continue
            image = Image.open(world.images / ann["image"])
            for text in ann["captions"]:
                assert stated_count(text) == objects_in(image), (ann["id"], text)
            counted += scene.count() > 1
            if ann["split"] == "train":
                assert not SPEC.novel(scene)
    assert counted >= 5
    for entry in json.loads(world.coco_train.read_text()):
        assert not heldout_named(entry["caption"], SPEC), entry


def test_counted_world_has_count_edits_in_its_relation_variations(world):
    rows = [json.loads(line) for line in world.relation_variations_jsonl.read_text().splitlines()]
    count_rows = [r for r in rows if r["kind"] == "count"]
    assert len(count_rows) >= 5
    for row in count_rows:
        image = Image.open(world.images / row["save"])
        assert stated_count(row["captions"][0]) == objects_in(image), row["id"]
        assert stated_count(row["captions"][0]) != stated_count(row["tag2text_caption"])
        for text in row["captions"]:
            assert not heldout_named(text, SPEC), text
    # relation scenes keep their arrangement edits
    assert {r["kind"] for r in rows} - {"count"}


def test_the_counting_test_is_valse_format_and_true_to_its_images(world):
    items = json.loads((world.valse / f"{COUNTING_INSTRUMENT}.json").read_text())
    assert len(items) == 24 == world.counts[f"valse/{COUNTING_INSTRUMENT}"]
    assert sorted({i["count"] for i in items.values()}) == [1, 2, 3, 4]
    for item in items.values():
        image = Image.open(world.images / item["image_file"])
        assert objects_in(image) == item["count"] == stated_count(item["caption"])
        assert abs(stated_count(item["foil"]) - item["count"]) == 1
        scene = parse_caption(item["caption"])
        assert SPEC.novel(scene), item  # held-out (shape, colour) pairs only: no training image shows one
    bench = Valse(world.valse, world.images)
    assert list(bench.items) == [COUNTING_INSTRUMENT] and len(bench.items[COUNTING_INSTRUMENT]) == 24


def test_counted_share_must_be_a_share(tmp_path):
    with pytest.raises(ValueError, match="counted must be a share"):
        write_world(tmp_path / "bad", num_train=4, num_test=2, counted=1.5)


def test_counted_scenes_come_from_their_own_stream():
    # the scenes with relations are the same with and without counted scenes
    plain = sample_split(SPEC, "train", 40, seed=9)
    mixed = sample_split(SPEC, "train", 40, seed=9, counted=1.0)
    assert [s for s in plain if s.relations] == [s for s in mixed if s.relations]
    assert all(s.count() in (2, 3, 4) for s in mixed if not s.relations)
