"""Relation/order edits of the shapes world, arrangements held out geometrically, and texts checked for what
they name of the held-out split in any wording."""

import json
import random
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from genemi.synthetic.heldout import heldout_named, stated_relations
from genemi.synthetic.parsing import boxes_apart, parse_objects
from genemi.synthetic.relation_edits import change_relation, relation_edits, swap_objects
from genemi.synthetic.scenes import (Relation, Scene, SceneObject, SplitSpec, caption, captions, layout,
                                     random_scene, relation_holds)
from genemi.synthetic.world import read_scene_annotations, write_world

SPEC = SplitSpec.default()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("rworld"), num_train=60, num_test=20, size=32, seed=1,
                       vga_pairs=1, vga_per_pair=3)


def test_an_arrangement_is_held_out_in_any_wording():
    # "a square right of a circle" is the held-out "circle left of square" seen from the other side
    scene = Scene((SceneObject("square", "red", cell=(2, 1)), SceneObject("circle", "red", cell=(0, 1))),
                  (Relation(0, "right of", 1),))
    assert "arrangement:circle/left of/square" in SPEC.novel(scene)
    # a stack shows "above" too: triangle on top of circle is the held-out "triangle above circle"
    stack = Scene((SceneObject("triangle", "green", cell=(1, 0), on_top_of=1), SceneObject("circle", "green",
                                                                                             cell=(1, 1))),
                  (Relation(0, "on top of", 1),))
    assert "arrangement:triangle/above/circle" in SPEC.novel(stack)
    # and two objects no caption relates count as well
    three = Scene((SceneObject("star", "red", cell=(0, 0)), SceneObject("cross", "red", cell=(1, 2)),
                   SceneObject("hexagon", "red", cell=(0, 2))), (Relation(0, "above", 1), Relation(2, "left of", 1)))
    assert not relation_holds(three, 0, "right of", 2) or SPEC.novel(three)


def test_no_train_scene_or_caption_shows_a_heldout_arrangement(world):
    for ann in read_scene_annotations(world.train_scenes):
        assert not SPEC.novel(ann["scene"])
        for text in ann["captions"]:
            assert not heldout_named(text, SPEC), text
    for line in world.relation_variations_jsonl.read_text().splitlines():
        for text in json.loads(line)["captions"]:
            assert not heldout_named(text, SPEC), text


def test_texts_name_heldout_elements_in_any_wording():
    assert heldout_named("a large blue circle", SPEC) == ["pair:circle/blue"]
    assert heldout_named("two cyan hexagons on the grass", SPEC) == ["pair:hexagon/cyan"]
    assert heldout_named("a small white square to the right of a large green circle", SPEC) == [
        "arrangement:circle/left of/square"]
    assert heldout_named("the red circle is under the big triangle", SPEC) == ["arrangement:triangle/above/circle"]
    assert heldout_named("a pentagon on top of a cross", SPEC) == ["arrangement:pentagon/on top of/cross"]
    assert heldout_named("a pentagon above a cross", SPEC) == []  # above is not stacked
    assert heldout_named("a white square left of a green circle", SPEC) == []
    assert heldout_named("a red circle next to a square", SPEC) == []  # no grid relation
    assert stated_relations("a red circle left of a square and a star under the circle") == [
        ("circle", "left of", "square"), ("star", "below", "circle")]


def test_relation_edits_are_true_word_order_changes_and_stay_in_the_train_split():
    rng = random.Random(0)
    kinds = Counter()
    for _ in range(300):
        scene = random_scene(rng)
        if SPEC.novel(scene):
            continue
        for kind, changed in relation_edits(scene, 4, SPEC, rng):
            kinds[kind] += 1
            assert changed != scene and not SPEC.novel(changed)
            assert all(relation_holds(changed, r.subject, r.relation, r.object) for r in changed.relations)
            assert boxes_apart(layout(changed))
            before, after = caption(scene), caption(changed)
            assert before != after
            if kind == "relation":  # one relation word changed, the objects where they were but the subject
                assert [r.relation for r in scene.relations] != [r.relation for r in changed.relations]
            elif len(scene.relations) == 1:  # the same words in another order (3 objects name the anchor twice)
                assert sorted(before.split()) == sorted(after.split()), (before, after)
            # the captions parse back to the edited scene's objects and relations
            objects, relations = parse_objects(after)
            assert [o.phrase() for o in objects] == [o.phrase() for o in changed.objects]
    assert set(kinds) == {"swap_objects", "stack_order", "swap_colour", "swap_shape", "swap_size", "relation"}


def test_swaps_and_relation_changes_do_what_they_say():
    scene = Scene((SceneObject("star", "red", "small", cell=(0, 1)), SceneObject("square", "blue", cell=(2, 1))),
                  (Relation(0, "left of", 1),))
    swapped = swap_objects(scene, 0, 1)
    assert caption(swapped) == "a large blue square left of a small red star"
    moved = change_relation(scene, 0, random.Random(0))
    assert moved.relations[0].relation != "left of" and relation_holds(moved, 0, moved.relations[0].relation, 1)
    assert moved.objects[1] == scene.objects[1]  # the anchor stays


def test_relation_variation_records_are_rendered_groups(world):
    from genemi.training.data import build_variation_table, read_variation_records
    from genemi.training.mining import mining_spec

    records = read_variation_records(world.relation_variations_jsonl)
    assert records and {r.item for r in records} == {"arrangement"}
    scenes = {a["id"]: a["scene"] for a in read_scene_annotations(world.train_scenes)}
    for r in records[:40]:
        assert r.kind in ("swap_objects", "stack_order", "swap_colour", "swap_shape", "swap_size", "relation")
        source = np.asarray(Image.open(world.images / r.source))
        assert not np.array_equal(np.asarray(Image.open(world.images / r.save)), source)
        assert r.captions and r.captions[0] not in captions(scenes[r.origin_name])
        assert r.iva_image > 0
    table = build_variation_table(records, mining_spec("item_based"), world.images, world.images, include_source=True)
    assert len(table.sources) == len(table.groups)
