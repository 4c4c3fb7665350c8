"""The portray and caption stages: planned variations (ids, seeds, slugs), item failures kept with the raw
answer, file names from model output that cannot escape, the whole chain, and resume after a crash."""

import hashlib
from pathlib import Path

import pytest

from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.portrayal.base import PORTRAYERS, ItemPortrayals, derive_seed, slugify
from genemi.generation_pipeline.portrayal.config import PortrayConfig
from genemi.generation_pipeline.portrayal.stage import PortrayStage
from genemi.generation_pipeline.stage import StageContext
from genemi.manifest import read_records
from genemi.records import Failure, ItemMask, MaskRecord, Portrayal, RLE, VariationPlan
from tests.generation_pipeline.test_pipeline import cfg, images, models  # noqa: F401 - shared fixtures

EVIL = ["../evil", "/etc/passwd", "a\x00b", "x" * 500, "..", "C:\\Windows\\system32", "bald eagle", "Bald Eagle!"]


class FakePortrayer:
    """Answers with hostile short labels for 'dog' and fails 'tree' with a raw answer."""

    name = "fake"

    def __init__(self, config, context):
        self.k = config.num_portrayals

    def check(self):
        pass

    def load(self):
        pass

    def offload(self):
        pass

    def portray(self, requests):
        out = []
        for req in requests:
            answer = {}
            for item in req.items:
                if item == "tree":
                    answer[item] = ItemPortrayals(raw="I cannot help with that.", error=Failure(
                        stage="portray", type="unparseable_answer", message="no numbered lines for 'tree'"))
                else:
                    answer[item] = ItemPortrayals(portrayals=[
                        Portrayal(kind="other", prompt=f"a photo of {s}", short=s) for s in EVIL[: req.k]])
            out.append(answer)
        return out


def _mask_record(image_id, items):
    rle = RLE(size=[4, 4], counts=[0, 16])
    return MaskRecord(id=image_id, image=image_id, width=4, height=4, caption="a dog under a tree", items=[
        ItemMask(id=f"{image_id}/item_{k:02d}", item=it, box=[0, 0, 4, 4], box_score=0.9, mask=rle, mask_score=0.9,
                 area=16, crop=[0, 0, 4, 4]) for k, it in enumerate(items)])


def test_portray_stage_plans_ids_seeds_and_safe_slugs_and_keeps_failed_items(monkeypatch, tmp_path):
    monkeypatch.setitem(PORTRAYERS.entries, "fake", f"{__name__}:FakePortrayer")
    stage = PortrayStage(PortrayConfig(backend="fake", num_portrayals=8), StageContext(seed=7))
    [plan] = stage.finish(stage.process([_mask_record("sub/a.jpg", ["dog", "tree"])]))
    dog, tree = plan.items
    assert plan.status == "ok" and dog.status == "ok" and tree.status == "failed"
    assert tree.raw == "I cannot help with that." and tree.error.type == "unparseable_answer" and not tree.variations
    assert [v.id for v in dog.variations] == [f"sub/a.jpg/item_00/var_{j}" for j in range(8)]
    # seed = first 8 bytes (little endian) of sha256("<seed>:<variation id>"), top bit cleared
    digest = hashlib.sha256(b"7:sub/a.jpg/item_00/var_3").digest()
    assert dog.variations[3].seed == int.from_bytes(digest[:8], "little") & (2**63 - 1) == derive_seed(7, dog.variations[3].id)
    slugs = [v.slug for v in dog.variations]
    assert slugs[:4] == ["evil", "etc_passwd", "a_b", "x" * 48] and slugs[4] == "item"
    assert slugs[6:] == ["bald_eagle", "bald_eagle_2"] and len(set(slugs)) == 8
    root = tmp_path / "variations"
    for slug in slugs:
        assert (root / slug).resolve().parent == root.resolve() and "/" not in slug and "\x00" not in slug
    assert dog.variations[0].short == "../evil"  # the label itself is kept for captions, only file names are cleaned


def test_portray_stage_fails_an_image_when_no_item_could_be_portrayed(monkeypatch):
    monkeypatch.setitem(PORTRAYERS.entries, "fake", f"{__name__}:FakePortrayer")
    stage = PortrayStage(PortrayConfig(backend="fake"), StageContext())
    [plan] = stage.finish(stage.process([_mask_record("b.jpg", ["tree"])]))
    assert plan.status == "failed" and plan.error.type == "no_portrayals" and plan.items[0].raw


def test_slugify_on_hostile_labels():
    assert slugify("../../etc/passwd") == "etc_passwd"
    assert slugify("") == slugify("...") == slugify("\x00") == "item"
    assert len(slugify("y" * 1000)) == 48
    assert slugify("Blue-green Rock (2)") == "blue_green_rock_2"
