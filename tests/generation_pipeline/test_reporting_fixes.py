"""What the pipeline tells the user: the run summary of resumed stages, hub-id hints, preview labels."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from genemi.generation_pipeline.pipeline import _print_summary
from genemi.generation_pipeline.previews import draw_preview
from genemi.masks import rle_encode
from genemi.generation_pipeline.stage import StageStats
from genemi.records import ItemMask, MaskRecord


def _summary(**stages):
    from dataclasses import asdict

    return {"shard": {"index": 0, "count": 1}, "images": 6, "device": "cpu", "seconds": 0.3,
            "stages": {name: {**asdict(s), "images_per_second": s.images_per_second,
                              "overhead_fraction": s.overhead_fraction} for name, s in stages.items()}}


def test_resumed_stages_print_a_clean_line(capsys):
    _print_summary(_summary(
        tag=StageStats("tag", inputs=6, already_done=6, seconds=0.0),  # resumed: nothing left
        ground=StageStats("ground", inputs=6, already_done=6, seconds=0.02),
        segment=StageStats("segment", inputs=6, already_done=4, processed=2, seconds=0.0),  # under the clock tick
        inpaint=StageStats("inpaint", inputs=6, processed=6, seconds=3.0, model_seconds=1.5),
    ))
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for name in ("tag", "ground", "segment", "inpaint"):
        assert "nan" not in lines[name] and "None" not in lines[name], lines[name]
    assert lines["tag"].endswith("(nothing to do)") and "already done      6" in lines["tag"]
    assert lines["ground"].endswith("(nothing to do)")
    assert lines["segment"].endswith("(too fast to time)")  # it did work: not "nothing to do"
    assert lines["inpaint"].endswith("(2.00 images/s, 50% outside model calls)")


@pytest.mark.parametrize("where", ["diffusers", "hf"])
def test_hub_id_hint_names_the_id_the_user_gave(where, tmp_path, monkeypatch):
    from genemi.errors import GenemiError

    monkeypatch.chdir(tmp_path)
    hub_id = "stabilityai/stable-diffusion-2-inpainting"
    if where == "diffusers":
        from genemi.generation_pipeline.inpainting.diffusers_backend import _pipeline_folder

        with pytest.raises(GenemiError) as err:
            _pipeline_folder(tmp_path / "nothing", "--sd-model")  # a path, not an id: no hint
        assert "hub id" not in str(err.value)
        with pytest.raises(GenemiError) as err:
            _pipeline_folder(Path(hub_id), "--sd-model")
    else:
        from genemi.models.hf import require_local_dir

        with pytest.raises(GenemiError) as err:
            require_local_dir(hub_id, "--mlm-model")
    message = str(err.value)
    assert "<id>" not in message
    assert f"hf download {hub_id} --local-dir models/stable-diffusion-2-inpainting" in message


def test_hub_id_hint_is_not_given_for_local_looking_paths(tmp_path, monkeypatch):
    from genemi.models.hf import hub_id_hint

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert hub_id_hint("models/missing") == ""  # the first part exists here: a path
    assert hub_id_hint("./x") == "" and hub_id_hint("a/b/c") == "" and hub_id_hint("plain") == ""
    assert "hf download owner/name " in hub_id_hint("owner/name")


LABEL_COLOUR = (230, 25, 75)  # the first item's colour; black image, empty mask: only the text is greener


def _ink(image):
    """How much white text there is: the label colour's green channel is 25, text pushes it towards 255."""
    green = np.asarray(image)[..., 1].astype(np.int64)
    return int(np.clip(green - LABEL_COLOUR[1], 0, None).sum())


def _label_ink(label):
    """The ink of the label drawn whole, on a canvas large enough for it."""
    canvas = Image.new("RGB", (400, 60), LABEL_COLOUR)
    ImageDraw.Draw(canvas).text((10, 10), label, fill=(255, 255, 255))
    return _ink(canvas)


@pytest.mark.parametrize("size,box", [
    ((48, 40), (30.0, 2.0, 47.0, 20.0)),  # box at the right edge of a small image
    ((20, 12), (0.0, 0.0, 20.0, 12.0)),  # label wider and taller than the whole image
    ((300, 300), (250.0, 280.0, 299.0, 299.0)),  # large image, box in the bottom-right corner
])
def test_preview_labels_are_drawn_whole(size, box):
    w, h = size
    item = ItemMask(id="x/item_00", item="red square", box=list(box), box_score=0.87,
                    mask=rle_encode(np.zeros((h, w), dtype=bool)), mask_score=0.9, area=0, crop=[0, 0, w, h])
    record = MaskRecord(id="x", image="x.png", width=w, height=h, items=[item])
    out = draw_preview(Image.new("RGB", size, (0, 0, 0)), record)
    assert _ink(out) == _label_ink("red square 0.87") > 1000
    assert min(out.size) >= min(min(size), 256)
    assert out.size[0] / out.size[1] == pytest.approx(w / h, abs=0.01)  # aspect kept
