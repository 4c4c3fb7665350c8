"""Tables and plots across models: CSV (every metric), Markdown (headline metrics, papers' layout), PNG."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Sequence


def load_results(output: Path, labels: Sequence[str]) -> list[dict]:
    """The result JSONs of ``labels`` that exist, in that order."""
    out = []
    for label in labels:
        path = output / f"{label}.json"
        if path.exists():
            out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def _fmt(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def write_rows_csv(path: Path, columns: Sequence[str], rows: Sequence[dict]) -> Path:
    """``rows`` (dicts over ``columns``; None -> empty cell) as a CSV file, written atomically."""
    from genemi.manifest import write_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    write_atomic(path, buf.getvalue().encode("utf-8"))
    return path


def write_csv(results: list[dict], path: Path) -> Path:
    """One row per model, one column per ``benchmark/metric``."""
    columns: list[str] = []
    for r in results:
        for bench, data in r.get("benchmarks", {}).items():
            for metric in data["metrics"]:
                if f"{bench}/{metric}" not in columns:
                    columns.append(f"{bench}/{metric}")
    rows = [{"model": r["label"], "epoch": r.get("epoch"), "checkpoint": r.get("checkpoint") or None,
             **{f"{b}/{m}": v for b, d in r.get("benchmarks", {}).items() for m, v in d["metrics"].items()}}
            for r in results]
    return write_rows_csv(path, ["model", "epoch", "checkpoint", *columns], rows)


def markdown_table(results: list[dict]) -> str:
    """One row per model; columns = each benchmark's headline metrics (e.g. SugarCrepe's 7 subsets + means)."""
    columns: list[tuple[str, str]] = []
    for r in results:
        for bench, data in r.get("benchmarks", {}).items():
            for metric in data["headline"]:
                if (bench, metric) not in columns:
                    columns.append((bench, metric))
    head = "| model | " + " | ".join(f"{b} {m}" for b, m in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    rows = []
    for r in results:
        bench = r.get("benchmarks", {})
        cells = [_fmt(bench.get(b, {}).get("metrics", {}).get(m)) for b, m in columns]
        rows.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows, *coverage_lines(results)]) + "\n"


def coverage_lines(results: list[dict]) -> list[str]:
    """Markdown lines naming every benchmark evaluated on part of its items (none when all were)."""
    lines = []
    for r in results:
        for name, data in r.get("benchmarks", {}).items():
            items, evaluated = data.get("items", 0), data.get("evaluated", 0)
            if evaluated < items:
                lines.append(f"- {r['label']}: {name}: {evaluated:,} of {items:,} items evaluated "
                             f"({data.get('missing_images', 0):,} with missing or unreadable images)")
    return ["", "Partial coverage:", *lines] if lines else []


#: one line style per baseline (the colour says the metric, the style says which baseline)
_BASELINE_STYLES = ["--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3))]


def write_plots(results: list[dict], folder: Path) -> list[Path]:
    """One PNG per benchmark: each headline metric over snapshot epochs (integer epoch ticks); each baseline
    as horizontal lines in the metric's colour with its own line style, every baseline named in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    snapshots = [r for r in results if r.get("epoch") is not None]
    baselines = [r for r in results if r.get("baseline")]
    benches: dict[str, list[str]] = {}
    for r in results:
        for b, d in r.get("benchmarks", {}).items():
            benches.setdefault(b, list(d["headline"]))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for bench, metrics in benches.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        metric_handles, baseline_handles = [], {}
        for k, metric in enumerate(metrics):
            color = f"C{k % 10}"
            pts = [(r["epoch"], r["benchmarks"][bench]["metrics"].get(metric)) for r in snapshots
                   if bench in r.get("benchmarks", {})]
            pts = [(e, v) for e, v in pts if v is not None and not math.isnan(v)]
            drawn = False
            if pts:
                ax.plot(*zip(*pts), marker="o", color=color)
                drawn = True
            for j, base in enumerate(baselines):
                v = base.get("benchmarks", {}).get(bench, {}).get("metrics", {}).get(metric)
                if v is not None and not math.isnan(v):
                    style = _BASELINE_STYLES[j % len(_BASELINE_STYLES)]
                    ax.axhline(v, color=color, linestyle=style, linewidth=1)
                    baseline_handles.setdefault(j, Line2D([], [], color="0.3", linestyle=style, linewidth=1,
                                                          label=f"baseline {base['label']}"))
                    drawn = True
            if drawn:
                metric_handles.append(Line2D([], [], color=color, marker="o" if pts else None,
                                             linestyle="-" if pts else "--", label=metric))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_xlabel("epoch")
        ax.set_ylabel("%")
        ax.set_title(bench)
        ax.grid(alpha=0.3)
        handles = metric_handles + [baseline_handles[j] for j in sorted(baseline_handles)]
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="best")
        fig.tight_layout()
        path = folder / f"{bench}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
