"""The GPU check's summaries (``OUT/gpu_summary.json`` + ``OUT/gpu_summary.md``), standard library only.

``gpu_benchmarks.py`` writes them after every benchmark section. ``run.sh`` then always calls ``finish``, which
needs neither torch nor CUDA, so that a run whose benchmark process never started, found no CUDA, crashed or
was stopped by its timeout still leaves a complete summary: the machine, the versions, the CUDA tests' results,
every benchmark with its status (and, for one that did not finish, why), and the other logs' tails.

    python benchmarks/gpu/gpu_summary.py finish --out OUT --bench-rc RC --bench-log LOG \\
        [--tests-junit XML --tests-log LOG --tests-rc RC] [--attach NAME LOG RC]...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

#: every benchmark entry the summaries hold, in the order they run: the figure the docs need most first
#: (SD-2 inpainting step time and TFLOP/s), then by value; offload_24gb last (it reads the others' memory)
BENCHMARKS = ("sd2_inpaint", "train_ViT-B-32", "eval_sugarcrepe", "grounding_dino", "sam_vit_h", "train_ViT-L-14",
              "t2i_unets", "offload_24gb")
#: a section's status: ok / partial (stopped early at its budget, figures kept) / timeout (still running at its
#: budget + grace: interrupted, figures kept) / error / skipped / not run (the process ended before it, or found
#: no CUDA) / killed (the process ended while it ran)
STATUSES = ("ok", "partial", "timeout", "error", "skipped", "not run", "killed")
GiB = 2**30
TAIL_LINES = 40


def versions(import_genemi: bool = True) -> dict:
    from importlib import metadata

    out = {}
    for dist in ("torch", "torchvision", "transformers", "diffusers", "open_clip_torch", "segment-anything",
                 "accelerate", "pydantic", "pydantic-core", "huggingface-hub", "tokenizers", "numpy", "pillow",
                 "safetensors", "timm", "spacy", "triton"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    if import_genemi:
        try:
            import genemi

            out["genemi"] = f"{genemi.__version__} ({Path(genemi.__file__).parent})"
        except Exception as exc:  # noqa: BLE001
            out["genemi"] = f"not importable: {exc}"
    return out


def nvidia_smi() -> str | None:
    """One line per card: name, driver, memory total / used, max SM clock, power limit (None without nvidia-smi)."""
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,memory.used,"
                                 "clocks.max.sm,power.limit", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def shm_free_bytes(path: str = "/dev/shm") -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def shm_info(path: str = "/dev/shm") -> dict | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return {"path": path, "total_gib": round(usage.total / GiB, 3), "free_gib": round(usage.free / GiB, 3)}


def basic_meta(dry_run: bool | None = None) -> dict:
    """What is known without torch: for a summary the benchmark process never wrote."""
    smi = nvidia_smi()
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "dry_run": dry_run,
            "device": None, "python": platform.python_version(), "host": platform.node(),
            "cpu_count": os.cpu_count(), "versions": versions(import_genemi=False),
            "card": smi.split(",")[0].strip() if smi else "unknown (no summary from the benchmark process)",
            "nvidia_smi": smi, "shm": shm_info(),
            "bf16_peak_assumption": "not known: the benchmark process wrote no summary"}


# --- CUDA tests ---------------------------------------------------------------------------------------------


def tail(path: Path | None, lines: int = TAIL_LINES) -> str:
    if path is None or not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def read_junit(path: Path, rc: int | None, log: Path | None) -> dict:
    entry: dict = {"exit_code": rc, "tests": []}
    if rc == 124 or rc == 137:
        entry["note"] = f"pytest was stopped by run.sh's timeout (exit {rc})"
    if log is not None and log.is_file():
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        words = ("passed", "failed", "skipped", "deselected", "error")
        entry["summary_line"] = next((ln.strip("= ") for ln in reversed(lines)
                                      if " in " in ln and any(w in ln for w in words)), None)
        if entry["summary_line"] is None:
            entry["log_tail"] = "\n".join(lines[-15:])
    if not path.is_file():
        entry["note"] = (entry.get("note", "") + "; " if entry.get("note") else "") + f"no JUnit file {path}"
        return entry
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        entry["note"] = f"JUnit file {path} unreadable: {exc}"
        return entry
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome, message = {"failure": "failed"}.get(tag, tag), (node.get("message") or "")[:300]
                break
        entry["tests"].append({"name": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                               "seconds": float(case.get("time") or 0), "message": message})
    return entry


# --- Markdown -----------------------------------------------------------------------------------------------


def fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2e}"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def write_summaries(out: Path, summary: dict) -> None:
    """JSON first, then Markdown; each through a temporary file, so that a reader never sees half a file."""
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "gpu_summary.json", json.dumps(summary, indent=2, default=str))
    _write(out / "gpu_summary.md", markdown(summary))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def markdown(summary: dict) -> str:
    meta = summary.get("meta") or {}
    lines = [f"# genemi GPU check: {meta.get('card')}", ""]
    lines.append(f"{'DRY RUN (CPU, tiny models): no GPU figure. ' if meta.get('dry_run') else ''}"
                 f"{meta.get('date')}, device {meta.get('device')}, Python {meta.get('python')}, "
                 f"wall {meta.get('wall_s')} s.")
    v = meta.get("versions") or {}
    lines.append("Versions: " + ", ".join(f"{k} {v[k]}" for k in v if v[k]) + ".")
    if meta.get("nvidia_smi"):
        lines.append(f"nvidia-smi: {meta['nvidia_smi']}.")
    if meta.get("shm"):
        lines.append(f"/dev/shm: {meta['shm']['total_gib']} GiB, {meta['shm']['free_gib']} GiB free.")
    lines.append(f"bf16 peak assumed: {meta.get('bf16_peak_assumption')}.")
    process = summary.get("benchmark_process")
    if process and process.get("exit_code") not in (0, None):
        lines += ["", f"**The benchmark process {process.get('outcome')}.** Its log's last lines:", "", "```",
                  *str(process.get("log_tail", "")).splitlines(), "```"]
    lines += ["", "## CUDA tests", ""]
    tests = summary.get("cuda_tests")
    if tests:
        lines.append(f"pytest exit code {tests.get('exit_code')}; {tests.get('summary_line') or ''}"
                     f"{' (' + tests['note'] + ')' if tests.get('note') else ''}")
        lines.append("")
        if tests.get("tests"):
            lines += ["| test | outcome | s |", "|---|---|---|"]
            lines += [f"| `{t['name']}` | {t['outcome']}{': ' + t['message'] if t['message'] else ''} | "
                      f"{t['seconds']:.1f} |" for t in tests["tests"]]
        elif tests.get("log_tail"):
            lines += ["```", *tests["log_tail"].splitlines(), "```"]
    else:
        lines.append("not run")
    for name, entry in summary.get("benchmarks", {}).items():
        budget = f" of a {entry['budget_s']} s budget" if entry.get("budget_s") else ""
        wall = f", {entry['wall_s']} s{budget}" if entry.get("wall_s") is not None else ""
        lines += ["", f"## {name}", "", f"status: {entry.get('status')}{wall}", ""]
        if entry.get("error"):
            lines += [f"error: `{entry['error'][:500]}`", ""]
        if entry.get("figures"):
            lines += ["| figure | value | unit |", "|---|---|---|"]
            lines += [f"| {k} | {fmt(f['value'])} | {f['unit']} |" for k, f in entry["figures"].items()]
        if entry.get("notes"):
            lines += [""] + [f"- {n}" for n in entry["notes"]]
    for name, att in summary.get("attached", {}).items():
        lines += ["", f"## {name} (attached log)", "", f"exit code {att['exit_code']}", "", "```",
                  *att["tail"].splitlines(), "```"]
    return "\n".join(lines) + "\n"


# --- finishing a run ----------------------------------------------------------------------------------------


def describe_exit(rc: int | None) -> str:
    """One phrase for how a process ended (exit codes as bash and timeout report them)."""
    if rc is None:
        return "did not run"
    if rc == 0:
        return "finished"
    if rc == 124:
        return "was stopped by run.sh's timeout (exit 124)"
    if rc == 2:
        return "refused to run (exit 2)"
    if rc > 128:
        try:
            name = signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        why = " (run.sh's timeout, or out of memory)" if name == "SIGKILL" else ""
        return f"was killed by {name}{why} (exit {rc})"
    return f"failed (exit {rc})"


def attach(summary: dict, name: str, log: Path | None, rc: int | None, text: str | None = None) -> None:
    summary.setdefault("attached", {})[name] = {"exit_code": rc, "tail": text if text is not None else tail(log)}


def finish(out: Path, bench_rc: int | None, bench_log: Path | None = None, tests_junit: Path | None = None,
           tests_log: Path | None = None, tests_rc: int | None = None, attachments=(), dry_run: bool | None = None
           ) -> dict:
    """Complete OUT's summaries after the benchmark process, whatever became of it; returns the summary."""
    path = out / "gpu_summary.json"
    summary = None
    if path.is_file():
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            summary = None
    reason = None
    if summary is None:
        summary = {"meta": basic_meta(dry_run), "cuda_tests": None, "benchmarks": {}, "attached": {}}
        reason = f"the benchmark process {describe_exit(bench_rc)} before writing a summary"
    log_text = tail(bench_log)
    if bench_rc not in (0, None) or reason:
        summary["benchmark_process"] = {"exit_code": bench_rc, "outcome": describe_exit(bench_rc),
                                        "log_tail": log_text}
    if tests_junit is not None or tests_rc is not None:
        summary["cuda_tests"] = read_junit(tests_junit or Path("/nonexistent"), tests_rc, tests_log)
    benchmarks = summary.setdefault("benchmarks", {})
    if "no CUDA device" in log_text:
        why = "no CUDA device: torch.cuda.is_available() is False (see the versions step)"
    else:
        why = reason or f"the benchmark process {describe_exit(bench_rc)} before this section"
    for name in BENCHMARKS:
        entry = benchmarks.get(name)
        if entry is None:
            benchmarks[name] = {"status": "not run", "budget_s": None, "wall_s": None, "figures": {}, "notes": [why]}
        elif entry.get("status") == "running":
            entry["status"] = "killed"
            entry["error"] = f"the benchmark process {describe_exit(bench_rc)} while this section ran"
            entry.setdefault("notes", []).append("figures recorded before the end are kept")
    summary["benchmarks"] = {name: benchmarks[name] for name in BENCHMARKS} | {
        k: v for k, v in benchmarks.items() if k not in BENCHMARKS}
    for name, log, rc in attachments:
        attach(summary, name, Path(log), rc)
    summary.setdefault("meta", {})["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_summaries(out, summary)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    fin = sub.add_parser("finish", help="complete OUT's summaries after the benchmark process")
    fin.add_argument("--out", required=True)
    fin.add_argument("--bench-rc", type=int, default=None, help="the benchmark process's exit status (none: not run)")
    fin.add_argument("--bench-log", default=None)
    fin.add_argument("--tests-junit", default=None)
    fin.add_argument("--tests-log", default=None)
    fin.add_argument("--tests-rc", type=int, default=None)
    fin.add_argument("--dry-run", action="store_true")
    fin.add_argument("--attach", nargs=3, action="append", default=[], metavar=("NAME", "LOG", "RC"),
                     help="add a log's tail (RC: its exit status, or '-' for none)")
    args = ap.parse_args(argv)
    attachments = [(n, log, None if rc == "-" else int(rc)) for n, log, rc in args.attach]
    opt = lambda p: Path(p) if p else None  # noqa: E731
    summary = finish(Path(args.out), args.bench_rc, opt(args.bench_log), opt(args.tests_junit), opt(args.tests_log),
                     args.tests_rc, attachments, dry_run=args.dry_run)
    statuses = ", ".join(f"{n} {e.get('status')}" for n, e in summary["benchmarks"].items())
    print(f"summaries complete: {statuses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
