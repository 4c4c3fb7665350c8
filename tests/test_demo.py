"""``make demo`` end to end: every step writes its outputs; by default the gallery shows the world's real edits,
and ``--models tiny`` still runs the tiny random models."""

import json

import numpy as np
from PIL import Image

from genemi.manifest import read_records
from genemi.records import VariationPlan, VariationRecord


def test_demo_runs_every_step(tmp_path, capsys):
    from genemi import demo
    from genemi.synthetic.parsing import prompt_object

    assert demo.main(["--output", str(tmp_path / "demo"), "--epochs", "1"]) == 0
    out = tmp_path / "demo"
    gen = out / "generation"
    assert len((gen / "masks.jsonl").read_text().splitlines()) == 8
    scored = read_records(gen / "scores.jsonl", VariationPlan)
    painted = [(r, v) for r in scored for it in r.items for v in it.variations if v.image]
    assert len(scored) == 8 and len(painted) >= 8
    assert all((gen / v.image).is_file() and len(v.itm_score) == len(v.captions) and v.iva_image is not None
               for _, v in painted)
    for record, v in painted:  # real edits: a drawable prompt, painted into a picture that differs from its source
        prompt_object(v.prompt)
        source = np.asarray(Image.open(out / "data" / "images" / record.image).convert("RGB"))
        assert not np.array_equal(np.asarray(Image.open(gen / v.image).convert("RGB")), source)
    exported = read_records(gen / "export" / "dataset.jsonl", VariationRecord)
    assert sorted(r.id for r in exported) == sorted(v.id for _, v in painted)  # the demo exports without filters
    assert (gen / "gallery" / "index.html").is_file() and (gen / "gallery" / "contact_sheet.png").is_file()
    assert (out / "negatives.jsonl").stat().st_size > 0
    assert (out / "run" / "model_0.pt").exists()
    result = json.loads((out / "evaluation" / "demo" / "model_0.json").read_text())
    assert "genemi_testset" in result["benchmarks"]
    text = capsys.readouterr().out
    assert "| model_0 |" in text and str(gen / "gallery" / "index.html") in text


def test_demo_models_tiny_paints_every_variation_with_the_tiny_random_models(tmp_path):
    from genemi.demo import generation_argv, write_demo_inputs
    from genemi.generation_pipeline import pipeline

    data, models = write_demo_inputs(tmp_path)
    gen = tmp_path / "generation"
    argv = generation_argv(data, models, gen, "tiny")
    assert str(models["sd_inpainting"]) in argv and "ground_truth" not in argv
    assert pipeline.main([*argv, "--stages", ":inpaint", "--limit", "1"]) == 0
    variations = [v for r in read_records(gen / "variations.jsonl", VariationPlan) for it in r.items
                  for v in it.variations]
    assert variations and all(v.status == "ok" and (gen / v.image).is_file() for v in variations)
