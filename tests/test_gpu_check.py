"""The one-command GPU check (benchmarks/gpu): shell syntax, wheel pins, the time plan, a CPU dry run end to end,
and a complete summary whatever fails (no CUDA, a crashing benchmark process, a section over its budget, a
process stopped by its timeout, a Python that cannot run)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
DEVICE_TIMEOUT_S = 480  # the device call's timeout_s that docs/performance.md gives


@pytest.fixture(scope="module")
def gpu():
    """benchmarks/gpu/gpu_summary.py and gpu_benchmarks.py, imported as run.sh runs them (their folder on sys.path)."""
    sys.path.insert(0, str(GPU))
    import gpu_benchmarks
    import gpu_summary

    return gpu_summary, gpu_benchmarks


def complete(out: Path, gpu_summary) -> dict:
    """Both summaries are there and whole: meta, the CUDA tests, every benchmark with a status (and, when not ok,
    why), each section in the Markdown too; returns the JSON."""
    summary = json.loads((out / "gpu_summary.json").read_text())
    markdown = (out / "gpu_summary.md").read_text()
    meta = summary["meta"]
    assert meta["versions"]["torch"] and meta["card"] and meta["python"]
    assert list(summary["benchmarks"]) == list(gpu_summary.BENCHMARKS)
    for name, entry in summary["benchmarks"].items():
        assert entry["status"] in gpu_summary.STATUSES, (name, entry["status"])
        if entry["status"] != "ok":
            assert entry.get("error") or entry["notes"], name
        assert f"## {name}" in markdown
    assert summary["cuda_tests"] and "## CUDA tests" in markdown
    assert len(list(out.iterdir())) <= 8  # a device call brings back 8 files at most
    return summary


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


def test_time_plan_fits_the_device_call(gpu):
    """Every step of run.sh that can hang runs under `timeout -k $kill_after $t_<step>`; the steps' timeouts add
    up to <= 450 s, inside the device call's 480 s; the benchmark process's timeout covers its own total budget
    plus one section's overrun; the sections' budgets fit that total; SD-2 inpainting runs first."""
    summary, bench = gpu
    text = (GPU / "run.sh").read_text()
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    assignments = [line for line in code.splitlines() if re.match(r"^(budget|t_\w+)=", line)]
    names = [line.split("=")[0] for line in assignments]
    env = {k: v for k, v in os.environ.items() if k != "GPU_CHECK_BUDGET_S"}
    shown = subprocess.run(["bash", "-c", "\n".join(assignments + [f'echo "{n}=${n}"' for n in names])],
                           capture_output=True, text=True, env=env, check=True).stdout
    values = {k: int(v) for k, v in (line.split("=") for line in shown.split())}
    budget, total = values.pop("budget"), values.pop("t_sum")
    used = re.findall(r"\btimeout\s+(\S+)\s+(\S+)\s+(\S+)", code)
    assert used and all(k == "-k" and a == "$kill_after" and t.startswith("$t_") for k, a, t in used), used
    assert {t[1:] for _, _, t in used} == set(values)  # every limit is used, every timeout has its limit
    assert total == sum(values.values()) <= 450 < DEVICE_TIMEOUT_S <= 600
    assert budget == bench.TOTAL_BUDGET
    assert values["t_bench"] >= bench.TOTAL_BUDGET + bench.OVERRUN_GRACE_S + 10
    assert set(bench.BUDGETS) == set(summary.BENCHMARKS)
    assert sum(bench.BUDGETS.values()) + bench.STARTUP_S <= bench.TOTAL_BUDGET
    assert summary.BENCHMARKS[0] == "sd2_inpaint" and summary.BENCHMARKS[-1] == "offload_24gb"
    # the docs give the exact device command
    docs = (ROOT / "docs" / "performance.md").read_text()
    assert 'run(command="bash benchmarks/gpu/run.sh $OUT", carry=[".whl"], timeout_s=480)' in docs
    assert f"timeout_s {DEVICE_TIMEOUT_S}" in text


def test_dry_run_writes_every_summary(tmp_path, gpu, tiny_detectors):
    summary_mod, _ = gpu
    out = tmp_path / "out"
    shared = tiny_detectors["grounding_dino"].parent  # built once for the session, not again by the dry run
    env = {**os.environ, "PYTHON": sys.executable, "GPU_SITE": str(tmp_path / "site"),
           "GPU_WHEELS": str(tmp_path / "no-wheels"), "GPU_TINY_MODELS": str(shared)}
    result = subprocess.run(["bash", str(GPU / "run.sh"), str(out), "--dry-run"], capture_output=True, text=True,
                            env=env, timeout=240)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    plan = re.search(r"^time plan: .* = (\d+) s$", result.stdout, re.M)
    assert plan and int(plan.group(1)) <= 450
    summary = complete(out, summary_mod)
    markdown = (out / "gpu_summary.md").read_text()
    assert summary["meta"]["dry_run"] is True and "DRY RUN" in markdown
    for name in summary_mod.BENCHMARKS:
        entry = summary["benchmarks"][name]
        assert entry["status"] == "ok", (name, entry.get("error"))
        if name != "offload_24gb":
            assert entry["figures"], name
        for figure in entry["figures"].values():
            assert set(figure) == {"value", "unit"}
    sd = summary["benchmarks"]["sd2_inpaint"]["figures"]
    assert any("100 steps" in k and f["unit"] == "variations/s" for k, f in sd.items())
    assert any(f["unit"] == "images/s" for f in summary["benchmarks"]["grounding_dino"]["figures"].values())
    assert any(str(shared / "grounding_dino") in n for n in summary["benchmarks"]["grounding_dino"]["notes"])
    # the CUDA tests were selected (they skip on a CPU machine) and reported
    tests = summary["cuda_tests"]
    assert tests["exit_code"] == 0 and tests["tests"]
    assert all(t["outcome"] in ("skipped", "passed") for t in tests["tests"])
    # the tiny Tag2Text CUDA test (no ../shared fixture) is among them
    assert any("test_tiny_tag2text_on_cuda_matches_the_cpu" in t["name"] for t in tests["tests"])
    assert "benchmark_process" not in summary
    versions = summary["attached"]["versions step"]["tail"]
    assert "df -h /dev/shm" in versions and "cuda_available=False" in versions


# --- failures: each leaves a complete summary ---------------------------------------------------------------

FAKE_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<testcase classname="tests.test_fake" name="test_passes" time="0.5"/>
<testcase classname="tests.test_fake" name="test_fails" time="0.1"><failure message="assert 1 == 2">x</failure>
</testcase></testsuite></testsuites>
"""


def fake_machine(tmp_path: Path, crash: bool = False) -> dict:
    """Environment for run.sh on a machine whose nvidia-smi answers (driver 550.54.15, 81559 MiB) but whose torch
    finds no CUDA; PYTHON stands in for pip (nothing to install) and pytest (one passed, one failed test); with
    ``crash`` the benchmark process dies by SIGSEGV as it starts. Everything else runs for real."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/usr/bin/env bash\n"
                   'if [[ $# -gt 0 ]]; then echo "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB, 0 MiB, 1980 MHz, '
                   '700.00 W"; else echo "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4 |"; '
                   "fi\n")
    junit = tmp_path / "fake_junit.xml"
    junit.write_text(FAKE_JUNIT)
    python = bin_dir / "python"
    crash_line = ("  ulimit -c 0; exec \"$real\" -c 'import os, signal; print(\"loading the benchmark models\", "
                  "flush=True); os.kill(os.getpid(), signal.SIGSEGV)'\n") if crash else "  :\n"
    python.write_text(f"""#!/usr/bin/env bash
real={sys.executable}
if [[ $1 == -m && $2 == pip ]]; then echo "fake pip"; exit 0; fi
if [[ $1 == -m && $2 == pytest ]]; then
  for a in "$@"; do [[ $a == --junitxml=* ]] && cp {junit} "${{a#--junitxml=}}"; done
  echo "FAILED tests/test_fake.py::test_fails"; echo "==== 1 failed, 1 passed in 0.60s ===="; exit 1
fi
if [[ $1 == */gpu_benchmarks.py ]]; then
{crash_line}fi
exec "$real" "$@"
""")
    for f in (smi, python):
        f.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON": str(python),
            "GPU_SITE": str(tmp_path / "site"), "GPU_WHEELS": str(tmp_path / "no-wheels")}


def run_check(tmp_path: Path, env: dict) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(GPU / "run.sh"), str(out)], capture_output=True, text=True, env=env,
                            timeout=120)
    return result, out


def assert_fake_tests_reported(summary: dict) -> None:
    tests = summary["cuda_tests"]
    assert tests["exit_code"] == 1 and "1 failed, 1 passed" in tests["summary_line"]
    assert [(t["name"], t["outcome"]) for t in tests["tests"]] == [
        ("tests.test_fake::test_passes", "passed"), ("tests.test_fake::test_fails", "failed")]


def test_no_cuda_still_writes_a_complete_summary(tmp_path, gpu):
    summary_mod, _ = gpu
    result, out = run_check(tmp_path, fake_machine(tmp_path))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    summary = complete(out, summary_mod)
    assert summary["meta"]["card"] == "no CUDA device" and "550.54.15" in summary["meta"]["nvidia_smi"]
    assert summary["benchmark_process"]["exit_code"] == 2
    for entry in summary["benchmarks"].values():
        assert entry["status"] == "not run" and "no CUDA device" in entry["notes"][0]
    assert_fake_tests_reported(summary)
    attached = summary["attached"]
    assert attached["pipeline_stages.py --only inpaint --device cuda"]["tail"] == "not run: no CUDA device"
    versions = attached["versions step"]["tail"]
    assert "df -h /dev/shm" in versions and "550.54.15, 81559 MiB" in versions and "cuda_available=False" in versions
    # the versions step prints them to the device reply too
    assert "Driver Version: 550.54.15" in (out / "nvidia-smi.txt").read_text()
    assert "card, driver, memory total, memory used (nvidia-smi): NVIDIA H100" in result.stdout


def test_a_crashing_benchmark_process_still_leaves_a_complete_summary(tmp_path, gpu):
    summary_mod, _ = gpu
    result, out = run_check(tmp_path, fake_machine(tmp_path, crash=True))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    summary = complete(out, summary_mod)
    process = summary["benchmark_process"]
    assert process["exit_code"] == 128 + signal.SIGSEGV and "SIGSEGV" in process["outcome"]
    assert "loading the benchmark models" in process["log_tail"]
    for entry in summary["benchmarks"].values():
        assert entry["status"] == "not run" and "SIGSEGV" in entry["notes"][0]
    assert_fake_tests_reported(summary)
    assert "**The benchmark process was killed by SIGSEGV" in (out / "gpu_summary.md").read_text()


def test_a_python_that_cannot_run_still_leaves_a_summary_naming_the_failure(tmp_path):
    env = {**os.environ, "PYTHON": "/bin/false", "GPU_SITE": str(tmp_path / "site"),
           "GPU_WHEELS": str(tmp_path / "no-wheels")}
    result, out = run_check(tmp_path, env)
    assert result.returncode == 1
    assert "gpu_summary.py finish failed (exit 1)" in (out / "gpu_summary.md").read_text()
    summary = json.loads((out / "gpu_summary.json").read_text())
    assert summary["meta"]["incomplete"] and summary["benchmark_process"]["exit_code"] == 1


def test_a_section_over_budget_is_interrupted_and_the_rest_still_runs(tmp_path, gpu, monkeypatch):
    """A section still running OVERRUN_GRACE_S after its budget gets status timeout with its figures so far; a
    section that watches its budget stops early (partial); one that raises is an error; the others run."""
    summary_mod, bench = gpu

    def hangs(run, sec):
        sec.fig("measured before the hang", 1.0, "s")
        time.sleep(60)

    def watches(run, sec):
        while not sec.expired():
            time.sleep(0.05)
        sec.stopped_early = True
        sec.fig("iterations", 3, "")

    def fails(run, sec):
        raise ValueError("broken section")

    behaviour = {"sd2_inpaint": hangs, "train_ViT-B-32": watches, "eval_sugarcrepe": fails}
    monkeypatch.setattr(bench, "sections", lambda run: {
        name: (lambda sec, f=behaviour.get(name): f(run, sec) if f else sec.fig("value", 1, ""))
        for name in summary_mod.BENCHMARKS})
    monkeypatch.setattr(bench, "BUDGETS", {name: 3 for name in summary_mod.BENCHMARKS})
    monkeypatch.setattr(bench, "OVERRUN_GRACE_S", 1)
    monkeypatch.setattr(bench, "free_memory", lambda: None)
    out = tmp_path / "out"
    junit = tmp_path / "junit.xml"
    junit.write_text(FAKE_JUNIT)
    start = time.perf_counter()
    rc = bench.main(["--out", str(out), "--device", "cpu", "--total-budget", "60", "--tests-junit", str(junit),
                     "--tests-rc", "1"])
    assert time.perf_counter() - start < 30
    assert rc == 1 and signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    summary = complete(out, summary_mod)
    entries = summary["benchmarks"]
    assert entries["sd2_inpaint"]["status"] == "timeout" and "after its 3 s budget" in entries["sd2_inpaint"]["error"]
    assert entries["sd2_inpaint"]["figures"]["measured before the hang"]["value"] == 1.0
    assert entries["sd2_inpaint"]["wall_s"] < 10
    assert entries["train_ViT-B-32"]["status"] == "partial" and entries["train_ViT-B-32"]["figures"]
    assert entries["eval_sugarcrepe"]["status"] == "error" and "broken section" in entries["eval_sugarcrepe"]["error"]
    assert all(entries[n]["status"] == "ok" for n in ("grounding_dino", "sam_vit_h", "train_ViT-L-14", "offload_24gb"))
    assert len(summary["cuda_tests"]["tests"]) == 2
    # gpu_summary.py finish keeps all of it
    again = summary_mod.finish(out, rc, out / "missing.log")
    assert again["benchmarks"] == entries and again["benchmark_process"]["exit_code"] == 1


def test_a_benchmark_process_stopped_by_its_timeout_leaves_the_running_section_killed(tmp_path, gpu):
    summary_mod, _ = gpu
    out = tmp_path / "out"
    ok = {"status": "ok", "budget_s": 50, "wall_s": 20.1, "figures": {"s per step": {"value": 0.1, "unit": "s"}},
          "notes": []}
    running = {"status": "running", "budget_s": 30, "wall_s": None, "figures": {"step": {"value": 1.0, "unit": "s"}},
               "notes": []}
    meta = {"card": "NVIDIA H100", "python": "3.12.3", "versions": {"torch": "2.11"}}
    summary_mod.write_summaries(out, {"meta": meta, "cuda_tests": None, "attached": {},
                                      "benchmarks": {"sd2_inpaint": ok, "train_ViT-B-32": running}})
    log = tmp_path / "bench.log"
    log.write_text("== train_ViT-B-32 (budget 30 s)\n")
    summary = summary_mod.finish(out, 124, log, tests_rc=0, attachments=[("inpaint", tmp_path / "nope.log", None)])
    assert complete(out, summary_mod) == summary
    entries = summary["benchmarks"]
    assert entries["sd2_inpaint"] == ok
    killed = entries["train_ViT-B-32"]
    assert killed["status"] == "killed" and "timeout (exit 124)" in killed["error"]
    assert killed["figures"] == running["figures"]
    assert all(entries[n]["status"] == "not run" and "timeout" in entries[n]["notes"][0]
               for n in summary_mod.BENCHMARKS[2:])
    assert summary["attached"]["inpaint"]["tail"] == "(no log)"


def test_small_shared_memory_gives_fewer_loader_workers(gpu):
    _, bench = gpu
    batch = 256 * 3 * 224 * 224 * 4  # 147 MiB: a ViT-B-32 batch of 256 images
    assert bench.loader_workers(8, batch, free=24 * 2**30) == (8, None)
    workers, note = bench.loader_workers(8, batch, free=64 * 2**20)  # Docker's default /dev/shm
    assert workers == 0 and "0 image-loading workers instead of 8" in note
    assert bench.loader_workers(8, batch, free=2 * 2**30)[0] == 5  # (2 GiB / 1.25 / 147 MiB - 1) // 2
    assert bench.loader_workers(0, batch, free=0) == (0, None)

    class Embedder:
        workers = 8

    class Sec:
        notes = []

        def note(self, text):
            self.notes.append(text)

    calls = []

    def evaluate():
        calls.append(embedder.workers)
        if embedder.workers:
            raise RuntimeError("DataLoader worker (pid 123) is killed by signal: Bus error. It is possible that "
                               "dataloader's workers are out of shared memory.")
        return "metrics"

    embedder, sec = Embedder(), Sec()
    assert bench.with_loader_fallback(evaluate, embedder, sec) == "metrics" and calls == [8, 0]
    assert "ran again with 0 workers" in sec.notes[0]
    embedder.workers = 8

    def other():
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    with pytest.raises(RuntimeError, match="illegal memory access"):
        bench.with_loader_fallback(other, embedder, sec)
