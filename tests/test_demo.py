"""``make demo`` end to end: every step writes its outputs."""

import json


def test_demo_runs_every_step(tmp_path, capsys):
    from genemi import demo

    assert demo.main(["--output", str(tmp_path / "demo"), "--epochs", "1"]) == 0
    out = tmp_path / "demo"
    assert len((out / "generation" / "masks.jsonl").read_text().splitlines()) == 8
    assert (out / "negatives.jsonl").stat().st_size > 0
    assert (out / "run" / "model_0.pt").exists()
    result = json.loads((out / "evaluation" / "demo" / "model_0.json").read_text())
    assert "genemi_testset" in result["benchmarks"]
    assert "| model_0 |" in capsys.readouterr().out
