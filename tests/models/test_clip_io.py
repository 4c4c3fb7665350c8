"""CLIP creation and every checkpoint format, through the same loader users call."""

import pytest
import torch

from genemi.errors import CheckpointError
from genemi.models.checkpoints import read_checkpoint, strip_prefix
from genemi.models.clip import create_clip, resolve_model_spec, save_open_clip_dir
from genemi.models.tiny.clip import build_tiny_clip


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k].float(), sb[k].float(), atol=1e-3) for k in sa)


@pytest.mark.parametrize("fmt,expected_format,quick_gelu", [
    ("open_clip_state_dict", "state_dict", False),
    ("openai_state_dict", "openai_state_dict", True),
    ("openai_jit", "openai_jit", True),
    ("genemi_snapshot", "genemi_snapshot", True),
    ("ceclip_train", "open_clip_train", False),
])
def test_every_format_loads_and_quick_gelu_follows_the_weights(tiny_clip, fmt, expected_format, quick_gelu):
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip[fmt])
    assert bundle.checkpoint.format == expected_format
    assert bundle.quick_gelu is quick_gelu
    assert all(p.dtype == torch.float32 for p in bundle.model.parameters())
    source = build_tiny_clip(seed=0 if fmt == "open_clip_state_dict" else 1)
    assert _same_weights(bundle.model, source)


def test_openai_weights_get_quickgelu_and_match_the_quickgelu_model_outputs(tiny_clip):
    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"])
    ref = build_tiny_clip(seed=1, quick_gelu=True).double()
    model = bundle.model.double()
    ref.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    text = bundle.tokenizer(["a red circle", "a blue square"])
    assert torch.allclose(model.encode_image(images), ref.encode_image(images))
    assert torch.allclose(model.encode_text(text), ref.encode_text(text))
    gelu = build_tiny_clip(seed=1, quick_gelu=False).double()
    gelu.load_state_dict(ref.state_dict())
    assert not torch.allclose(gelu.encode_image(images), ref.encode_image(images))


def test_explicit_quick_gelu_overrides_detection(tiny_clip):
    assert create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"], quick_gelu=False).quick_gelu is False
    assert create_clip(str(tiny_clip["config"]), tiny_clip["ceclip_train"], quick_gelu=True).quick_gelu is True


def test_ceclip_checkpoint_of_an_openai_architecture_assumes_quickgelu(tiny_clip, tmp_path):
    spec = resolve_model_spec("ViT-B/32")
    assert spec.name == "ViT-B-32"
    from genemi.models.clip import decide_quick_gelu

    ckpt = read_checkpoint(tiny_clip["ceclip_train"])
    use, reason = decide_quick_gelu(spec, ckpt, {}, None)
    assert use and "CE-CLIP" in reason


def test_local_dir_round_trip_and_open_clip_can_read_it(tiny_clip, tmp_path):
    import open_clip

    bundle = create_clip("local-dir:" + str(tiny_clip["open_clip_dir"]))
    assert bundle.checkpoint is not None and bundle.quick_gelu is False
    out = save_open_clip_dir(bundle, bundle.model_cfg, bundle.preprocess_cfg, tmp_path / "copy")
    model = open_clip.create_model("local-dir:" + str(out))
    assert _same_weights(model, bundle.model)


def test_open_clip_export_gets_the_usual_file_permissions(tiny_clip, tmp_path):
    import os
    import stat

    bundle = create_clip("local-dir:" + str(tiny_clip["open_clip_dir"]))
    old = os.umask(0o022)
    try:
        out = save_open_clip_dir(bundle, bundle.model_cfg, bundle.preprocess_cfg, tmp_path / "export")
        (tmp_path / "plain.txt").write_text("x")  # what any other file written under this umask gets
    finally:
        os.umask(old)
    expected = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert expected == 0o644
    for name in ("open_clip_model.safetensors", "open_clip_config.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == expected, name
    assert sorted(p.name for p in out.iterdir()) == ["open_clip_config.json", "open_clip_model.safetensors"]


def test_wrong_architecture_names_missing_and_unexpected_keys(tiny_clip, tmp_path):
    sd = build_tiny_clip().state_dict()
    sd["visual.extra.weight"] = torch.zeros(1)
    del sd["ln_final.bias"]
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as err:
        create_clip(str(tiny_clip["config"]), path)
    msg = str(err.value)
    assert "missing keys (1): ln_final.bias" in msg and "unexpected keys (1): visual.extra.weight" in msg
    with pytest.raises(CheckpointError, match="shape mismatches") as err:
        create_clip("ViT-B-32", tiny_clip["open_clip_state_dict"])
    assert "patch 8, width 64, 2 layers, image 32px" in str(err.value)


def test_hub_ids_and_uncached_tags_fail_fast_without_network(tiny_clip):
    import time

    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="never downloads"):
        create_clip("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    with pytest.raises(CheckpointError, match="not in the local cache"):
        create_clip("ViT-B-32", "openai", cache_dir=str(tiny_clip["config"].parent / "empty_cache"))
    with pytest.raises(CheckpointError, match="known tags: openai"):
        create_clip("ViT-B-32", "not-a-tag")
    assert time.perf_counter() - start < 5


def test_unknown_architecture_and_corrupt_file(tmp_path, tiny_clip):
    with pytest.raises(CheckpointError, match="unknown CLIP architecture"):
        resolve_model_spec("ViT-Z-99")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        create_clip(str(tiny_clip["config"]), bad)
    with pytest.raises(CheckpointError, match="not found"):
        create_clip(str(tiny_clip["config"]), tmp_path / "missing.pt")


def test_unsafe_pickle_is_refused_unless_trusted(tmp_path, tiny_clip):
    import argparse

    path = tmp_path / "pickled.pt"
    sd = build_tiny_clip().state_dict()
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=1e-5)}, path)
    with pytest.raises(CheckpointError, match="trust_pickle"):
        read_checkpoint(path)


def test_strip_prefix_handles_ddp_and_compile():
    assert list(strip_prefix({"module._orig_mod.a": 1, "b": 2})) == ["a", "b"]


def test_trimmed_text_encoding_equals_full_context(tiny_clip):
    from genemi.models.clip import ContrastiveForward, encode_text_trimmed

    bundle = create_clip(str(tiny_clip["config"]), tiny_clip["openai_state_dict"])
    model = bundle.model.double()
    text = bundle.tokenizer(["a cat", "a red car parked next to two dogs on a wet street"])
    assert torch.allclose(encode_text_trimmed(model, text), model.encode_text(text), atol=1e-12)
    images = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    img_f, txt_f, scale = ContrastiveForward(model)(images, text)
    ref = model(images, text)
    assert torch.allclose(img_f, ref[0]) and torch.allclose(txt_f, ref[1], atol=1e-12) and torch.equal(scale, ref[2])
