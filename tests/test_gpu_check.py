"""The one-command GPU check (benchmarks/gpu): shell syntax, wheel pins, and a CPU dry run end to end."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
BENCHMARKS = ("train_ViT-B-32", "train_ViT-L-14", "eval_sugarcrepe", "grounding_dino", "sam_vit_h", "sd2_inpaint",
              "offload_24gb")


@pytest.mark.parametrize("script", ["prepare.sh", "run.sh"])
def test_scripts_parse(script):
    result = subprocess.run(["bash", "-n", str(GPU / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_run_sh_refuses_bad_arguments():
    for args in ([], ["out", "--fast"], ["--dry-run"]):
        result = subprocess.run(["bash", str(GPU / "run.sh"), *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "usage" in result.stderr


def test_wheels_follow_the_requirement_pins_and_leave_spacy_out():
    def norm(name):
        return re.sub(r"[-_.]+", "_", name).lower()

    def pins(path):
        out = {}
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
            if m:
                out[norm(m.group(1))] = m.group(2)
        return out

    wheels, required = pins(GPU / "wheels.txt"), pins(ROOT / "requirements.txt")
    for name in ("open_clip_torch", "diffusers", "segment_anything", "pydantic", "transformers"):
        assert wheels[name] == required[name]
    assert {"pydantic_core", "annotated_types", "typing_inspection", "ftfy", "wcwidth"} <= set(wheels)
    assert not {"spacy", "torch", "torchvision"} & set(wheels)


def test_dry_run_writes_every_summary(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_SITE": str(tmp_path / "site")}
    result = subprocess.run(["bash", str(GPU / "run.sh"), str(out), "--dry-run"], capture_output=True, text=True,
                            env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = json.loads((out / "gpu_summary.json").read_text())
    markdown = (out / "gpu_summary.md").read_text()
    assert summary["meta"]["dry_run"] is True and "DRY RUN" in markdown
    assert list(summary["benchmarks"]) == list(BENCHMARKS)
    for name in BENCHMARKS:
        entry = summary["benchmarks"][name]
        assert entry["status"] == "ok", (name, entry.get("error"))
        assert f"## {name}" in markdown
        if name != "offload_24gb":
            assert entry["figures"], name
        for figure in entry["figures"].values():
            assert set(figure) == {"value", "unit"}
    sd = summary["benchmarks"]["sd2_inpaint"]["figures"]
    assert any("100 steps" in k and f["unit"] == "variations/s" for k, f in sd.items())
    assert any(f["unit"] == "images/s" for f in summary["benchmarks"]["grounding_dino"]["figures"].values())
    # the CUDA tests were selected (they skip on a CPU machine) and reported
    tests = summary["cuda_tests"]
    assert tests["exit_code"] == 0 and tests["tests"]
    assert all(t["outcome"] in ("skipped", "passed") for t in tests["tests"])
    assert "## CUDA tests" in markdown
