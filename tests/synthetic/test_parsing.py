"""The shapes world's captions read back into scenes: every template and wording of many random scenes parses
back to the same objects and relations, laid out so that each relation holds, and renders as the world renders
that scene; what is outside the grammar, or impossible on the grid, is a clear error."""

import random
from dataclasses import replace

import numpy as np
import pytest

from genemi.synthetic.parsing import CaptionParseError, parse_caption, parse_objects
from genemi.synthetic.scenes import Scene, caption, captions, random_scene, relation_holds, render


def _placement_free(scene):
    return [replace(o, cell=(0, 0)) for o in scene.objects], scene.relations


def test_every_caption_of_many_random_scenes_parses_back_to_its_scene():
    rng = random.Random(0)
    for n in range(400):
        scene = random_scene(rng)
        texts = {caption(scene, t, w): (t, w) for t in range(3) for w in range(2)}
        assert set(captions(scene)) <= set(texts)
        for text, (t, w) in texts.items():
            parsed = parse_caption(text, seed=n)
            assert _placement_free(parsed) == _placement_free(scene), text  # objects, order, stacking, relations
            assert caption(parsed, t, w) == text
            assert all(relation_holds(parsed, r.subject, r.relation, r.object) for r in parsed.relations), text
            assert parse_caption(text, seed=n) == parsed  # the same seed, the same layout
        if n < 60:  # placed where the original's objects are (what no caption says), the same picture, pixel for pixel
            placed = Scene(tuple(replace(p, cell=o.cell) for p, o in zip(parsed.objects, scene.objects)),
                           parsed.relations)
            assert (np.asarray(render(placed, 48, 2).image) == np.asarray(render(scene, 48, 2).image)).all()
    assert len({parse_caption("a red circle left of a blue square", seed=s).objects[0].cell for s in range(20)}) > 1


def test_the_layout_keeps_objects_apart_and_inside_the_image():
    from genemi.synthetic.parsing import boxes_apart
    from genemi.synthetic.scenes import layout

    rng = random.Random(1)
    for n in range(200):
        scene = parse_caption(caption(random_scene(rng)), seed=n)
        assert boxes_apart(layout(scene))
        rendered = render(scene, 48, 2)
        assert all(m.any() for m in rendered.masks)  # every object visible


def test_tolerated_spellings_and_clauses_outside_the_templates_of_one_scene():
    objects, relations = parse_objects("There's an orange circle to the left of the small striped blue square.")
    assert [o.phrase() for o in objects] == ["large orange circle", "small striped blue square"]
    assert [(r.subject, r.relation, r.object) for r in relations] == [(0, "left of", 1)]
    objects, relations = parse_objects("a red star under a white cross and a green circle")  # SugarCrepe add_obj
    assert len(objects) == 3 and [(r.subject, r.relation, r.object) for r in relations] == [(0, "below", 1)]
    objects, relations = parse_objects("a red circle underneath a blue square and a cyan cross on a white star")
    assert [(r.subject, r.relation, r.object) for r in relations] == [(0, "below", 1), (2, "on top of", 3)]
    objects, relations = parse_objects("a red circle above a blue square and a red circle on top of a red circle")
    assert [(r.subject, r.relation, r.object) for r in relations] == [(0, "above", 1), (2, "on top of", 0)]


@pytest.mark.parametrize("text, why", [
    ("a dog on a sofa", "'a dog on a sofa' is not a shapes-world clause"),
    ("a red circle next to a blue square", "is not a shapes-world clause"),  # left or right: no one layout
    ("a red circle left of", "is not a shapes-world clause"),
    ("", "empty"),
    ("a red circle and", "an 'and' with nothing on one side"),
    ("a red circle on top of a blue square and a green star on top of a blue square",
     "no layout on the 3x3 grid makes all of its relations hold"),
    (" and ".join(["a red circle left of a blue square"] * 9), "10 objects do not fit the 3x3 grid"),
])
def test_what_is_not_a_world_caption_is_a_clear_error(text, why):
    with pytest.raises(CaptionParseError, match=why.replace("(", r"\(")):
        parse_caption(text, seed=0)
