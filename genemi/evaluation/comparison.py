"""Compare two or more evaluated models: per-benchmark deltas against a reference, and the items that flipped.

Deltas come from the result JSONs; flips need the per-item tables (``--save-item-scores``). An item is
identified by (benchmark, subset, item id); it flips when its decision (``correct``, or for 2x2 benchmarks
``group``, for SugarCrepe++ ``itt``) differs between the reference and the other model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from genemi.errors import ConfigError

#: the column holding an item's overall decision, in order of preference
DECISION_COLUMNS = ("correct", "group", "itt")
EXAMPLES = 5


@dataclass
class Flips:
    benchmark: str
    decision: str
    shared: int = 0  # items present in both tables
    gained: list[tuple[str, str]] = field(default_factory=list)  # wrong in the reference, right here
    lost: list[tuple[str, str]] = field(default_factory=list)


def _decision_column(rows: list[dict]) -> str | None:
    for name in DECISION_COLUMNS:
        if rows and name in rows[0]:
            return name
    return None


def item_flips(benchmark: str, reference: list[dict], other: list[dict]) -> Flips | None:
    """Items whose decision differs between two per-item tables of one benchmark (None: no decision column)."""
    column = _decision_column(reference)
    if column is None or column not in (other[0] if other else {}):
        return None
    ref = {(str(r.get("subset") or ""), str(r["item_id"])): bool(r[column]) for r in reference}
    flips = Flips(benchmark, column)
    for row in other:
        key = (str(row.get("subset") or ""), str(row["item_id"]))
        if key not in ref:
            continue
        flips.shared += 1
        now = bool(row[column])
        if now and not ref[key]:
            flips.gained.append(key)
        elif ref[key] and not now:
            flips.lost.append(key)
    return flips


def _headline(result: dict) -> list[tuple[str, str, float]]:
    out = []
    for bench, data in result.get("benchmarks", {}).items():
        for metric in data.get("headline", []):
            value = data.get("metrics", {}).get(metric)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                out.append((bench, metric, float(value)))
    return out


def compare(results: list[dict], item_tables: dict[str, dict[str, list[dict]]],
            reference: str | None = None) -> tuple[str, list[dict]]:
    """Markdown comparison of ``results`` (result JSONs) against ``reference`` (default: the first model), and
    every flipped item as a row (model, benchmark, subset, item_id, decision, change).

    ``item_tables``: label -> benchmark -> rows (may be empty; flips are then not listed).
    """
    if len(results) < 2:
        raise ConfigError("a comparison needs at least two evaluated models")
    labels = [r["label"] for r in results]
    reference = reference or labels[0]
    if reference not in labels:
        raise ConfigError(f"--reference {reference!r} is not among the evaluated models: {', '.join(labels)}")
    ref = next(r for r in results if r["label"] == reference)
    others = [r for r in results if r["label"] != reference]
    ref_values = {(b, m): v for b, m, v in _headline(ref)}
    lines = [f"# Comparison against `{reference}`", "",
             "| benchmark | metric | " + reference + " | " + " | ".join(f"{r['label']} (Δ)" for r in others) + " |",
             "|---|---|---:|" + "---:|" * len(others)]
    keys = list(ref_values)
    for r in others:
        keys += [(b, m) for b, m, _ in _headline(r) if (b, m) not in keys]
    for bench, metric in keys:
        base = ref_values.get((bench, metric))
        cells = []
        for r in others:
            value = r.get("benchmarks", {}).get(bench, {}).get("metrics", {}).get(metric)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                cells.append("–")
            elif base is None:
                cells.append(f"{value:.1f}")
            else:
                cells.append(f"{value:.1f} ({value - base:+.1f})")
        lines.append(f"| {bench} | {metric} | {'–' if base is None else f'{base:.1f}'} | " + " | ".join(cells) + " |")
    flip_lines, flip_rows = [], []
    for r in others:
        for bench, rows in sorted(item_tables.get(r["label"], {}).items()):
            ref_rows = item_tables.get(reference, {}).get(bench)
            if not rows or not ref_rows:
                continue
            f = item_flips(bench, ref_rows, rows)
            if f is None:
                continue
            show = lambda keys: ", ".join(f"{s + '/' if s else ''}{i}" for s, i in keys[:EXAMPLES]) or "–"
            for change, keys_ in (("wrong->right", f.gained), ("right->wrong", f.lost)):
                flip_rows += [{"model": r["label"], "benchmark": bench, "subset": sub, "item_id": item,
                               "decision": f.decision, "change": change} for sub, item in keys_]
            flip_lines.append(f"| {r['label']} | {bench} | {f.decision} | {f.shared} | {len(f.gained)} | "
                              f"{len(f.lost)} | {show(f.gained)} | {show(f.lost)} |")
    if flip_lines:
        lines += ["", "## Items that flipped", "",
                  "| model | benchmark | decision | items in both | wrong→right | right→wrong | e.g. gained | e.g. lost |",
                  "|---|---|---|---:|---:|---:|---|---|", *flip_lines]
    else:
        lines += ["", "(no per-item tables for both models: evaluate with --save-item-scores to list flipped items)"]
    return "\n".join(lines) + "\n", flip_rows


def load_item_tables(output: Path, labels: list[str]) -> dict[str, dict[str, list[dict]]]:
    """label -> benchmark -> rows, from ``<output>/<label>/items/*.csv|parquet`` (what exists)."""
    from genemi.evaluation.item_scores import read_item_scores

    tables: dict[str, dict[str, list[dict]]] = {}
    for label in labels:
        folder = output / label / "items"
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in (".csv", ".parquet"):
                    tables.setdefault(label, {})[path.stem] = read_item_scores(path)
    return tables
