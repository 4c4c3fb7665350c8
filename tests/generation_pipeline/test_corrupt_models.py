"""The corrupt-weights matrix: every model flag of every stage x {truncated, empty, text, another model}.

``genemi generate`` must stop before the first image with exit code 2 and one line on stderr naming the flag and
the file (or its folder), with no traceback and no manifest written: the checks read each model file's structure
(:mod:`genemi.models.files`) instead of finding the damage when the stage loads its weights."""

import shutil
from pathlib import Path

import pytest

from genemi.generation_pipeline import pipeline

MODES = ("truncated", "empty", "text", "wrong")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from genemi.models import tiny

    root = tmp_path_factory.mktemp("corrupt_models")
    out = {**tiny.save_tiny_blip(root), **tiny.save_tiny_blip_itm(root), **tiny.save_tiny_grounding_dino(root),
           **tiny.save_tiny_grounding_dino_original(root), **tiny.save_tiny_sam(root),
           **tiny.save_tiny_chat_lm(root), **tiny.save_tiny_masked_lm(root), **tiny.save_tiny_causal_lm(root),
           **tiny.save_tiny_sd_inpainting(root), **tiny.save_tiny_sd_t2i(root)}
    out["tag2text"] = tiny.save_tiny_tag2text(root)["tag2text"]
    out["clip"] = tiny.save_tiny_clip(root / "clip")
    return out


def _damage(path: Path, mode: str) -> None:
    if mode == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif mode == "empty":
        path.write_bytes(b"")
    else:  # what a failed hub download leaves
        path.write_text("Entry not found\n")


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst))


# flag -> (how to build the damaged input: (models, tmp, mode) -> (flag value, path named), other argv)
def _folder(key: str, weights: str, wrong: str):
    def build(models, tmp, mode):
        if mode == "wrong":
            return models[wrong], models[wrong]
        folder = _copy(models[key], tmp / key)
        _damage(folder / weights, mode)
        return folder, folder / weights
    return build


def _file(key: str, wrong: str, suffix: str = ""):
    def build(models, tmp, mode):
        src = models[key] if not isinstance(models[key], dict) else models[key]["open_clip_state_dict"]
        path = _copy(models[wrong] if mode == "wrong" else src, tmp / f"model{suffix or src.suffix}")
        if mode != "wrong":
            _damage(path, mode)
        return path, path
    return build


def _tag2text(models, tmp, mode):
    folder = _copy(models["tag2text"], tmp / "tag2text")
    ckpt = folder / "tag2text_tiny.pth"
    if mode == "wrong":
        shutil.copy(models["sam"], ckpt)
    else:
        _damage(ckpt, mode)
    return ckpt, ckpt


def _text_encoder(models, tmp, mode):
    if mode == "wrong":
        return models["causal_lm"], models["causal_lm"] / "config.json"
    folder = _copy(models["gd_text_encoder"], tmp / "bert")
    _damage(folder / "config.json", mode)
    return folder, folder / "config.json"


def _diffusers_config(key: str):
    def build(models, tmp, mode):
        if mode == "wrong":
            return models["blip"], models["blip"]
        folder = _copy(models[key], tmp / key)
        _damage(folder / "unet" / "config.json", mode)
        return folder, folder / "unet" / "config.json"
    return build


T2I = ["--stages", "t2i", "--painter", "diffusers"]


CASES = {
    "--blip-caption-model": (_folder("blip", "model.safetensors", "blip_itm"), lambda m: ["--stages", "tag",
                                                                                         "--tagger", "blip"]),
    "--tag2text-checkpoint": (_tag2text, lambda m: ["--stages", "tag", "--tagger", "tag2text"]),
    "--gd-model": (_folder("grounding_dino", "model.safetensors", "blip"), lambda m: ["--stages", "ground"]),
    "--gd-checkpoint": (_file("gd_checkpoint", "sam"), lambda m: ["--stages", "ground", "--gd-config",
                                                                 str(m["gd_config"])]),
    "--gd-text-encoder": (_text_encoder, lambda m: ["--stages", "ground", "--gd-config", str(m["gd_config"]),
                                                    "--gd-checkpoint", str(m["gd_checkpoint"])]),
    "--sam-checkpoint": (_file("sam", "gd_checkpoint"), lambda m: ["--stages", "segment"]),
    "--llm-model": (_folder("chat_lm", "model.safetensors", "masked_lm"), lambda m: ["--stages", "portray",
                                                                                    "--portrayer", "hf"]),
    "--sd-checkpoint": (_folder("sd_inpainting", "unet/diffusion_pytorch_model.safetensors", "blip"),
                        lambda m: ["--stages", "inpaint"]),
    "--sd-checkpoint FILE": (_file("sd_inpainting_single_file", "blip_itm_weights", ".safetensors"),
                             lambda m: ["--stages", "inpaint", "--sd-config", str(m["sd_inpainting"])]),
    "--sd-config": (_diffusers_config("sd_inpainting"), lambda m: ["--stages", "inpaint", "--sd-checkpoint",
                                           str(m["sd_inpainting_single_file"])]),
    "--t2i-model": (_folder("sd_t2i", "unet/diffusion_pytorch_model.safetensors", "sd_inpainting"), lambda m: T2I),
    "--t2i-model FILE": (_file("sd_t2i_single_file", "blip_itm_weights", ".safetensors"),
                         lambda m: [*T2I, "--t2i-config", str(m["sd_t2i"])]),
    "--t2i-config": (_diffusers_config("sd_t2i"), lambda m: [*T2I, "--t2i-model", str(m["sd_t2i_single_file"])]),
    "--blip-model": (_folder("blip_itm", "model.safetensors", "blip"), lambda m: ["--stages", "score"]),
    "--clip-score-pretrained": (_file("clip", "sam"), lambda m: ["--stages", "score", "--blip-model",
                                                                 str(m["blip_itm"]), "--clip-score-model",
                                                                 str(m["clip"]["config"])]),
}

#: what the one line says besides the flag and the file, per mode (the "wrong" model: per flag)
REASONS = {"truncated": ("truncated",), "empty": ("is empty",), "text": ("is a text file", "is not valid JSON")}
WRONG = {
    "--blip-caption-model": "holds a BlipForImageTextRetrieval, not a BLIP captioning model",
    "--tag2text-checkpoint": "not a Tag2Text checkpoint",
    "--gd-model": "holds a 'blip' model, not 'grounding-dino'",
    "--gd-checkpoint": "not an original Grounding DINO checkpoint",
    "--gd-text-encoder": "holds a 'gpt2' model, not 'bert'",
    "--sam-checkpoint": "not a segment-anything checkpoint",
    "--llm-model": "holds a RobertaForMaskedLM, not a causal LM",
    "--sd-checkpoint": "no model_index.json",
    "--sd-checkpoint FILE": "holds no Stable Diffusion UNet",
    "--sd-config": "no model_index.json",
    "--t2i-model": "holds a StableDiffusionInpaintPipeline, not a text-to-image pipeline",
    "--t2i-model FILE": "holds no Stable Diffusion UNet",
    "--t2i-config": "no model_index.json",
    "--blip-model": "holds a BlipForConditionalGeneration, not an image-text matching model",
    "--clip-score-pretrained": "does not fit the tiny-clip architecture",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flag", list(CASES))
def test_a_damaged_model_stops_the_run_before_any_image_in_one_line(models, tmp_path, capsys, flag, mode):
    models = {**models, "blip_itm_weights": models["blip_itm"] / "model.safetensors"}
    build, extra = CASES[flag]
    value, named = build(models, tmp_path, mode)
    images, out = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    argv = ["--input-dir", str(images), "--output-dir", str(out), "--device", "cpu", "--no-progress",
            *extra(models), flag.split()[0], str(value)]
    capsys.readouterr()
    assert pipeline.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genemi generate: error: "), err
    assert "Traceback" not in err and flag.split()[0] in err and (str(named) in err or str(value) in err), err
    reasons = (WRONG[flag],) if mode == "wrong" else REASONS[mode]
    assert any(reason in err for reason in reasons), err
    assert not out.exists() or not list(out.rglob("*.jsonl")), list(out.rglob("*"))


def test_the_undamaged_models_pass_every_check(models, tmp_path, capsys):
    """The same command lines with the good files get past every model check: they stop only at what the pipeline
    looks at after the checks (the stage's input manifest, then the images; the folder has none), so the matrix
    above fails for the damage, not for its setup."""
    models = {**models, "blip_itm_weights": models["blip_itm"] / "model.safetensors"}
    good = {"--blip-caption-model": models["blip"], "--tag2text-checkpoint": models["tag2text"] / "tag2text_tiny.pth",
            "--gd-model": models["grounding_dino"], "--gd-checkpoint": models["gd_checkpoint"],
            "--gd-text-encoder": models["gd_text_encoder"], "--sam-checkpoint": models["sam"],
            "--llm-model": models["chat_lm"], "--sd-checkpoint": models["sd_inpainting"],
            "--sd-checkpoint FILE": models["sd_inpainting_single_file"], "--sd-config": models["sd_inpainting"],
            "--t2i-model": models["sd_t2i"], "--t2i-model FILE": models["sd_t2i_single_file"],
            "--t2i-config": models["sd_t2i"],
            "--blip-model": models["blip_itm"], "--clip-score-pretrained": models["clip"]["open_clip_state_dict"]}
    for k, (flag, (_, extra)) in enumerate(CASES.items()):
        images, out = tmp_path / f"case{k}" / "images", tmp_path / f"case{k}" / "out"
        images.mkdir(parents=True)
        argv = ["--input-dir", str(images), "--output-dir", str(out), "--device", "cpu", "--no-progress",
                *extra(models), flag.split()[0], str(good[flag])]
        code = pipeline.main(argv)
        err = capsys.readouterr().err
        assert code == 2 and flag.split()[0] not in err and "Traceback" not in err, err
        assert ("needs" in err and ".jsonl" in err) or "no jpg/jpeg/png/webp images under" in err, (flag, err)


def test_stable_diffusion_files_fit_the_unet_genemi_paints_with(models, tmp_path):
    """A ``.ckpt`` single file is read under its ``state_dict`` (Python objects a safe load refuses are refused
    now, not when diffusers loads it); its UNet must match the ``--sd-config`` one; a folder's UNet must take 9
    (inpainting) or 4 (text-to-image) input channels."""
    import argparse
    import json

    import torch
    from safetensors.torch import load_file, save_file

    from genemi.errors import CheckpointError
    from genemi.generation_pipeline.inpainting.config import InpaintConfig
    from genemi.generation_pipeline.inpainting.diffusers_backend import DiffusersInpainter
    from genemi.generation_pipeline.stage import StageContext

    def check(path, config=models["sd_inpainting"]):
        DiffusersInpainter(InpaintConfig(sd_checkpoint=str(path), sd_config=str(config)), StageContext()).check()

    weights = load_file(str(models["sd_inpainting_single_file"]))
    ckpt = tmp_path / "sd.ckpt"
    torch.save({"state_dict": weights, "global_step": 5}, ckpt)
    check(ckpt)
    torch.save({"state_dict": weights, "callbacks": argparse.Namespace(every=1)}, ckpt)
    with pytest.raises(CheckpointError, match=r"sd.ckpt: holds Python objects that a safe load refuses "
                                              r"\(argparse.Namespace\)"):
        check(ckpt)
    conv = "model.diffusion_model.input_blocks.0.0.weight"
    text_to_image = tmp_path / "t2i.safetensors"
    save_file({**weights, conv: weights[conv][:, :4].contiguous()}, str(text_to_image))
    with pytest.raises(CheckpointError, match="its UNet takes 4 input channels at width 16, the --sd-config UNet 9 "
                                              "at width 16"):
        check(text_to_image)
    folder = _copy(models["sd_inpainting"], tmp_path / "sd8")
    config = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 8}))
    with pytest.raises(CheckpointError, match="unet: the UNet has 8 input channels, expected an inpainting UNet"):
        DiffusersInpainter(InpaintConfig(sd_checkpoint=str(folder)), StageContext()).check()


def test_checkpoints_are_fitted_key_by_key_to_the_model_they_load_into(models, tmp_path):
    """SAM, Tag2Text and CLIP files are compared, name and shape, with their model built on the ``meta``
    device: a missing key or a wrong shape is named before any image (and every CLIP format passes)."""
    import torch

    from genemi.errors import CheckpointError
    from genemi.generation_pipeline.segmentation.sam import check_sam_checkpoint
    from genemi.models.clip import check_clip
    from genemi.models.tag2text.loader import check_tag2text

    sam = torch.load(models["sam"], weights_only=True)
    assert check_sam_checkpoint(models["sam"])["variant"] == "custom"
    key = "mask_decoder.iou_prediction_head.layers.1.bias"
    torch.save({k: v for k, v in sam.items() if k != key}, tmp_path / "sam_missing.pth")
    with pytest.raises(CheckpointError, match=f"does not fit SAM .*: missing keys \\(1\\): {key}"):
        check_sam_checkpoint(tmp_path / "sam_missing.pth")
    torch.save({**sam, key: torch.zeros(3)}, tmp_path / "sam_shape.pth")
    with pytest.raises(CheckpointError, match=f"shape mismatches \\(1\\): {key} \\(3,\\) vs model"):
        check_sam_checkpoint(tmp_path / "sam_shape.pth")

    ckpt = models["tag2text"] / "tag2text_tiny.pth"
    assert check_tag2text(ckpt).num_classes == 40
    state = torch.load(ckpt, weights_only=True)["model"]
    folder = _copy(models["tag2text"], tmp_path / "t2t")
    torch.save({"model": {k: v for k, v in state.items() if k != "fc.b"}}, folder / "tag2text_tiny.pth")
    with pytest.raises(CheckpointError, match="checkpoint does not fit the model \\(missing keys: fc.b\\)"):
        check_tag2text(folder / "tag2text_tiny.pth")

    clip = models["clip"]
    for fmt in ("open_clip_state_dict", "openai_state_dict", "openai_jit", "genemi_snapshot", "ceclip_train"):
        assert check_clip(str(clip["config"]), clip[fmt], "--clip-score-pretrained") == clip[fmt]
    assert check_clip(f"local-dir:{clip['open_clip_dir']}", None).name == "open_clip_model.safetensors"
    with pytest.raises(CheckpointError, match="does not fit the ViT-B-32 architecture"):
        check_clip("ViT-B-32", clip["open_clip_state_dict"], "--clip-score-pretrained")


def test_a_damaged_model_of_the_last_stage_stops_the_whole_chain_before_its_first_stage(tmp_path, capsys):
    """The report that started this: a ``--blip-model`` cut in half was found by the score stage, after tag,
    ground, segment, portray, caption and inpaint had run. Every selected stage's files are read first."""
    from genemi.demo import generation_argv, write_demo_inputs

    data, models = write_demo_inputs(tmp_path / "demo")
    blip = _copy(models["blip_itm"], tmp_path / "blip_cut")
    _damage(blip / "model.safetensors", "truncated")
    out = tmp_path / "gen"
    argv = [*generation_argv(data, {**models, "blip_itm": blip}, out, "tiny"), "--stages", "variations", "--limit", "2"]
    capsys.readouterr()
    assert pipeline.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"--blip-model {blip / 'model.safetensors'}: truncated" in err, err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))
