"""The items a caption tagger takes are objects: on the shapes world's captions (whose objects are known) every
item names a shape; spatial, quantity, depiction and markup words are never items."""

import random

from genemi.synthetic.scenes import SHAPES, captions, random_scene
from genemi.text.phrases import noun_phrases


def test_items_of_the_worlds_captions_are_its_objects():
    rng = random.Random(0)
    scenes = [random_scene(rng) for _ in range(150)]
    items = noun_phrases([" . ".join(captions(s)) for s in scenes], 10)
    found = [(it, s) for its, s in zip(items, scenes) for it in its]
    good = [it for it, s in found if it.split()[-1] in {o.shape for o in s.objects}]
    assert len(found) > 250 and len(good) / len(found) >= 0.98, sorted({it for it, _ in found} - set(good))[:10]
    # every object's shape is found (one item per head: two squares give one item)
    assert all({o.shape for o in s.objects} <= {i.split()[-1] for i in its} for its, s in zip(items, scenes))
    assert {it.split()[-1] for it, _ in found} <= set(SHAPES)


def test_spatial_quantity_depiction_and_markup_words_are_not_items():
    texts = ["a small cyan square right of a small red cross", "a picture of a dog on the left of a grey background",
             "a group of people at night", "a zebra-striped teapot <img src=x onerror=alert(1)>",
             '<script>alert("x")</script> a cat on a sofa', "the top of a red bus"]
    assert noun_phrases(texts, 10) == [["small cyan square", "small red cross"], ["dog"], ["people"],
                                       ["zebra striped teapot"], ["cat", "sofa"], ["red bus"]]
