"""Original Grounding DINO checkpoints (.pth + .py config) -> transformers, checked against the original code's
outputs (``../shared/fixtures/groundingdino``, skipped when absent) and a tiny self-made original-layout checkpoint."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genemi.errors import CheckpointError, ConfigError
from genemi.generation_pipeline.grounding import GroundConfig
from genemi.generation_pipeline.grounding.grounding_dino import GroundingDino, load_grounding_model
from genemi.generation_pipeline.grounding.original import (OriginalProcessor, original_pixel_values, original_size,
                                                           preprocess_caption)
from genemi.generation_pipeline.stage import StageContext
from genemi.models import grounding_dino_original as gdo

FIXTURE = "fixtures/groundingdino"


@pytest.fixture(scope="module")
def tiny_original(tmp_path_factory):
    from genemi.models.tiny import TINY_BUILDERS

    return TINY_BUILDERS["grounding_dino_original"](tmp_path_factory.mktemp("gd_original"), seed=0)


@pytest.fixture(scope="module")
def fixture_model():
    folder = Path(__file__).resolve().parents[2].parent / "shared" / FIXTURE / "tiny_random"
    if not folder.is_dir():
        pytest.skip("../shared is not present (fresh clone)")
    sizes = json.loads((folder / "tiny_config.json").read_text())["swin_backbone"]
    swin = {k: sizes[k] for k in ("embed_dim", "depths", "num_heads", "window_size")}
    files = gdo.convert_original(folder / "GroundingDINO_tiny_random_cfg.py", folder / "groundingdino_tiny_random.pth",
                                 swin=swin)
    model, proc = load_grounding_model(None, str(folder / "GroundingDINO_tiny_random_cfg.py"),
                                       str(folder / "groundingdino_tiny_random.pth"), swin=swin)
    return folder, swin, files, model, proc


# --- config parsing ------------------------------------------------------------------------------------

def test_config_is_parsed_never_executed(tmp_path):
    good = tmp_path / "cfg.py"
    sizes = "num_queries = 900\nenc_layers = 6\ndec_layers = 6\ndim_feedforward = 2048\nnheads = 8\nhidden_dim = 256\n"
    good.write_text('"""doc"""\nmodelname = "groundingdino"\nbackbone = "swin_T_224_1k"\nreturn_interm_indices = [1, 2, 3]\n'
                    + sizes)
    assert gdo.parse_original_config(good)["return_interm_indices"] == [1, 2, 3]
    for body, message in [("import os\nmodelname = 'groundingdino'\n", "line 1: only `name = value`"),
                          ("modelname = 'groundingdino'\nbackbone = open('x').read()\n", "backbone is not a literal"),
                          ("modelname = 'detr'\nbackbone = 'swin_T_224_1k'\n", "not an original Grounding DINO config")]:
        bad = tmp_path / "bad.py"
        bad.write_text(body)
        with pytest.raises(ConfigError, match=re.escape(message)):
            gdo.parse_original_config(bad)
    with pytest.raises(ConfigError, match="backbone 'resnet50' is not supported"):
        gdo.swin_sizes({"backbone": "resnet50"})
    assert gdo.swin_sizes({"backbone": "swin_B_384_22k"})["window_size"] == 12
    assert gdo.swin_sizes({"backbone": "x", "swin_sizes": {"embed_dim": 8, "depths": [1] * 4, "num_heads": [1] * 4,
                                                          "window_size": 7}})["embed_dim"] == 8


# --- full-size key lists ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["swint_ogc_keys.json", "swinb_cogcoor_keys.json"])
def test_mapping_accounts_for_every_full_size_key(shared_dir, name):
    from transformers import BertConfig, GroundingDinoForObjectDetection

    info = json.loads((shared_dir / FIXTURE / name).read_text())
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    sd = {"module." + k["key"]: torch.empty(k["shape"], dtype=dtypes[k["dtype"]], device="meta") for k in info["keys"]}
    for extra in info["released_checkpoint_layout"]["extra_keys_not_in_model"]:
        sd[extra["key"]] = torch.empty(extra["shape"], dtype=dtypes[extra["dtype"]], device="meta")
    conv = gdo.convert_state_dict(sd)
    original = {k[len("module."):] for k in sd}
    accounted = set(conv.renamed) | set(conv.split) | set(conv.dropped)
    assert accounted == original and len(original) == info["num_state_dict_keys"] + 2
    assert {"label_enc.weight", "bert.embeddings.position_ids", "bert.pooler.dense.weight"} <= set(conv.dropped)
    assert all("relative_position_index" in k or k.startswith(("label_enc", "bert.")) for k in conv.dropped)
    cfg = gdo.hf_config(info["config_values"], BertConfig().to_dict())
    with torch.device("meta"):
        target = GroundingDinoForObjectDetection(cfg).state_dict()
    gdo.check_against_model(conv, target)  # every model entry filled (but Swin's unused final norm), shapes equal
    unfilled = [k for k in target if k not in conv.state_dict]
    assert all(re.fullmatch(gdo.UNFILLED[0], k) for k in unfilled) and len(unfilled) == 2
    # a config of the other backbone is refused with a message that says so
    other = dict(info["config_values"], backbone="swin_B_384_22k" if "swint" in name else "swin_T_224_1k")
    stripped = gdo.strip_prefix(sd)
    with pytest.raises(CheckpointError, match="config is for another backbone"):
        gdo._backbone_check(other, gdo.swin_sizes(other), stripped)


def test_unknown_keys_are_an_error_naming_them():
    sd = {"module.transformer.level_embed": torch.zeros(4, 8), "module.transformer.foo.weight": torch.zeros(2),
          "module.bert.extra": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"no known mapping: transformer\.foo\.weight, bert\.extra"):
        gdo.convert_state_dict(sd)


# --- preprocessing ---------------------------------------------------------------------------------------

def test_original_resize_rule_and_caption():
    assert original_size(240, 180) == (1066, 800)
    assert original_size(2000, 500) == (1332, 333)  # the 1333 cap: round(1333*500/2000)=333, then int(333*4)
    assert original_size(500, 2000) == (333, 1332)
    assert original_size(800, 1000) == (800, 1000)  # already the right size
    assert preprocess_caption("  Bird, Rock ") == "bird, rock." and preprocess_caption("a . b .") == "a . b ."


# --- acceptance on the original code's outputs -----------------------------------------------------------

def test_fixture_logits_boxes_and_topk_match_the_original(fixture_model):
    folder, _, files, model, _ = fixture_model
    meta = json.loads((folder / "run_meta.json").read_text())
    pix = torch.from_numpy(np.load(folder / "pixel_values.npz")["pixel_values"])
    inputs = {k: torch.tensor(meta[k]) for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        out = model(pixel_values=pix, **inputs)
    logits, want = out.logits.numpy(), np.load(folder / "expected_pred_logits.npy")
    assert np.array_equal(np.isinf(logits), np.isinf(want)) and np.isinf(want[..., 8:]).all()
    assert np.abs(logits[..., :8] - want[..., :8]).max() < 1e-4
    assert np.abs(out.pred_boxes.numpy() - np.load(folder / "expected_pred_boxes.npy")).max() < 1e-5
    inter = np.load(folder / "expected_intermediates.npz")
    topk = torch.topk(out.enc_outputs_class.max(-1).values, 100, dim=1).indices.numpy()
    assert np.array_equal(topk, inter["enc_topk_indices"])
    # the conversion round-trips to the original tensors (nothing lost but the dropped keys)
    back = gdo.to_original_state_dict(files.conversion.state_dict)
    orig = gdo.read_checkpoint(folder / "groundingdino_tiny_random.pth")
    assert set(back) == set(orig) - set(files.conversion.dropped)
    assert all(torch.equal(back[k], orig[k]) for k in back)


def test_fixture_predict_from_png_and_caption_matches_the_original(fixture_model):
    folder, _, _, model, proc = fixture_model
    image = Image.open(folder / "input.png")
    assert np.array_equal(original_pixel_values(image)[None].numpy(), np.load(folder / "pixel_values.npz")["pixel_values"])
    det = GroundingDino(GroundConfig(), StageContext(), model=model, processor=proc)
    caption = (folder / "caption.txt").read_text()
    expected = json.loads((folder / "expected_predict.json").read_text())
    for key, (bt, tt) in [("box_threshold=0.35,text_threshold=0.25", (0.35, 0.25)),
                          ("box_threshold=0.0,text_threshold=0.0", (0.0, 0.0))]:
        det.box_threshold, det.text_threshold = bt, tt
        boxes, scores, phrases, queries = det.predict(image, caption)
        want = expected[key]
        assert queries == want["query_indices"] and phrases == want["phrases"]
        assert np.abs(boxes.numpy() - np.array(want["boxes_cxcywh_normalized"])).max() < 1e-5
        assert np.abs(scores.numpy() - np.array(want["logits"])).max() < 1e-5
    assert len(expected["box_threshold=0.35,text_threshold=0.25"]["phrases"]) == 28


def test_fixture_through_the_stage_options_and_both_prompts(fixture_model, tmp_path):
    """--gd-config (with the genemi swin_sizes line) + --gd-text-encoder, through check/load/detect."""
    folder, swin, _, model, _ = fixture_model
    cfg = tmp_path / "cfg.py"
    cfg.write_text((folder / "GroundingDINO_tiny_random_cfg.py").read_text() + f"swin_sizes = {swin!r}\n")
    image = Image.open(folder / "input.png")
    found = {}
    for prompt in ("dots", "original"):
        det = GroundingDino(GroundConfig(gd_config=str(cfg), gd_checkpoint=str(folder / "groundingdino_tiny_random.pth"),
                                         gd_text_encoder=str(folder / "tiny_bert"), gd_prompt=prompt), StageContext())
        det.check()
        if prompt == "dots":
            det.load()
            assert isinstance(det.processor, OriginalProcessor)
            assert all(torch.equal(a, b) for a, b in zip(det.model.state_dict().values(), model.state_dict().values()))
        else:
            det.model, det.processor = model, fixture_model[4]
        [dets] = det.detect([image], [["red square", "blue circle"]])
        found[prompt] = ([(b.item, b.box, b.score) for b in dets.boxes], dets.ungrounded)
    # measured on the random-weight fixture (quoted in docs/generation_pipeline.md)
    dots, ungrounded = found["dots"]
    assert [b[0] for b in dots] == ["blue circle"] * 4 and ungrounded == ["red square"]
    assert [b[2] for b in dots] == pytest.approx([0.79032, 0.72116, 0.58287, 0.51919], abs=1e-4)
    # "red square, blue circle." -> 89 boxes whose phrases are 'blue [SEP]', ', blue [SEP]', 'blue', ...; after NMS
    # the surviving phrases are all "blue": the original's item, detected alone (prompt "blue")
    boxes, ungrounded = found["original"]
    assert {b[0] for b in boxes} == {"blue"} and len(boxes) == 8 and ungrounded == ["red square", "blue circle"]
    assert [b[2] for b in boxes][:3] == pytest.approx([0.62987, 0.4926, 0.44201], abs=1e-4)


# --- the tiny self-made original-layout checkpoint (runs in a fresh clone) -------------------------------

def test_tiny_original_checkpoint_loads_detects_and_converts(tiny_original, tmp_path):
    from genemi.cli import main as cli_main

    cfg, ckpt = str(tiny_original["gd_config"]), str(tiny_original["gd_checkpoint"])
    raw = torch.load(ckpt, weights_only=True)["model"]
    assert all(k.startswith("module.") for k in raw) and "module.label_enc.weight" in raw
    assert "module.backbone.0.layers.0.blocks.0.attn.qkv.weight" in raw
    model, proc = load_grounding_model(None, cfg, ckpt)
    assert isinstance(proc, OriginalProcessor)
    image = Image.new("RGB", (90, 60), (200, 30, 30))
    det = GroundingDino(GroundConfig(gd_config=cfg, gd_checkpoint=ckpt, box_threshold=0.0, text_threshold=0.0),
                        StageContext(), model=model, processor=proc)
    [dets] = det.detect([image], [["red square", "circle"]])
    assert dets.boxes and set(dets.ungrounded) | {b.item for b in dets.boxes} == {"red square", "circle"}
    det.config.gd_prompt = "original"
    [dets_o] = det.detect([image], [["red square", "circle"]])
    boxes_o = dets_o.boxes
    assert boxes_o and {b.item for b in boxes_o} <= set(det.surviving_phrases(image, ["red square", "circle"]))
    # genemi convert groundingdino -> a folder that --gd-model loads with the original preprocessing
    out = tmp_path / "converted"
    assert cli_main(["convert", "groundingdino", "--gd-config", cfg, "--gd-checkpoint", ckpt, "--output", str(out)]) == 0
    model2, proc2 = load_grounding_model(str(out))
    assert isinstance(proc2, OriginalProcessor)
    inputs = proc2(images=[image], text=["red square."])
    with torch.no_grad():
        a, b = model(**inputs), model2(**inputs)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.pred_boxes, b.pred_boxes)
    assert cli_main(["convert", "groundingdino", "--gd-config", cfg, "--gd-checkpoint", ckpt, "--output", str(out)]) == 2


def _check(**kw):
    GroundingDino(GroundConfig(**kw), StageContext()).check()


def test_wrong_files_fail_in_check_before_any_image(tiny_original, tmp_path, tiny_clip):
    cfg, ckpt = tiny_original["gd_config"], tiny_original["gd_checkpoint"]
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        _check(gd_config=str(cfg), gd_checkpoint=str(truncated))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(CheckpointError, match="is an HTML page \\(a failed download\\?\\)"):
        _check(gd_config=str(cfg), gd_checkpoint=str(garbage))
    other = tmp_path / "other.pth"
    torch.save({"model": {"module.image_encoder.patch_embed.proj.weight": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="not an original Grounding DINO checkpoint"):
        _check(gd_config=str(cfg), gd_checkpoint=str(other))
    with pytest.raises(CheckpointError, match="not an original Grounding DINO checkpoint"):
        _check(gd_config=str(cfg), gd_checkpoint=str(tiny_clip["open_clip_state_dict"]))
    text = cfg.read_text()
    wrong_backbone = tmp_path / "swinb.py"
    wrong_backbone.write_text(re.sub(r"swin_sizes = .*\n", "", text).replace("swin_T_224_1k", "swin_B_384_22k"))
    with pytest.raises(CheckpointError, match="config is for another backbone: backbone='swin_B_384_22k'"):
        _check(gd_config=str(wrong_backbone), gd_checkpoint=str(ckpt), gd_text_encoder=str(tiny_original["gd_text_encoder"]))
    no_bert = tmp_path / "no_bert.py"
    no_bert.write_text(text.replace('"tiny_bert"', '"bert-base-uncased"'))
    with pytest.raises(ConfigError, match="'bert-base-uncased' .* is not a local folder"):
        _check(gd_config=str(no_bert), gd_checkpoint=str(ckpt))
    bigger = tmp_path / "bigger.py"
    bigger.write_text(text.replace("num_queries = 10", "num_queries = 20"))
    with pytest.raises(CheckpointError, match="does not fit its config: shape mismatch: model.query_position"):
        _check(gd_config=str(bigger), gd_checkpoint=str(ckpt), gd_text_encoder=str(tiny_original["gd_text_encoder"]))
    with pytest.raises(ConfigError, match="needs both"):
        _check(gd_config=str(cfg))
    with pytest.raises(ConfigError, match="file not found"):
        _check(gd_config=str(cfg), gd_checkpoint=str(tmp_path / "missing.pth"))
    _check(gd_config=str(cfg), gd_checkpoint=str(ckpt))  # the good pair passes


def test_generate_command_with_original_files(tiny_original, tmp_path):
    """`genemi generate --stages tag:ground` with --gd-config/--gd-checkpoint/--gd-prompt on the command line."""
    from genemi.generation_pipeline import pipeline
    from genemi.manifest import read_records
    from genemi.records import DetectionRecord

    images = tmp_path / "images"
    images.mkdir()
    for k in range(2):
        Image.new("RGB", (64 + 8 * k, 48), (200, 30 * k, 30)).save(images / f"{k}.png")
    (images / "captions.json").write_text(json.dumps(
        [{"image": f"{k}.png", "caption": ["a red square next to a blue circle"]} for k in range(2)]))
    for prompt in ("dots", "original"):
        out = tmp_path / prompt
        rc = pipeline.main(["--input-dir", str(images), "--annotation-file", str(images / "captions.json"),
                            "--output-dir", str(out), "--stages", "tag:ground", "--device", "cpu",
                            "--gd-config", str(tiny_original["gd_config"]),
                            "--gd-checkpoint", str(tiny_original["gd_checkpoint"]), "--gd-prompt", prompt,
                            "--box-threshold", "0", "--text-threshold", "0"])
        assert rc == 0
        dets = read_records(out / "detections.jsonl", DetectionRecord)
        assert len(dets) == 2 and all(d.status == "ok" and d.boxes for d in dets)
