"""The portray and caption stages: planned variations (ids, seeds, slugs), item failures kept with the raw
answer, file names from model output that cannot escape, the whole chain, and resume after a crash."""

import hashlib
from pathlib import Path

import pytest

from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.seeds import derive_seed
from genemi.generation_pipeline.portrayal.base import PORTRAYERS, ItemPortrayals, slugify
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
    [plan] = stage.apply([_mask_record("sub/a.jpg", ["dog", "tree"])])
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
    [plan] = stage.apply([_mask_record("b.jpg", ["tree"])])
    assert plan.status == "failed" and plan.error.type == "no_portrayals" and plan.items[0].raw


def test_slugify_on_hostile_labels():
    assert slugify("../../etc/passwd") == "etc_passwd"
    assert slugify("") == slugify("...") == slugify("\x00") == "item"
    assert len(slugify("y" * 1000)) == 48
    assert slugify("Blue-green Rock (2)") == "blue_green_rock_2"


def full(images, models, out, **kw):  # noqa: F811
    from genemi.generation_pipeline.captioning import CaptionConfig

    return cfg(images, models, out, stages="tag:caption", portray=PortrayConfig(batch_size=2),
               caption=CaptionConfig(batch_size=2), **kw)


def test_whole_chain_plans_variations_whose_captions_name_them(images, models, tmp_path):  # noqa: F811
    summary = pipeline.run_pipeline(full(images, models, tmp_path / "a"), progress=False)
    assert list(summary["stages"]) == ["tag", "ground", "segment", "portray", "caption"]
    assert [p["writes"] for p in summary["pipeline"]][3:5] == ["portrayals.jsonl", "captions.jsonl"]
    plans = read_records(tmp_path / "a" / "captions.jsonl", VariationPlan)
    assert len(plans) == 6 and all(p.status == "ok" for p in plans)
    checked = 0
    for plan in plans:
        for item in plan.items:
            assert item.backend == "rules" and len(item.variations) == 4
            assert [v.kind for v in item.variations][:3] == ["category", "synonym", "colour"]
            for var in item.variations:
                assert var.captions and var.seed == derive_seed(0, var.id)
                if var.caption_fallback:
                    continue
                for caption in var.captions:  # e.g. "a red square next to a blue circle" -> "... a green circle"
                    assert var.short.split()[-1].lower() in caption.lower(), (var.short, caption)
                    assert item.item not in caption or item.item in var.short, (item.item, caption)
                    checked += 1
    assert checked >= 40  # the captions name the items: the fallback is the exception
    again = pipeline.run_pipeline(full(images, models, tmp_path / "b"), progress=False)
    assert again["stages"]["caption"]["processed"] == 6
    for name in ("portrayals.jsonl", "captions.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = pipeline.run_pipeline(full(images, models, tmp_path / "c", seed=1), progress=False)
    assert other["stages"]["portray"]["processed"] == 6
    assert (tmp_path / "a" / "portrayals.jsonl").read_bytes() != (tmp_path / "c" / "portrayals.jsonl").read_bytes()


def test_resume_after_a_crash_in_portray_equals_an_uninterrupted_run(images, models, tmp_path, monkeypatch):  # noqa: F811
    pipeline.run_pipeline(full(images, models, tmp_path / "full"), progress=False)
    real, calls = PortrayStage.process, {"n": 0}

    def crashing(self, items):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed mid-stage
        return real(self, items)

    monkeypatch.setattr(PortrayStage, "process", crashing)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_pipeline(full(images, models, tmp_path / "part"), progress=False)
    assert len((tmp_path / "part" / "portrayals.jsonl").read_text().splitlines()) == 2
    with open(tmp_path / "part" / "portrayals.jsonl", "a") as fh:
        fh.write('{"id": "sub/003.png", "items": [{"id"')  # the kill hit during a write
    monkeypatch.setattr(PortrayStage, "process", real)
    summary = pipeline.run_pipeline(full(images, models, tmp_path / "part"), progress=False)
    assert summary["stages"]["portray"]["already_done"] == 2 and summary["stages"]["portray"]["processed"] == 4
    for name in ("portrayals.jsonl", "captions.jsonl"):
        assert (tmp_path / "part" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_cli_runs_the_chain_stage_by_stage(images, models, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "cli"
    common = ["--annotation-file", str(Path(images) / "captions.json"), "--root-dir", str(images), "--output-dir",
              str(out), "--device", "cpu", "--no-progress", "--gd-model", str(models["grounding_dino"]),
              "--sam-checkpoint", str(models["sam"])]
    assert pipeline.main(common + ["--stages", "tag:segment"]) == 0
    assert pipeline.main(common + ["--stages", "portray:caption", "--num-portrayals", "2", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "portray  processed      6" in text and "caption  processed      6" in text
    plans = read_records(out / "captions.jsonl", VariationPlan)
    assert all(len(it.variations) == 2 for p in plans for it in p.items)
