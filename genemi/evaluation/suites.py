"""``--suite``: a named set of benchmarks and the paper-style table of its summary columns.

``paper`` is the five-column summary that compositionality papers and the vl_compo report print (SugarCrepe
mean of its 7 subsets, ARO mean of its 4 sets, VALSE mean over instruments, Winoground group score, ImageNet
zero-shot top-1); ``full`` adds every evaluated benchmark's headline metrics. A column averages its parts and is empty
(``–``) unless every part was evaluated, so a table never mixes means over different sets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genemi.errors import ConfigError

ARO_PARTS = (("aro_vg_relation", "macro_accuracy"), ("aro_vg_attribution", "macro_accuracy"),
             ("aro_coco_order", "precision_at_1"), ("aro_flickr_order", "precision_at_1"))


@dataclass(frozen=True)
class Column:
    title: str
    parts: tuple[tuple[str, str], ...]  # (benchmark result name, metric), averaged


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    benchmarks: tuple[str, ...]  # registry names (``aro`` expands to its four sets)
    columns: tuple[Column, ...]


PAPER_COLUMNS = (
    Column("SugarCrepe (mean of 7)", (("sugarcrepe", "mean"),)),
    Column("ARO (mean of 4)", ARO_PARTS),
    Column("VALSE (mean)", (("valse", "avg"),)),
    Column("Winoground group", (("winoground", "group"),)),
    Column("ImageNet ZS top-1", (("zeroshot", "top1"),)),
)


SUITES = {
    "paper": Suite("paper", "SugarCrepe, ARO (4 sets), VALSE, Winoground, ImageNet zero-shot: the papers' 5 averages",
                   ("sugarcrepe", "aro", "valse", "winoground", "zeroshot"), PAPER_COLUMNS),
    "full": Suite("full", "every benchmark with data; the 5 averages, then each benchmark's headline metrics",
                  (), PAPER_COLUMNS),
}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise ConfigError(f"unknown --suite {name!r}; available: {', '.join(SUITES)}")
    return SUITES[name]


def suite_benchmarks(suite: Suite, configured: list[str]) -> tuple[list[str], list[str]]:
    """(benchmarks to run, suite benchmarks without data). ``full`` runs whatever is configured."""
    if not suite.benchmarks:
        return list(configured), []
    return [b for b in suite.benchmarks if b in configured], [b for b in suite.benchmarks if b not in configured]


def column_value(result: dict, column: Column) -> float | None:
    """Mean of the column's parts in one model's result JSON; None unless every part is there."""
    values = []
    for bench, metric in column.parts:
        value = result.get("benchmarks", {}).get(bench, {}).get("metrics", {}).get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        values.append(float(value))
    return sum(values) / len(values)


def suite_columns(suite: Suite, results: list[dict]) -> list[Column]:
    """``paper``: its five columns. ``full``: those of the five with a value, then every benchmark's headline
    metrics in the order the results list them."""
    if suite.benchmarks:
        return list(suite.columns)
    columns = [c for c in suite.columns if any(column_value(r, c) is not None for r in results)]
    for r in results:
        for bench, data in r.get("benchmarks", {}).items():
            for metric in data.get("headline", []):
                column = Column(f"{bench} {metric}", ((bench, metric),))
                if column not in columns:
                    columns.append(column)
    return columns


def suite_rows(suite: Suite, results: list[dict]) -> tuple[list[Column], list[tuple[str, list[float | None]]]]:
    """The table's columns and, per model, its values (None where a part is missing)."""
    columns = suite_columns(suite, results)
    return columns, [(r["label"], [column_value(r, c) for c in columns]) for r in results]


def suite_table(suite: Suite, results: list[dict]) -> str:
    """Markdown: one row per model, one column per summary."""
    columns, rows = suite_rows(suite, results)
    head = "| model | " + " | ".join(c.title for c in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    body = [f"| {label} | " + " | ".join("–" if v is None else f"{v:.1f}" for v in values) + " |"
            for label, values in rows]
    return "\n".join([head, rule, *body]) + "\n"
