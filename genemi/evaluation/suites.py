"""``--suite``: a named set of benchmarks and the paper-style table of its summary columns.

``paper`` is the five-column summary that compositionality papers and the vl_compo report print (SugarCrepe
mean of its 7 subsets, ARO mean of its 4 sets, VALSE mean over instruments, Winoground group score, ImageNet
zero-shot top-1); ``full`` adds every other benchmark's summary. A column averages its parts and is empty
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

FULL_COLUMNS = PAPER_COLUMNS + (
    Column("ARO VG-R", (ARO_PARTS[0],)), Column("ARO VG-A", (ARO_PARTS[1],)),
    Column("ARO COCO-Order", (ARO_PARTS[2],)), Column("ARO Flickr-Order", (ARO_PARTS[3],)),
    Column("Winoground text", (("winoground", "text"),)), Column("Winoground image", (("winoground", "image"),)),
    Column("SugarCrepe++ ITT", (("sugarcrepe_pp", "itt_mean"),)), Column("SugarCrepe++ TOT", (("sugarcrepe_pp", "tot_mean"),)),
    Column("VL-CheckList O", (("vl_checklist", "Object"),)), Column("VL-CheckList A", (("vl_checklist", "Attribute"),)),
    Column("VL-CheckList R", (("vl_checklist", "Relation"),)),
    Column("Retrieval i2t R@1", (("retrieval", "i2t_R@1"),)), Column("Retrieval t2i R@1", (("retrieval", "t2i_R@1"),)),
)  # fmt: skip

SUITES = {
    "paper": Suite("paper", "SugarCrepe, ARO (4 sets), VALSE, Winoground, ImageNet zero-shot: the papers' 5 averages",
                   ("sugarcrepe", "aro", "valse", "winoground", "zeroshot"), PAPER_COLUMNS),
    "full": Suite("full", "every benchmark with data; the 5 averages plus each benchmark's summary columns",
                  (), FULL_COLUMNS),
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


def suite_rows(suite: Suite, results: list[dict]) -> tuple[list[Column], list[tuple[str, list[float | None]]]]:
    """The columns with a value for at least one model (all of them for ``paper``), and per model its values."""
    rows = [(r["label"], [column_value(r, c) for c in suite.columns]) for r in results]
    keep = [k for k, c in enumerate(suite.columns)
            if suite.name == "paper" or any(values[k] is not None for _, values in rows)]
    return [suite.columns[k] for k in keep], [(label, [values[k] for k in keep]) for label, values in rows]


def suite_table(suite: Suite, results: list[dict]) -> str:
    """Markdown: one row per model, one column per summary."""
    columns, rows = suite_rows(suite, results)
    head = "| model | " + " | ".join(c.title for c in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    body = [f"| {label} | " + " | ".join("–" if v is None else f"{v:.1f}" for v in values) + " |"
            for label, values in rows]
    return "\n".join([head, rule, *body]) + "\n"
