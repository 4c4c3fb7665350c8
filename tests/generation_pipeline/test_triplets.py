"""The whole-image negative branch end to end on the shapes world: negcaption -> t2i (render) -> negscore ->
export triplets -> genemi train --loss triplet; scored against both captions, resumable, merged across shards."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from genemi.generation_pipeline import pipeline
from genemi.manifest import read_records
from genemi.records import NegativePlan, TripletRecord


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from genemi.demo import write_demo_inputs

    return write_demo_inputs(tmp_path_factory.mktemp("triplet_world"))


def argv(world, out, *extra):
    data, models = world
    return ["--annotation-file", str(data.coco_train), "--root-dir", str(data.images), "--output-dir", str(out),
            "--stages", "triplets", "--painter", "render", "--blip-model", str(models["blip_itm"]),
            "--kinds", "swap_obj,swap_att,replace_rel", "--limit", "6", "--device", "cpu", "--no-progress", *extra]


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("triplets") / "gen"
    assert pipeline.main(argv(world, out, "--batch-size", "t2i=4,negscore=2")) == 0
    return out


def test_every_painted_negative_is_scored_against_both_captions(run):
    plans = read_records(run / "negscores.jsonl", NegativePlan)
    painted = [n for p in plans for n in p.negatives if n.status == "ok"]
    assert len(plans) == 6 and painted
    for n in painted:
        assert n.image.startswith("negatives/") and (run / n.image).is_file()
        assert n.itm_own is not None and n.itm_source is not None
        assert n.passes == (n.itm_own - n.itm_source > 0.0)  # the default margin, recorded per negative
    summary = json.loads((run / "run_summary.json").read_text())
    assert list(summary["stages"]) == ["tag", "negcaption", "t2i", "negscore"]
    negscore = json.loads((run / "negscores.jsonl.settings.json").read_text())["settings"]
    assert negscore["triplet_margin"] == 0.0 and "iva_pixel_threshold" not in negscore and "blip_model" in negscore


def test_export_and_train_one_triplet_step(run, world, tiny_clip, tmp_path, capsys):
    from genemi.training import train

    data, _ = world
    assert pipeline.main(["export", "--output-dir", str(run), "--no-filter"]) == 0
    out = run / "export"
    records = read_records(out / "triplets.jsonl", TripletRecord)
    painted = [n for p in read_records(run / "negscores.jsonl", NegativePlan) for n in p.negatives
               if n.status == "ok" and n.image]
    assert sorted(r.id for r in records) == sorted(n.id for n in painted)  # no filter: every painted negative
    assert not (out / "dataset.jsonl").exists()  # the run has no variations
    rows = (out / "triplets.csv").read_text().splitlines()
    assert rows[0] == "filepath\ttitle\tneg_image\tneg_caption" and len(rows) == len(records) + 1
    with tarfile.open(out / "wds-triplets" / "shard-000000.tar") as tar:
        names = tar.getnames()
    assert any(n.endswith(".neg_image.png") for n in names) and any(n.endswith(".neg_caption.txt") for n in names)
    assert "train on it: genemi train --loss triplet --dataset-type triplets" in capsys.readouterr().out
    rc = train.main([
        "--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
        "--quick-gelu", "on", "--loss", "triplet", "--dataset-type", "triplets",
        "--dataset", str(out / "triplets.jsonl"), "--image-root", str(run), "--source-image-root", str(data.images),
        "--batch-size", "4", "--max-steps", "1", "--output-dir", str(tmp_path / "train"), "--workers", "0",
        "--device", "cpu"])
    assert rc == 0 and (tmp_path / "train" / "metrics.csv").is_file()


def test_the_filter_keeps_only_negatives_that_beat_the_source_caption(run, tmp_path):
    assert pipeline.main(["export", "--output-dir", str(run), "--export-dir", str(tmp_path / "kept"),
                          "--format", "jsonl"]) == 0
    plans = read_records(run / "negscores.jsonl", NegativePlan)
    expected = sorted(n.id for p in plans for n in p.negatives if n.status == "ok" and n.passes)
    assert sorted(r.id for r in read_records(tmp_path / "kept" / "triplets.jsonl", TripletRecord)) == expected
    margin = -1e9  # every scored negative passes a margin that low
    assert pipeline.main(["export", "--output-dir", str(run), "--export-dir", str(tmp_path / "all"), "--format", "jsonl",
                          "--triplet-margin", str(margin)]) == 0
    everything = sorted(n.id for p in plans for n in p.negatives if n.status == "ok")
    assert sorted(r.id for r in read_records(tmp_path / "all" / "triplets.jsonl", TripletRecord)) == everything


def test_a_killed_negscore_resumes_exactly(run, world, tmp_path, monkeypatch):
    from genemi.generation_pipeline.scoring.negscore import NegScoreStage

    part = tmp_path / "gen"
    shutil.copytree(run, part, ignore=shutil.ignore_patterns("negscores.jsonl*", "export", "run_summary.json"))
    real, calls = NegScoreStage.process, {"n": 0}

    def killed(self, items):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, items)

    monkeypatch.setattr(NegScoreStage, "process", killed)
    assert pipeline.main(argv(world, part, "--batch-size", "t2i=4,negscore=2")) == 130
    monkeypatch.setattr(NegScoreStage, "process", real)
    assert pipeline.main(argv(world, part, "--batch-size", "t2i=4,negscore=2")) == 0
    assert (part / "negscores.jsonl").read_bytes() == (run / "negscores.jsonl").read_bytes()


def test_the_branch_merges_across_shards_to_the_unsharded_run(world, tmp_path):
    # one image per scoring batch in both runs: the matcher's float rounding depends on what shares a batch
    whole, root = tmp_path / "whole", tmp_path / "sharded"
    assert pipeline.main(argv(world, whole, "--batch-size", "t2i=4,negscore=1")) == 0
    for k in range(2):
        assert pipeline.main(argv(world, root, "--batch-size", "t2i=4,negscore=1", "--num-shards", "2",
                                  "--shard-index", str(k))) == 0
    assert pipeline.main(["merge", "--output-dir", str(root)]) == 0
    for name in ("negcaptions.jsonl", "negimages.jsonl", "negscores.jsonl"):
        assert (root / name).read_bytes() == (whole / name).read_bytes(), name
    negatives = sorted(p.relative_to(root) for p in (root / "negatives").rglob("*.png"))
    assert negatives == sorted(p.relative_to(whole) for p in (whole / "negatives").rglob("*.png")) and negatives
    assert all((root / p).read_bytes() == (whole / p).read_bytes() for p in negatives)


def test_the_gallery_shows_each_negative_beside_its_source(run):
    from html.parser import HTMLParser

    plans = read_records(run / "negscores.jsonl", NegativePlan)
    assert pipeline.main(["gallery", "--output-dir", str(run)]) == 0
    page = (run / "gallery" / "index.html").read_text()  # a run with only the branch: the triplets are the gallery

    class Cards(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids, self.images = [], []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "div" and "var" in (a.get("class") or "").split():
                self.ids.append(a["id"])
            if tag == "img":
                self.images.append(a["src"])

    cards = Cards()
    cards.feed(page)
    assert cards.ids == [n.id for p in plans for n in p.negatives]
    painted = [n for p in plans for n in p.negatives if n.status == "ok" and n.image]
    assert len(cards.images) == len(plans) + len(painted)  # each source, then each painted negative
    assert all((run / "gallery" / src).is_file() for src in cards.images)
    shown = page.replace("&#39;", "'").replace("&#34;", '"')
    assert all(n.caption in shown for n in painted) and "filtered (margin)" in page or all(n.passes for n in painted)
