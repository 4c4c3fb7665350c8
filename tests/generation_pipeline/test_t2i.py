"""The ``t2i`` stage on the tiny text-to-image model and on the shapes world's renderer: presets per model family,
a prompt painted in a batch equal to it painted alone, records and images reproducible bit for bit, resume after a
kill with the same bytes, truncation recorded, ``render`` equal to the world's renderer, failures kept to their
negative, paths that cannot escape ``negatives/``, and one clear line for every bad input before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genemi.errors import CheckpointError, ConfigError
from genemi.generation_pipeline import pipeline
from genemi.generation_pipeline.diffusion import NonFiniteOutput
from genemi.generation_pipeline.image_files import safe_component
from genemi.generation_pipeline.seeds import derive_seed
from genemi.generation_pipeline.stage import StageContext
from genemi.generation_pipeline.t2i.config import T2IConfig
from genemi.generation_pipeline.t2i.diffusers_backend import DiffusersPainter, describe, t2i_dtype
from genemi.generation_pipeline.t2i.stage import T2IStage, negative_path
from genemi.manifest import encode_line, read_records
from genemi.models.files import ModelFolder, PipelineFolder
from genemi.records import Failure, NegativePlan, PlannedNegative

STEPS = 2


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sd(tmp_path_factory):
    from genemi.models.tiny import TINY_BUILDERS

    return TINY_BUILDERS["sd_t2i"](tmp_path_factory.mktemp("sd_t2i"), 0)


def loaded(model, **kw) -> DiffusersPainter:
    painter = DiffusersPainter(T2IConfig(t2i_model=str(model), t2i_steps=STEPS, **kw), StageContext())
    painter.check()
    painter.load()
    return painter


@pytest.fixture(scope="module")
def painter(sd):
    return loaded(sd["sd_t2i"], t2i_batch_size=3)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from genemi.synthetic import write_world

    return write_world(tmp_path_factory.mktemp("world"), num_train=6, num_test=2, size=48, supersample=2,
                       vga_pairs=1, vga_per_pair=1, winoground=1)


LONG = " and ".join(["a large red circle left of a small blue square"] * 12)  # ~110 tokens: over 77


def _line(rec) -> str:
    return encode_line(rec.model_dump(mode="json", exclude_none=True)) + "\n"


def negcaptions(world) -> list[NegativePlan]:
    """Plans for the world's train images: each scene's captions made false (another colour for one object), one
    over-long caption, one negative failed upstream, an image with no ok negative, an image failed upstream."""
    import random

    from genemi.synthetic.world import read_scene_annotations, sugarcrepe_negative

    rng = random.Random(0)
    plans = []
    for k, ann in enumerate(read_scene_annotations(world.train_scenes)):
        rid = ann["image"]
        negs = []
        for c, source in enumerate(ann["captions"][:2]):
            nid = f"{rid}/cap_{c}/neg_0"
            false = sugarcrepe_negative(ann["scene"], "replace_att", rng)
            negs.append(PlannedNegative(id=nid, source=source, caption=false, kind="replace_attribute",
                                        seed=derive_seed(0, nid), model="rules"))
        if k == 1:
            nid = f"{rid}/cap_2/neg_0"
            negs.append(PlannedNegative(id=nid, source=ann["captions"][2], caption=LONG, kind="replace_object",
                                        seed=derive_seed(0, nid), model="rules"))
            negs[0] = negs[0].model_copy(update={"status": "failed", "error": Failure(
                stage="negcaption", type="no_edit", message="no edit applies")})
        if k == 3:
            negs = [n.model_copy(update={"status": "failed", "error": Failure(stage="negcaption", type="no_edit",
                                                                              message="no edit applies")})
                    for n in negs]
        status = {"status": "failed", "error": Failure(stage="tag", type="ImageError", message="unreadable")} \
            if k == 4 else {}
        plans.append(NegativePlan(id=rid, image=rid, width=48, height=48, caption=ann["captions"][0],
                                  negatives=negs, **status))
    return plans


def write_negcaptions(world, out: Path) -> list[NegativePlan]:
    out.mkdir(parents=True, exist_ok=True)
    plans = negcaptions(world)
    (out / "negcaptions.jsonl").write_text("".join(_line(p) for p in plans))
    return plans


def cli(world, out, *extra) -> list[str]:
    return ["--input-dir", str(world.images), "--output-dir", str(out), "--stages", "t2i", "--device", "cpu",
            "--no-progress", "--batch-size", "t2i=2", *extra]


def diffusers_cli(world, out, sd, *extra) -> list[str]:
    return cli(world, out, "--t2i-model", str(sd["sd_t2i"]), "--t2i-steps", str(STEPS), "--t2i-batch-size", "3",
               *extra)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(world, sd, tmp_path_factory):
    out = tmp_path_factory.mktemp("t2i_run")
    write_negcaptions(world, out)
    assert pipeline.main(diffusers_cli(world, out, sd)) == 0
    return out


# --- presets, dtype ------------------------------------------------------------------------------------------


def _folder(name: str, denoiser: dict, vae_blocks: int = 4) -> PipelineFolder:
    part = "transformer" if "3" in name else "unet"
    return PipelineFolder(Path("/m"), {"_class_name": name}, {
        part: ModelFolder(Path("/m") / part, denoiser, [], {}),
        "vae": ModelFolder(Path("/m/vae"), {"block_out_channels": [128] * vae_blocks}, [], {})})


UNET = {"in_channels": 4, "block_out_channels": [320, 640, 1280, 1280]}


@pytest.mark.parametrize("name, denoiser, family, native, steps, guidance", [
    ("StableDiffusionPipeline", {**UNET, "sample_size": 64}, "sd", 512, 50, 7.5),  # SD 1.5, SD 2.1-base
    ("StableDiffusionPipeline", {**UNET, "sample_size": 96}, "sd", 768, 50, 7.5),  # SD 2.1
    ("StableDiffusionXLPipeline", {**UNET, "sample_size": 128}, "sdxl", 1024, 50, 5.0),
    ("StableDiffusionXLPipeline", {**UNET, "sample_size": 64}, "sdxl-turbo", 512, 4, 0.0),
    ("StableDiffusion3Pipeline", {"in_channels": 16, "sample_size": 128, "patch_size": 2}, "sd3", 1024, 28, 7.0),
])
def test_the_family_and_its_preset_come_from_the_model_files(name, denoiser, family, native, steps, guidance):
    info = describe(_folder(name, denoiser), "--t2i-model")
    assert (info.pipeline, info.family, info.native) == (name, family, native)
    painter = DiffusersPainter(T2IConfig(t2i_model="/m"), StageContext())
    painter.model = info
    assert painter.steps_and_guidance == (steps, guidance) and painter.size == native
    painter.config = T2IConfig(t2i_model="/m", t2i_steps=1, t2i_guidance=2.0, t2i_size=256)
    assert painter.steps_and_guidance == (1, 2.0) and painter.size == 256  # flags win
    painter.config = T2IConfig(t2i_model="/m", t2i_preset="sdxl-turbo")
    assert painter.steps_and_guidance == (4, 0.0)  # a named preset wins over the detected family


def test_other_pipelines_and_inpainting_unets_are_refused():
    with pytest.raises(CheckpointError, match="holds a StableDiffusionInpaintPipeline, not a text-to-image pipeline"):
        describe(_folder("StableDiffusionInpaintPipeline", {**UNET, "sample_size": 64}), "--t2i-model")
    with pytest.raises(CheckpointError, match="the UNet has 9 input channels, expected a text-to-image UNet"):
        describe(_folder("StableDiffusionPipeline", {**UNET, "in_channels": 9, "sample_size": 64}), "--t2i-model")


def test_dtype_auto_is_the_runs_rule_and_otherwise_the_runs(monkeypatch):
    import genemi.precision

    monkeypatch.setattr(genemi.precision, "_cuda_bf16", lambda device: True)
    assert t2i_dtype("auto", None, "cuda:0") == torch.bfloat16
    monkeypatch.setattr(genemi.precision, "_cuda_bf16", lambda device: False)
    assert t2i_dtype("auto", None, "cuda:0") == torch.float16
    assert t2i_dtype("auto", torch.float16, "cpu") == torch.float32
    assert t2i_dtype(None, torch.float16, "cuda") == torch.float16 and t2i_dtype(None, None, "cpu") == torch.float32
    assert t2i_dtype("fp16", None, "cuda") == torch.float16
    with pytest.raises(ConfigError, match="--t2i-dtype fp16 with --device cpu"):
        t2i_dtype("fp16", None, "cpu")


# --- the backend ---------------------------------------------------------------------------------------------

PROMPTS = ["a large red circle left of a small blue square", "a green star", "a striped yellow hexagon above a "
           "white cross", "a purple diamond on a grey background", "a red circle"]


def test_provenance_names_what_the_preset_resolved_to(painter):
    prov = painter.provenance()
    assert (prov["family"], prov["preset"], prov["steps"]) == ("sd", "sd", painter.steps_and_guidance[0])
    assert prov["guidance"] == painter.steps_and_guidance[1] and prov["size"] == painter.size
    assert prov["scheduler"]["class"] == type(painter.pipe.scheduler).__name__
    assert prov["scheduler"]["config"]["num_train_timesteps"] == painter.pipe.scheduler.config.num_train_timesteps


def test_a_prompt_painted_in_a_batch_equals_it_painted_alone(painter):
    seeds = [11, 12, 13, 14, 15]
    together = painter.paint(PROMPTS, seeds)  # two pipeline calls: 3 + 2 prompts
    assert painter.size == 32 and all(p.image.shape == (32, 32, 3) and p.error is None for p in together)
    for k in range(len(PROMPTS)):
        [alone] = painter.paint([PROMPTS[k]], [seeds[k]])
        assert np.abs(alone.image.astype(int) - together[k].image).max() <= 2, k
    again = painter.paint(PROMPTS, seeds)  # the same batches again: the same bytes
    assert all((a.image == b.image).all() for a, b in zip(again, together))
    assert np.abs(together[0].image.astype(int) - together[1].image).max() > 10  # different prompts and seeds
    [other_seed] = painter.paint([PROMPTS[0]], [99])
    assert np.abs(other_seed.image.astype(int) - together[0].image).max() > 10


def test_prompts_longer_than_the_text_encoder_are_reported_truncated(painter):
    assert painter.truncated([PROMPTS[0], LONG]) == [False, True]
    [p] = painter.paint([LONG], [1])
    assert p.truncated and p.image is not None


def test_single_file_paints_like_the_folder(sd, painter):
    single = loaded(sd["sd_t2i_single_file"], t2i_config=str(sd["sd_t2i"]))
    a, b = single.paint(PROMPTS[:2], [1, 2]), painter.paint(PROMPTS[:2], [1, 2])
    assert all(np.abs(x.image.astype(int) - y.image).max() <= 1 for x, y in zip(a, b))


def test_non_finite_output_fails_only_that_prompt(sd):
    broken = loaded(sd["sd_t2i"])
    broken.pipe.unet.conv_out.bias.data[:] = float("nan")
    out = broken.paint(PROMPTS[:2], [1, 2])
    assert all(isinstance(p.error, NonFiniteOutput) and p.image is None for p in out)


# --- the stage ----------------------------------------------------------------------------------------------


def test_the_stage_paints_every_ok_negative_and_carries_the_rest(run, world):
    plans = {p.id: p for p in negcaptions(world)}
    recs = {r.id: r for r in read_records(run / "negimages.jsonl", NegativePlan)}
    assert sorted(recs) == sorted(plans)
    painted = 0
    for rid, rec in recs.items():
        plan = plans[rid]
        if plan.status != "ok" or not any(n.status == "ok" for n in plan.negatives):
            assert rec == plan  # failed upstream, or nothing to paint: carried as it is
            continue
        for neg, before in zip(rec.negatives, plan.negatives):
            if before.status != "ok":
                assert neg == before
                continue
            assert neg.status == "ok" and neg.truncated == (neg.caption == LONG)
            assert neg.image == f"negatives/{safe_component(rid)}/{neg.id[len(rid) + 1:]}.png"
            img = np.asarray(Image.open(run / neg.image))
            assert img.shape == (32, 32, 3)
            painted += 1
    assert painted == 8
    assert not list((run / "negatives").rglob(".tmp-*"))
    settings = json.loads((run / "negimages.jsonl.settings.json").read_text())["settings"]
    assert settings["t2i_steps"] == STEPS and "t2i_batch_size" not in settings  # batching changes no content


def test_records_and_images_are_reproducible_bit_for_bit(run, world, sd, tmp_path):
    out = tmp_path / "again"
    write_negcaptions(world, out)
    assert pipeline.main(diffusers_cli(world, out, sd)) == 0
    assert (out / "negimages.jsonl").read_bytes() == (run / "negimages.jsonl").read_bytes()
    assert files(out / "negatives") == files(run / "negatives")


def test_kill_during_t2i_then_rerun_gives_the_same_bytes(run, world, sd, tmp_path, monkeypatch):
    out = tmp_path / "killed"
    write_negcaptions(world, out)
    order = [p.id for p in negcaptions(world)]
    real = T2IStage.skip

    def killed(self, item):
        if item.id == order[2]:  # the first image of the second batch
            raise KeyboardInterrupt  # killed mid-stage
        return real(self, item)

    monkeypatch.setattr(T2IStage, "skip", killed)
    assert pipeline.main(diffusers_cli(world, out, sd)) == 130
    lines = (out / "negimages.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == order[:2]
    # older runs were killed while writing images of a later batch: one this run paints again, one it does not
    later = Path(next(r for r in read_records(run / "negimages.jsonl", NegativePlan) if r.id == order[2])
                 .negatives[0].image)
    (out / later.parent).mkdir(parents=True, exist_ok=True)
    for name in (".tmp-" + later.name, ".tmp-neg_7.png"):
        (out / later.parent / name).write_bytes(b"\x89PNG half")
    monkeypatch.setattr(T2IStage, "skip", real)
    assert pipeline.main(diffusers_cli(world, out, sd)) == 0
    assert (out / "negimages.jsonl").read_bytes() == (run / "negimages.jsonl").read_bytes()
    assert files(out / "negatives") == files(run / "negatives")


def test_a_negative_that_cannot_be_painted_fails_alone(world, sd, painter, tmp_path, monkeypatch):
    real = DiffusersPainter.paint

    def first_nan(self, prompts, seeds):
        out = real(self, prompts, seeds)
        out[0].image, out[0].error = None, NonFiniteOutput("the model returned non-finite pixels")
        return out

    monkeypatch.setattr(DiffusersPainter, "paint", first_nan)
    stage = T2IStage(T2IConfig(t2i_model=str(sd["sd_t2i"]), t2i_steps=STEPS), StageContext(output_dir=tmp_path))
    stage.backend = painter
    plan = negcaptions(world)[0]
    blank = plan.negatives[1].model_copy(update={"id": f"{plan.id}/cap_1/neg_1", "caption": "  "})
    [rec] = stage.apply([plan.model_copy(update={"negatives": [*plan.negatives, blank]})])
    first, second, third = rec.negatives
    assert rec.status == "ok" and first.status == "failed" and first.error.type == "NonFiniteOutput"
    assert first.error.stage == "t2i" and first.image is None and first.truncated is False
    assert second.status == "ok" and (tmp_path / second.image).is_file()
    assert third.status == "failed" and third.error.type == "no_caption" and third.image is None


def test_hostile_ids_cannot_write_outside_negatives(painter, tmp_path):
    stage = T2IStage(T2IConfig(t2i_model="unused"), StageContext(output_dir=tmp_path / "out"))
    stage.backend = painter
    rid = "../../../escape/a.png"
    negs = [PlannedNegative(id=nid, source="x", caption="a red circle", seed=k, model="rules")
            for k, nid in enumerate([f"{rid}/../../../../tmp/evil/neg_0", "/etc/passwd", f"{rid}/cap_0/..",
                                     f"{rid}/cap_0/neg_0"])]
    [rec] = stage.apply([NegativePlan(id=rid, image="a.png", negatives=negs)])
    root = (tmp_path / "out" / "negatives").resolve()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 4 and all(p.resolve().is_relative_to(root) for p in written)
    assert len({n.image for n in rec.negatives}) == 4
    for neg in rec.negatives:
        assert neg.status == "ok" and ".." not in Path(neg.image).parts
        assert (tmp_path / "out" / neg.image).resolve().is_relative_to(root)
    assert negative_path(tmp_path, "x.png", "x.png/cap_1/neg_2", "png") == tmp_path / "negatives/x.png/cap_1/neg_2.png"


# --- render: the world's own renderer ------------------------------------------------------------------------


def test_render_paints_each_world_caption_exactly_as_the_world_renders_it(world, tmp_path):
    from genemi.synthetic.parsing import parse_caption
    from genemi.synthetic.scenes import render

    out = tmp_path / "render"
    write_negcaptions(world, out)
    assert pipeline.main(cli(world, out, "--painter", "render")) == 0
    recs = read_records(out / "negimages.jsonl", NegativePlan)
    painted = 0
    for rec in recs:
        for neg in rec.negatives if rec.status == "ok" else ():
            if neg.caption == LONG:  # 13 objects: more than the 3x3 grid holds
                assert neg.status == "failed" and neg.error.type == "CaptionParseError" and neg.image is None
            elif neg.status == "ok":
                expected = render(parse_caption(neg.caption, neg.seed), 48, 2).image  # the world's size (splits.json)
                assert (np.asarray(Image.open(out / neg.image)) == np.asarray(expected)).all()
                assert neg.truncated is False
                painted += 1
    assert painted == 7
    reasons = json.loads((out / "run_summary.json").read_text())["stages"]["t2i"]["failure_reasons"]
    assert reasons["t2i/CaptionParseError"] == 1  # a negative's failure is counted, not only a record's
    first = (out / "negimages.jsonl").read_bytes()
    shutil.rmtree(out / "negatives")
    (out / "negimages.jsonl").unlink()
    assert pipeline.main(cli(world, out, "--painter", "render")) == 0
    assert (out / "negimages.jsonl").read_bytes() == first  # the same layouts from the same seeds


def test_an_unparseable_caption_fails_its_negative_only(world, tmp_path):
    plan = negcaptions(world)[0]
    plan = plan.model_copy(update={"negatives": [plan.negatives[0].model_copy(update={"caption": "a dog on a sofa"}),
                                                 plan.negatives[1]]})
    stage = T2IStage(T2IConfig(backend="render"), StageContext(image_root=world.images, output_dir=tmp_path))
    stage.check()
    [rec] = stage.apply([plan])
    bad, good = rec.negatives
    assert bad.status == "failed" and "'a dog on a sofa' is not a shapes-world clause" in bad.error.message
    assert good.status == "ok" and good.image


# --- bad input: one line before any work ---------------------------------------------------------------------


def _truncated_copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    weights = dest / "unet" / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return dest


@pytest.fixture(scope="module")
def inpainting(tmp_path_factory):
    from genemi.models.tiny import save_tiny_sd_inpainting

    return save_tiny_sd_inpainting(tmp_path_factory.mktemp("sd_inpaint"))["sd_inpainting"]


@pytest.mark.parametrize("case, message", [
    ("inpainting", "--t2i-model {p}: holds a StableDiffusionInpaintPipeline, not a text-to-image pipeline"),
    ("transformers", "--t2i-model {p}: has no model_index.json: not a diffusers pipeline folder (it holds a"),
    ("truncated", "--t2i-model {p}/unet/diffusion_pytorch_model.safetensors: truncated"),
    ("missing", "--t2i-model {p}: not found"),
    ("none", "--painter diffusers needs --t2i-model"),
    ("single", "--t2i-model {p} is a single file: give --t2i-config"),
    ("steps", "--t2i-steps 0: must be at least 1"),
    ("size", "--t2i-size -64: must be a positive multiple of 8"),
    ("guidance", "--t2i-guidance -1.0: must not be negative"),
    ("batch", "--t2i-batch-size 0: must be at least 1"),
    ("render_option", "--t2i-steps applies only to --painter diffusers, not --painter render"),
])
def test_bad_input_is_one_line_naming_the_flag_before_any_work(case, message, world, sd, inpainting, tmp_path,
                                                                capsys):
    model = {"inpainting": inpainting, "transformers": sd["sd_t2i"] / "text_encoder", "missing": tmp_path / "nope",
             "truncated": tmp_path / "cut", "single": sd["sd_t2i_single_file"]}.get(case, sd["sd_t2i"])
    if case == "truncated":
        _truncated_copy(sd["sd_t2i"], model)
    flags = {"none": [], "steps": ["--t2i-steps", "0"], "size": ["--t2i-size", "-64"],
             "guidance": ["--t2i-guidance", "-1"], "batch": ["--t2i-batch-size", "0"],
             "render_option": ["--painter", "render", "--t2i-steps", "3"]}.get(case)
    if flags is None or case in ("steps", "size", "guidance", "batch"):
        flags = ["--t2i-model", str(model), *(flags or [])]
    out = tmp_path / "out"
    write_negcaptions(world, out)
    rc = pipeline.main(cli(world, out, *flags))
    err = capsys.readouterr().err
    assert rc == 2 and message.format(p=model) in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (out / "negimages.jsonl").exists() and not (out / "negatives").exists()
