"""``make demo`` end to end: every step writes its outputs."""

import json

from genemi.manifest import read_records
from genemi.records import VariationPlan, VariationRecord


def test_demo_runs_every_step(tmp_path, capsys):
    from genemi import demo

    assert demo.main(["--output", str(tmp_path / "demo"), "--epochs", "1"]) == 0
    out = tmp_path / "demo"
    gen = out / "generation"
    assert len((gen / "masks.jsonl").read_text().splitlines()) == 8
    scored = read_records(gen / "scores.jsonl", VariationPlan)
    painted = [v for r in scored for it in r.items for v in it.variations if v.image]
    assert len(scored) == 8 and painted
    assert all((gen / v.image).is_file() and len(v.itm_score) == len(v.captions) and v.iva_image is not None
               for v in painted)
    exported = read_records(gen / "export" / "dataset.jsonl", VariationRecord)
    assert sorted(r.id for r in exported) == sorted(v.id for v in painted)  # the demo exports without filters
    assert (gen / "gallery" / "index.html").is_file() and (gen / "gallery" / "contact_sheet.png").is_file()
    assert (out / "negatives.jsonl").stat().st_size > 0
    assert (out / "run" / "model_0.pt").exists()
    result = json.loads((out / "evaluation" / "demo" / "model_0.json").read_text())
    assert "genemi_testset" in result["benchmarks"]
    text = capsys.readouterr().out
    assert "| model_0 |" in text and str(gen / "gallery" / "index.html") in text
