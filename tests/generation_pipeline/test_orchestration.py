"""The pipeline's shape and its guarantees: registry-derived CLI, options refused with a reason, checks
before any work, per-item failures, --retry-failed, atomic replacement of retried records."""

import json
import re

import pytest
from PIL import Image

from genemi.errors import CheckpointError, ConfigError
from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.grounding.grounding_dino import GroundingDino
from genemi.generation_pipeline.options import flag_of
from genemi.generation_pipeline.registry import STAGES
from genemi.manifest import merge_side_file, read_records
from genemi.records import DetectionRecord, MaskRecord, VariationPlan
from tests.generation_pipeline.test_pipeline import cfg, images, models  # noqa: F401 - shared fixtures


def test_help_lists_every_stage_backend_and_option_from_the_registry(capsys):
    with pytest.raises(SystemExit):
        pipeline.main(["--help"])
    text = capsys.readouterr().out
    assert "tag -> ground -> segment -> portray -> caption -> inpaint -> score" in text
    for spec in STAGES:
        reads = ", ".join(spec.reads) or "images"
        assert re.search(rf"{spec.name}\s+{re.escape(reads)}\s+->\s+{re.escape(spec.writes)}", text), spec.name
        assert "{" + ",".join(spec.backends.names) + "}" in text
        for f in spec.config.__dataclass_fields__.values():
            if "help" in f.metadata:
                assert flag_of(f) in text, flag_of(f)
    assert "tag=16,ground=8,segment=4,portray=64,caption=64,inpaint=2,score=8" in re.sub(r"\s+", "", text)


@pytest.mark.parametrize("flags, message", [
    (["--tag2text-threshold", "0.5"], "--tag2text-threshold applies only to --tagger tag2text, not --tagger captions"),
    (["--image-size", "512"], "--image-size applies only to --tagger tag2text"),
    (["--blip-caption-model", "x"], "--blip-caption-model applies only to --tagger blip"),
    (["--api-base", "http://localhost:1/v1"], "--api-base applies only to --portrayer openai, not --portrayer rules"),
    (["--llm-model", "x", "--portrayer", "openai"], "--llm-model applies only to --portrayer hf"),
    (["--stanza-dir", "x"], "--stanza-dir applies only to --caption-parser stanza"),
])
def test_options_for_another_backend_are_refused_with_the_reason(flags, message, tmp_path, capsys):
    rc = pipeline.main(["--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "out"), "--no-progress"] + flags)
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_preset_options_for_another_backend_are_refused(tmp_path, capsys):
    preset = tmp_path / "p.yaml"
    preset.write_text("tag: {backend: captions, tag2text_threshold: 0.5}\n")
    rc = pipeline.main(["--config", str(preset), "--input-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")])
    assert rc == 2 and "--tag2text-threshold applies only to --tagger tag2text" in capsys.readouterr().err


def _no_manifests(folder):
    return not folder.exists() or not any(folder.glob("*.jsonl"))


@pytest.mark.parametrize("change, error, message", [
    (dict(segment={"sam_checkpoint": None}), ConfigError, "needs --sam-checkpoint"),
    (dict(segment={"sam_checkpoint": "/nonexistent/sam_vit_b.pth"}), ConfigError, "file not found"),
    (dict(ground={"gd_model": "/nonexistent/gdino"}), CheckpointError, "not a local folder"),
    (dict(stages="all", portray={"backend": "openai"}), ConfigError, "--api-base"),
    (dict(stages="all", portray={"backend": "hf"}), ConfigError, "--llm-model"),
    (dict(tag={"backend": "tag2text"}), ConfigError, "--tagger tag2text needs --tag2text-checkpoint"),
    (dict(limit=0), ConfigError, "--limit must be at least 1"),
    (dict(tag={"batch_size": 0}), ConfigError, "--batch-size tag=0"),
])
def test_every_stage_checks_its_inputs_before_the_first_image(images, models, tmp_path, change, error, message):  # noqa: F811
    change = dict(change)
    portray = change.pop("portray", {})
    with pytest.raises(error, match=re.escape(message)):  # the config itself, or the run before any image
        c = cfg(images, models, tmp_path / "out", **change)
        for k, v in portray.items():
            setattr(c.portray, k, v)
        pipeline.run_pipeline(c, progress=False)
    assert _no_manifests(tmp_path / "out")


def test_sam_checkpoint_folder_and_unwritable_output_are_refused_before_work(images, models, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match="is a folder, expected a .pth file"):
        pipeline.run_pipeline(cfg(images, models, tmp_path / "o1", segment={"sam_checkpoint": str(tmp_path)}),
                              progress=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write to the output folder"):
        pipeline.run_pipeline(cfg(images, models, blocker / "out"), progress=False)
    assert _no_manifests(tmp_path / "o1")


def test_captions_tagger_without_captions_says_what_it_needs(models, tmp_path):  # noqa: F811
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(folder / "a.png")
    c = cfg(folder, models, tmp_path / "out", annotation_file=None)
    with pytest.raises(ConfigError, match="--annotation-file"):
        pipeline.run_pipeline(c, progress=False)


def test_a_raising_item_becomes_one_failed_record_and_retry_failed_fixes_it(images, models, tmp_path, monkeypatch):  # noqa: F811
    pipeline.run_pipeline(cfg(images, models, tmp_path / "clean"), progress=False)
    real = GroundingDino.detect

    def flaky(self, imgs, items):
        if any(img.width == 104 for img in imgs):  # the image 001 (96 + 8 px wide)
            raise RuntimeError("CUDA error: device-side assert triggered")
        return real(self, imgs, items)

    monkeypatch.setattr(GroundingDino, "detect", flaky)
    out = tmp_path / "run"
    summary = pipeline.run_pipeline(cfg(images, models, out), progress=False)
    dets = {d.id: d for d in read_records(out / "detections.jsonl", DetectionRecord)}
    assert len(dets) == 6 and [i for i, d in dets.items() if d.status == "failed"] == ["sub/001.png"]
    bad = dets["sub/001.png"].error
    assert (bad.stage, bad.type, bad.message) == ("ground", "RuntimeError", "CUDA error: device-side assert triggered")
    g = summary["stages"]["ground"]
    assert g["processed"] == 6 and g["failed"] == 1 and g["failure_reasons"] == {"ground/RuntimeError": 1}
    # downstream carries the failure with its origin
    masks = {m.id: m for m in read_records(out / "masks.jsonl", MaskRecord)}
    assert masks["sub/001.png"].status == "failed" and masks["sub/001.png"].error.stage == "ground"

    again = pipeline.run_pipeline(cfg(images, models, out), progress=False)  # failed records count as done
    assert all(s["processed"] == 0 for s in again["stages"].values())

    monkeypatch.setattr(GroundingDino, "detect", real)
    fixed = pipeline.run_pipeline(cfg(images, models, out, retry_failed=True), progress=False)
    assert fixed["stages"]["ground"]["retried"] == 1 and fixed["stages"]["segment"]["retried"] == 1
    assert fixed["stages"]["tag"]["processed"] == 0
    for name in ("tags.jsonl", "detections.jsonl", "masks.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
    assert not list(out.glob("*.retry"))


def test_merge_side_file_replaces_in_place_appends_new_and_is_idempotent(tmp_path):
    main, side = tmp_path / "m.jsonl", tmp_path / "m.jsonl.retry"
    rows = [{"id": "a", "status": "failed"}, {"id": "b", "status": "ok"}, {"id": "c", "status": "failed"}]
    main.write_text("".join(json.dumps(r) + "\n" for r in rows))
    side.write_text(json.dumps({"id": "c", "status": "ok", "v": 2}) + "\n" + json.dumps({"id": "d", "status": "ok"}) + "\n")
    assert merge_side_file(main, side) == 2 and not side.exists()
    got = [json.loads(line) for line in main.read_text().splitlines()]
    assert got == [{"id": "a", "status": "failed"}, {"id": "b", "status": "ok"}, {"id": "c", "status": "ok", "v": 2},
                   {"id": "d", "status": "ok"}]
    assert merge_side_file(main, side) == 0  # nothing left to merge


def test_merge_brings_each_shards_variation_images_to_the_paths_its_manifests_name(tmp_path, capsys):
    from tests.generation_pipeline.scored_run import write_scored_run

    run = write_scored_run(tmp_path / "src")
    recs = read_records(run.output_dir / "scores.jsonl", VariationPlan)
    root = tmp_path / "gen"
    for k, rec in enumerate(recs):  # image k -> shard k (of 3), with its own variation images
        shard = root / "shards" / f"shard-{k:05d}-of-00003"
        shard.mkdir(parents=True)
        (shard / "scores.jsonl").write_text(rec.model_dump_json(exclude_none=True) + "\n")
        (shard / "run_summary.json").write_text(json.dumps({"images": 1, "config": {"input_dir": str(run.input_dir)}}))
        for item in rec.items:
            for var in item.variations:
                if var.image:
                    (shard / var.image).parent.mkdir(parents=True, exist_ok=True)
                    (shard / var.image).write_bytes((run.output_dir / var.image).read_bytes())
    (root / "shards" / "shard-00000-of-00003" / "variations" / ".tmp-half").write_bytes(b"x")  # a killed write
    assert pipeline.main(["merge", "--output-dir", str(root)]) == 0
    painted_files = sum(1 for r in recs for it in r.items for v in it.variations if v.image)
    assert f"variations/: {painted_files} files" in capsys.readouterr().out
    merged = read_records(root / "scores.jsonl", VariationPlan)
    assert [r.id for r in merged] == sorted(r.id for r in recs)
    painted = [v.image for r in merged for it in r.items for v in it.variations if v.image]
    assert len(painted) == len(run.scores)
    for rel in painted:
        assert (root / rel).read_bytes() == (run.output_dir / rel).read_bytes()
    assert not list(root.glob("variations/**/.tmp*"))
    summary = json.loads((root / "run_summary.json").read_text())  # later tools (gallery) find the input folder
    assert summary["config"]["input_dir"] == str(run.input_dir) and summary["images"] == 3
    assert pipeline.main(["merge", "--output-dir", str(root)]) == 0  # again: idempotent


def test_a_rerun_with_other_content_settings_stops_and_names_them(images, models, tmp_path):  # noqa: F811
    import shutil

    out = tmp_path / "run"
    pipeline.run_pipeline(cfg(images, models, out, stages="tag:ground"), progress=False)
    recorded = json.loads((out / "detections.jsonl.settings.json").read_text())
    assert recorded["settings"]["box_threshold"] == 0.35 and "gd_model" in recorded["files"]
    before = (out / "detections.jsonl").read_bytes()
    # batch sizes do not shape content; a copy of the same model at another path is the same model
    copy = shutil.copytree(models["grounding_dino"], tmp_path / "dino_copy")
    pipeline.run_pipeline(cfg(images, models, out, stages="tag:ground", ground={"batch_size": 1, "gd_model": str(copy)}),
                          progress=False)
    with pytest.raises(ConfigError, match=r"box_threshold: 0\.35 -> 0\.3\b.*--force.*--allow-changed-settings"):
        pipeline.run_pipeline(cfg(images, models, out, stages="tag:ground", ground={"box_threshold": 0.3}),
                              progress=False)
    assert (out / "detections.jsonl").read_bytes() == before  # refused before any work
    other = json.loads((copy / "config.json").read_text())
    other["num_queries"] = 11  # another model at the same path
    (copy / "config.json").write_text(json.dumps(other))
    with pytest.raises(ConfigError, match="gd_model: .* changed on disk"):
        pipeline.run_pipeline(cfg(images, models, out, stages="ground", ground={"gd_model": str(copy)}), progress=False)
    # continue on purpose: the change is recorded with how many records the old settings wrote
    pipeline.run_pipeline(cfg(images, models, out, stages="ground", ground={"box_threshold": 0.3}, limit=6,
                              allow_changed_settings=True), progress=False)
    history = json.loads((out / "detections.jsonl.settings.json").read_text())["history"]
    assert [(h["settings"]["box_threshold"], h["records_before_change"]) for h in history] == [(0.35, 6)]


def test_force_starts_the_selected_stages_over_and_removes_later_outputs(images, models, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    pipeline.run_pipeline(cfg(images, models, out), progress=False)  # tag:segment
    summary = pipeline.run_pipeline(cfg(images, models, out, stages="ground", ground={"box_threshold": 0.3},
                                        force=True), progress=False)
    assert summary["stages"]["ground"]["processed"] == 6 and summary["stages"]["ground"]["already_done"] == 0
    assert (out / "tags.jsonl").exists() and not (out / "masks.jsonl").exists()  # later outputs were stale
    dets = read_records(out / "detections.jsonl", DetectionRecord)
    assert len(dets) == 6 and all(b.score > 0.3 for d in dets for b in d.boxes)


def test_force_removes_the_previews_of_the_earlier_run(images, models, tmp_path):  # noqa: F811
    """--save-annotated-image's previews/ is a folder of the segment stage: --force on segment (or a stage it reads)
    removes it with masks.jsonl, so the rerun's previews are all there is; forcing a later stage keeps it."""
    from genemi.generation_pipeline.previews import safe_name
    from genemi.generation_pipeline.settings import remove_outputs

    out = tmp_path / "run"
    pipeline.run_pipeline(cfg(images, models, out, save_annotated_image=True), progress=False)  # tag:segment
    assert len(list((out / "previews").iterdir())) == 6
    rc = pipeline.main(["--input-dir", str(images), "--annotation-file", str(images / "captions.json"),
                        "--output-dir", str(out), "--device", "cpu", "--no-progress", "--stages", "segment", "--force",
                        "--sam-checkpoint", str(models["sam"]), "--save-annotated-image", "--limit", "3"])
    assert rc == 0
    masks = read_records(out / "masks.jsonl", MaskRecord)
    assert len(masks) == 3 and all(m.status == "ok" for m in masks)
    assert sorted(p.name for p in (out / "previews").iterdir()) == sorted(safe_name(m.id) for m in masks)
    assert remove_outputs(out, STAGES.downstream(["portray"])) == [] and (out / "previews").is_dir()
    pipeline.run_pipeline(cfg(images, models, out, stages="ground", force=True), progress=False)
    assert not (out / "masks.jsonl").exists() and not (out / "previews").exists()


def test_merge_refuses_an_incomplete_shard_set_unless_partial_is_allowed(tmp_path, capsys):
    root = tmp_path / "gen"
    for k in range(3):
        shard = root / "shards" / f"shard-{k:05d}-of-00003"
        shard.mkdir(parents=True)
        (shard / "run_summary.json").write_text(json.dumps({"images": 2}))
        (shard / "tags.jsonl").write_text("".join(json.dumps({"id": f"{k}-{j}", "image": "x.png"}) + "\n"
                                                  for j in range(2)))
        done = 1 if k == 1 else 2  # shard 1 was killed after one image of the ground stage
        (shard / "detections.jsonl").write_text("".join(json.dumps({"id": f"{k}-{j}", "image": "x.png"}) + "\n"
                                                        for j in range(done)))
    assert pipeline.main(["merge", "--output-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert "shard-00001-of-00003: stage ground wrote 1 of 2 images" in err and "Traceback" not in err
    assert not (root / "detections.jsonl").exists()
    import shutil

    shutil.rmtree(root / "shards" / "shard-00002-of-00003")
    assert pipeline.main(["merge", "--output-dir", str(root)]) == 2
    assert "1 of 3 shards missing (e.g. --shard-index 2 --num-shards 3)" in capsys.readouterr().err
    assert pipeline.main(["merge", "--output-dir", str(root), "--allow-partial"]) == 0
    assert len((root / "detections.jsonl").read_text().splitlines()) == 3 and len(
        (root / "tags.jsonl").read_text().splitlines()) == 4


def test_taggers_return_tag_results_the_tag_stage_reads_by_name():
    """A tagger returns one TagResult per image (named fields, no tuple); the stage writes them into the record."""
    from genemi.generation_pipeline.stage import StageContext, StageItem
    from genemi.generation_pipeline.tagging import TagConfig, TagResult
    from genemi.generation_pipeline.tagging.captions import CaptionTagger
    from genemi.generation_pipeline.tagging.stage import TagStage
    from genemi.records import ImageInput

    tagger = CaptionTagger(TagConfig(max_items=1), StageContext())
    results = tagger.tag([None, None], [["a red dog on a green sofa"], []])
    assert all(isinstance(r, TagResult) for r in results)
    assert results[0].caption == "a red dog on a green sofa" and len(results[0].items) == 1
    assert results[0].scores is None and results[0].all_tags is None
    assert results[1] == TagResult(None, [])

    stage = TagStage.__new__(TagStage)  # build reads only the backend's name
    stage.backend = tagger
    image = Image.new("RGB", (40, 30))
    found = TagResult("a dog", ["dog"], [0.9], all_tags=["dog", "sofa"])
    rec = stage.build(StageItem(ImageInput(id="a.png", image="a.png", captions=["c"]), prepared=image, result=found))
    assert (rec.status, rec.caption, rec.tags, rec.tag_scores, rec.all_tags) == ("ok", "a dog", ["dog"], [0.9],
                                                                                 ["dog", "sofa"])
    assert (rec.width, rec.height, rec.original_captions, rec.backend) == (40, 30, ["c"], "captions")
    empty = stage.build(StageItem(ImageInput(id="b.png", image="b.png"), prepared=image, result=TagResult(None, [])))
    assert empty.status == "failed" and empty.error.type == "no_items"


def test_grounders_return_detections_the_ground_stage_reads_by_name():
    """A grounder returns one Detections per image (named fields, no tuple); the stage writes them into the record."""
    from types import SimpleNamespace

    from genemi.generation_pipeline.grounding import Detections, GroundConfig
    from genemi.generation_pipeline.grounding.ground_truth import GroundTruthGrounder
    from genemi.generation_pipeline.grounding.stage import GroundStage
    from genemi.generation_pipeline.stage import StageContext, StageItem
    from genemi.records import Box, TagRecord

    scene = {"objects": [{"phrase": "red square", "area": 9, "index": 0, "box": [1, 2, 4, 5]},
                         {"phrase": "blue circle", "area": 0, "index": 1, "box": [0, 0, 0, 0]}]}
    grounder = GroundTruthGrounder(GroundConfig(), StageContext())
    grounder.index = SimpleNamespace(find=lambda image: scene if image == "scene" else None)  # no world needed
    results = grounder.detect(["scene", "other"], [["red square", "blue circle"], ["tree"]])
    assert all(isinstance(r, Detections) for r in results)
    assert results[0] == Detections([Box(item="red square", box=[1.0, 2.0, 4.0, 5.0], score=1.0)], ["blue circle"])
    assert results[1] == Detections([], ["tree"])
    dino = GroundingDino(GroundConfig(), StageContext())  # its box post-processing, without a model
    assert dino._finish([], ["tree"]) == Detections([], ["tree"])

    stage = GroundStage.__new__(GroundStage)  # build reads only the backend's result
    tagged = TagRecord(id="a.png", image="a.png", width=40, height=30, tags=["dog", "sofa"])
    found = Detections([Box(item="dog", box=[0.0, 1.0, 20.0, 30.0], score=0.8)], ["sofa"])
    rec = stage.build(StageItem(tagged, result=found))
    assert (rec.status, rec.boxes, rec.ungrounded, rec.error) == ("ok", found.boxes, ["sofa"], None)
    assert (rec.id, rec.width, rec.height) == ("a.png", 40, 30)
    empty = stage.build(StageItem(tagged, result=Detections([], ["dog", "sofa"])))
    assert empty.status == "failed" and empty.error.type == "no_boxes" and empty.ungrounded == ["dog", "sofa"]
