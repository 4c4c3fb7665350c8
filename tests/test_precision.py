"""--precision (alias --dtype): auto is the default (bf16 on CUDA with bf16, fp16 on older CUDA, fp32 on the CPU); fp16 on the CPU is
refused in one line before any model is built."""

import subprocess
import sys

import pytest
import torch
from PIL import Image

import genemi.precision
from genemi.errors import ConfigError
from genemi.generation_pipeline.pipeline import PipelineConfig, _dtype
from genemi.precision import resolve_dtype_name


def test_auto_resolves_per_device(monkeypatch):
    monkeypatch.setattr(genemi.precision, "_cuda_bf16", lambda device: True)
    assert resolve_dtype_name("auto", "cuda:1") == "bf16"
    monkeypatch.setattr(genemi.precision, "_cuda_bf16", lambda device: False)
    assert resolve_dtype_name("auto", "cuda") == "fp16"
    assert resolve_dtype_name("auto", "cpu") == "fp32" and resolve_dtype_name("auto", "mps") == "fp32"
    assert resolve_dtype_name("bf16", "cpu") == "bf16"
    assert _dtype("auto", "cpu") == ("fp32", None) and _dtype("bf16", "cpu") == ("bf16", torch.bfloat16)
    with pytest.raises(ConfigError, match="--precision must be one of auto, fp32, fp16, bf16"):
        resolve_dtype_name("fp64", "cpu")


def test_the_runs_default_is_auto():
    assert PipelineConfig().dtype == "auto"


def test_fp16_on_the_cpu_is_refused_in_one_line(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    proc = subprocess.run([sys.executable, "-m", "genemi", "generate", "--input-dir", str(tmp_path),
                           "--output-dir", str(tmp_path / "out"), "--device", "cpu", "--dtype", "fp16",
                           "--stages", "tag", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--precision fp16 with --device cpu" in lines[0], proc.stderr
    assert not (tmp_path / "out" / "tags.jsonl").exists()
