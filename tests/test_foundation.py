"""Manifests, images, presets: the shared plumbing every component uses."""

import json

import pytest
import torch
from PIL import Image

from genemi.errors import ConfigError, ImageError, ManifestError
from genemi.records import VariationRecord
from genemi.images import load_rgb
from genemi.manifest import ManifestWriter, done_ids, read_records
from genemi.presets import load_config, parse_set_overrides
from genemi.training.config import TrainConfig


def _rec(i):
    return VariationRecord(id=f"img/item_00/var_{i}", origin_name="img", item="cat", name=f"v{i}",
                           source="a.jpg", save=f"v{i}.png", short="black cat", captions=["a black cat"])


def test_manifest_append_and_read_back(tmp_path):
    path = tmp_path / "m.jsonl"
    with ManifestWriter(path) as w:
        assert w.write([_rec(0), _rec(1)]) == 2
    with ManifestWriter(path) as w:
        w.write([_rec(2)])
    assert [r.id for r in read_records(path, VariationRecord)] == [f"img/item_00/var_{i}" for i in range(3)]
    assert done_ids(path) == {f"img/item_00/var_{i}" for i in range(3)}


def test_truncated_last_line_is_dropped_and_repaired_on_append(tmp_path, caplog):
    path = tmp_path / "m.jsonl"
    with ManifestWriter(path) as w:
        w.write([_rec(0)])
    with open(path, "a") as fh:
        fh.write('{"id": "img/item_00/var_1", "orig')  # a crash mid-write
    assert len(read_records(path, VariationRecord)) == 1
    with ManifestWriter(path) as w:
        w.write([_rec(1)])
    assert [r.id for r in read_records(path, VariationRecord)] == ["img/item_00/var_0", "img/item_00/var_1"]


def test_bad_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "m.jsonl"
    good = json.dumps(_rec(0).model_dump())
    path.write_text(good + "\n{oops\n" + good + "\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: invalid JSON"):
        read_records(path, VariationRecord)
    path.write_text(good + "\n" + json.dumps({"id": "x"}) + "\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: invalid VariationRecord: origin_name"):
        read_records(path, VariationRecord)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P"])
def test_load_rgb_converts_modes(tmp_path, mode):
    path = tmp_path / f"x.{'jpg' if mode == 'CMYK' else 'png'}"
    Image.new(mode, (5, 3)).save(path)
    img = load_rgb(path)
    assert img.mode == "RGB" and img.size == (5, 3)


def test_load_rgb_applies_exif_orientation(tmp_path):
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    Image.new("RGB", (4, 2)).save(path, exif=exif)
    assert load_rgb(path).size == (2, 4)


def test_load_rgb_errors_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_rgb(tmp_path / "none.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(ImageError, match="bad.png"):
        load_rgb(bad)
    big = tmp_path / "big.png"
    Image.new("L", (200, 200)).save(big)
    with pytest.raises(ImageError, match="too large"):
        load_rgb(big, max_pixels=100)


def test_presets_reject_bad_types_and_unknown_keys(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("epochs: three\n")
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        load_config(TrainConfig, preset)
    preset.write_text("optim: {betas: [0.9]}\n")
    with pytest.raises(ConfigError, match="2 entries"):
        load_config(TrainConfig, preset)
    preset.write_text("mining: {mode: per_pixel}\n")
    with pytest.raises(ConfigError, match="item_based"):
        load_config(TrainConfig, preset)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(TrainConfig, tmp_path / "missing.yaml")


def test_set_overrides_parse_yaml_values():
    assert parse_set_overrides(["a.b=1e-5", "c=[1, 2]", "d=none"]) == {"a": {"b": 1e-5}, "c": [1, 2], "d": "none"}
    with pytest.raises(ConfigError):
        parse_set_overrides(["novalue"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_step_bf16(tmp_path, shapes, tiny_clip):
    from genemi.training import train
    from genemi.training.loop import fit

    args = ["--clip-model", str(tiny_clip["config"]), "--pretrained", str(tiny_clip["openai_state_dict"]),
            "--dataset-type", "text_negatives", "--dataset", str(shapes.negatives_jsonl),
            "--image-root", str(shapes.images), "--loss", "ceclip", "--batch-size", "4", "--epoch", "1",
            "--save-path", str(tmp_path), "--workers", "0", "--device", "cuda", "--precision", "bf16"]
    result = fit(train.resolve_config(train.build_parser().parse_args(args)), progress=False)
    assert result.steps == 3


def test_zip_members_decode_as_files_do(tmp_path):
    """A benchmark image inside a zip (ColorSwap's release) gets load_rgb's conversions and errors, named path!member."""
    import io
    import zipfile

    from genemi.evaluation.scoring import ImageRef, load_image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90
    rotated, rgba = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (4, 2)).save(rotated, format="JPEG", exif=exif)
    Image.new("RGBA", (3, 3), (0, 0, 0, 0)).save(rgba, format="PNG")
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("rot.jpg", rotated.getvalue())
        zf.writestr("clear.png", rgba.getvalue())
        zf.writestr("bad.png", b"\x89PNG broken")
    assert load_image(ImageRef(str(archive), member="rot.jpg")).size == (2, 4)
    assert load_image(ImageRef(str(archive), member="clear.png")).getpixel((1, 1)) == (255, 255, 255)
    with pytest.raises(ImageError, match=r"images.zip!bad.png"):
        load_image(ImageRef(str(archive), member="bad.png"))
    with pytest.raises(ImageError, match=r"not found: .*images.zip!none.png"):
        load_image(ImageRef(str(archive), member="none.png"))
