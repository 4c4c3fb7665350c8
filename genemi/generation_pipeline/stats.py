"""``genemi generate stats``: what a run produced, what failed and why, and how the scores fall.

For every stage manifest present in the output folder (the stages of
:data:`~genemi.generation_pipeline.registry.STAGES`): records, ok, failed, failure reasons
``<stage>/<type>`` (the stage where the failure happened, counted over records, items and variations) with
one example message each, and the stage's items / variations. From the latest plan manifest: variations per
item (planned, and ok). From ``scores.jsonl``: min / median / mean / max of the mean ITM logit per variation,
the mean ITM probability, the mean CLIPScore (when scored) and the IVA, and how many painted variations pass
``--min-itm``, ``--min-iva``, both, and the export (captions present, image file present).

Writes ``<output-dir>/stats/stats.json`` and PNG histograms (``itm.png``, ``itm_prob.png``,
``clip_score.png``, ``iva.png``, ``variations_per_item.png``; the thresholds drawn as vertical lines).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError
from genemi.options import Section, option, resolve, tool_parser
from genemi.generation_pipeline.export import Candidate, _Parser, drop_reason, iter_candidates
from genemi.generation_pipeline.runs import run_folder
from genemi.records import VariationPlan
from genemi.score_filters import (DEFAULT_IVA_SCOPE, DEFAULT_MIN_ITM, DEFAULT_MIN_IVA, IVA_SCOPES, iva_of, passes,
                                  threshold_arg)


def summarize(values: Sequence[float]) -> dict | None:
    """count / min / median / mean / max of the finite values (None when there are none)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return {"count": len(vals), "min": min(vals), "median": statistics.median(vals),
            "mean": statistics.fmean(vals), "max": max(vals)}  # fmt: skip


def _histogram(counter: Counter) -> dict[str, int]:
    return {str(k): counter[k] for k in sorted(counter)}


def stage_stats(spec, records: list) -> dict:
    """Counts, failure reasons and the stage's items / variations for one manifest."""
    from genemi.generation_pipeline.stage import failures

    reasons: Counter = Counter()
    examples: dict[str, str] = {}
    for rec in records:
        for f in failures(rec):
            key = f"{f.stage}/{f.type}"
            reasons[key] += 1
            examples.setdefault(key, f.message[:300])
    ok = sum(r.status == "ok" for r in records)
    out: dict = {"manifest": spec.writes, "records": len(records), "ok": ok, "failed": len(records) - ok,
                 "failure_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
                 "failure_examples": {k: examples[k] for k in sorted(examples)}}  # fmt: skip
    sample = records[0] if records else spec.record.model_construct()
    if hasattr(sample, "tags"):
        out["tags"] = sum(len(r.tags) for r in records)
    if hasattr(sample, "boxes"):
        out["boxes"] = sum(len(r.boxes) for r in records)
    if hasattr(sample, "ungrounded"):
        out["ungrounded"] = sum(len(r.ungrounded) for r in records)
    if spec.record is VariationPlan:
        items = [it for r in records for it in r.items]
        variations = [(r, it, v) for r in records for it in r.items for v in it.variations]
        ok_var = [v for r, it, v in variations if r.status == it.status == v.status == "ok"]
        out.update({
            "items": len(items),
            "items_failed": sum(it.status != "ok" for it in items),
            "variations": len(variations),
            "variations_ok": len(ok_var),
            "variations_failed": len(variations) - len(ok_var),
            "captioned": sum(bool(v.captions) for v in ok_var),
            "caption_fallback": sum(v.caption_fallback for v in ok_var),
            "painted": sum(bool(v.image) for v in ok_var),
            "scored": sum(v.itm_score is not None for v in ok_var),
            "variations_per_item": _histogram(Counter(len(it.variations) for it in items)),
            "ok_variations_per_item": _histogram(Counter(sum(r.status == it.status == v.status == "ok"
                                                             for v in it.variations)
                                                         for r in records for it in r.items)),
        })  # fmt: skip
    elif hasattr(sample, "items"):
        out["items"] = sum(len(r.items) for r in records)
    return out


def score_stats(candidates: list[Candidate], root: Path, min_itm: float | None, min_iva: float | None,
                iva_scope: str = DEFAULT_IVA_SCOPE) -> dict:
    """Score summaries and filter pass counts over the painted ok variations of ``scores.jsonl`` (``iva``: the
    IVA of ``iva_scope``; both scopes are summarised)."""
    painted = [c for c in candidates if drop_reason(c, root, None, None, check_files=False) in (None, "no_captions")]
    itm = [c.var.mean_itm for c in painted]
    prob = [statistics.fmean(c.var.itm_prob) for c in painted if c.var.itm_prob]
    clip = [statistics.fmean(c.var.clip_score) for c in painted if c.var.clip_score]
    iva = [iva_of(c.var, iva_scope) for c in painted]
    by_scope = {f"iva_{scope}": [iva_of(c.var, scope) for c in painted] for scope in IVA_SCOPES}

    pass_itm = [passes(v, min_itm) for v in itm]
    pass_iva = [passes(v, min_iva) for v in iva]
    reasons = Counter(drop_reason(c, root, min_itm, min_iva, iva_scope=iva_scope) for c in candidates)
    return {
        "values": {"itm": itm, "itm_prob": prob, "clip_score": clip, "iva": iva},
        "scores": {"itm": summarize(itm), "itm_prob": summarize(prob), "clip_score": summarize(clip),
                   **{name: summarize([v for v in vals if v is not None]) for name, vals in by_scope.items()}},
        "filters": {"min_itm": min_itm, "min_iva": min_iva, "iva_scope": iva_scope, "painted": len(painted),
                    "pass_itm": sum(pass_itm), "pass_iva": sum(pass_iva),
                    "pass_both": sum(a and b for a, b in zip(pass_itm, pass_iva)),
                    "exportable": reasons.get(None, 0),
                    "export_dropped": {k: v for k, v in sorted(reasons.items(), key=lambda kv: str(kv[0])) if k}},
    }  # fmt: skip


# --- plots ------------------------------------------------------------------------------------------------


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def histogram_png(values: Sequence[float], title: str, xlabel: str, threshold: float | None = None,
                  threshold_label: str = "") -> bytes:  # fmt: skip
    """A histogram (Agg backend, no global pyplot state) with an optional vertical threshold line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    vals = [v for v in values if v is not None and math.isfinite(v)]
    # bins span what is drawn (the values and the threshold line), so bars keep a readable width
    ends = vals + ([threshold] if threshold is not None else [])
    lo, hi = (min(ends), max(ends)) if ends else (0.0, 1.0)
    bins = min(50, max(5, int(math.sqrt(len(vals))) * 2))
    ax.hist(vals, bins=bins, range=(lo, hi) if hi > lo else None, color="#4c72b0", edgecolor="white")
    if threshold is not None:
        ax.axvline(threshold, color="#c44e52", linestyle="--", linewidth=2, label=threshold_label)
        ax.legend()
    ax.set_title(f"{title} (n={len(vals)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("variations")
    fig.tight_layout()
    return _png(fig)


def bar_png(histogram: dict[str, int], title: str, xlabel: str, ylabel: str) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.bar(list(histogram), list(histogram.values()), color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return _png(fig)


# --- the report ---------------------------------------------------------------------------------------


def run_stats(output_dir: str | Path, out: str | Path | None = None, min_itm: float | None = DEFAULT_MIN_ITM,
              min_iva: float | None = DEFAULT_MIN_IVA, plots: bool = True,
              iva_scope: str = DEFAULT_IVA_SCOPE) -> dict:  # fmt: skip
    """Compute a run's statistics, write ``stats.json`` and the histograms under ``out`` (default
    ``<output-dir>/stats``), and return the statistics with ``files`` (what was written)."""
    from genemi.generation_pipeline import registry
    from genemi.manifest import read_records, write_atomic

    root = run_folder(output_dir)
    for name, value in (("--min-itm", min_itm), ("--min-iva", min_iva)):
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number or 'none', not {value}")
    present = [spec for spec in registry.STAGES if (root / spec.writes).is_file()]
    if not present:
        hint = (f"; shard outputs found: run `genemi generate merge --output-dir {root}` first"
                if (root / "shards").is_dir() else "")
        raise ConfigError(f"no stage manifests in {root} (expected {', '.join(s.writes for s in registry.STAGES)}){hint}")
    result: dict = {"output_dir": str(root), "stages": {}}
    loaded: dict[str, list] = {}
    for spec in present:
        loaded[spec.name] = read_records(root / spec.writes, spec.record)
        result["stages"][spec.name] = stage_stats(spec, loaded[spec.name])
    plans = [s for s in present if s.record is VariationPlan]
    if plans:
        last = result["stages"][plans[-1].name]
        result["variations_per_item"] = {"manifest": plans[-1].writes, "planned": last["variations_per_item"],
                                         "ok": last["ok_variations_per_item"]}  # fmt: skip
    values: dict = {}
    if "score" in loaded:
        scored = score_stats(list(iter_candidates(loaded["score"])), root, min_itm, min_iva, iva_scope)
        values = scored.pop("values")
        result.update(scored)
    else:
        result["scores"] = None
        result["filters"] = None

    target = Path(out) if out is not None else root / "stats"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the stats folder {target}: {exc.strerror or exc}") from exc
    files: dict[str, str] = {}
    if plots:
        figures = {
            "itm": (values.get("itm"), "BLIP ITM logit, mean over captions", "mean ITM logit", min_itm,
                    f"--min-itm {min_itm:g}" if min_itm is not None else ""),
            "itm_prob": (values.get("itm_prob"), "BLIP ITM probability, mean over captions", "mean ITM probability",
                         None, ""),
            "clip_score": (values.get("clip_score"), "CLIPScore, mean over captions", "CLIPScore", None, ""),
            "iva": ([v for v in values.get("iva") or () if v is not None],
                    f"image variation area (IVA, over the {iva_scope}) of the sibling group", "IVA (%)", min_iva,
                    f"--min-iva {min_iva:g}" if min_iva is not None else ""),
        }  # fmt: skip
        for name, (vals, title, xlabel, threshold, label) in figures.items():
            if vals:
                path = target / f"{name}.png"
                write_atomic(path, histogram_png(vals, title, xlabel, threshold, label))
                files[name] = str(path)
        per_item = result.get("variations_per_item")
        if per_item and per_item["ok"]:
            path = target / "variations_per_item.png"
            write_atomic(path, bar_png(per_item["ok"], f"ok variations per item ({per_item['manifest']})",
                                       "ok variations", "items"))
            files["variations_per_item"] = str(path)
    files["stats"] = str(target / "stats.json")
    result["files"] = files
    write_atomic(target / "stats.json", (json.dumps(result, indent=2) + "\n").encode("utf-8"))
    return result


# --- command line ---------------------------------------------------------------------------------------

_COLUMNS = ("records", "ok", "failed", "items", "variations", "variations_ok", "painted", "scored")


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def format_report(s: dict) -> str:
    """The printed table: stages, failures, variations per item, scores, filters, files."""
    lines = [f"run {s['output_dir']}"]
    head = f"  {'stage':8s} {'manifest':17s}" + "".join(f"{c.replace('variations', 'vars'):>10s}" for c in _COLUMNS)
    lines.append(head)
    for name, st in s["stages"].items():
        lines.append(f"  {name:8s} {st['manifest']:17s}" + "".join(f"{_num(st.get(c)):>10s}" for c in _COLUMNS))
    failing = [(name, k, c, st["failure_examples"][k]) for name, st in s["stages"].items()
               for k, c in st["failure_reasons"].items()]  # fmt: skip
    if failing:
        lines.append("failures (per manifest: <stage where it failed>/<type>, count, example):")
        lines += [f"  {name:8s} {count:6d} x {key}: {example}" for name, key, count, example in failing]
    per_item = s.get("variations_per_item")
    if per_item:
        fmt = lambda h: ", ".join(f"{k} -> {v} items" for k, v in h.items()) or "-"  # noqa: E731
        lines.append(f"variations per item ({per_item['manifest']}): planned {fmt(per_item['planned'])}; "
                     f"ok {fmt(per_item['ok'])}")
    if s.get("scores"):
        lines.append(f"  {'score':11s}{'n':>7s}{'min':>10s}{'median':>10s}{'mean':>10s}{'max':>10s}")
        for name, summary in s["scores"].items():
            if summary:
                lines.append(f"  {name:11s}{summary['count']:7d}" + "".join(
                    f"{summary[k]:10.3f}" for k in ("min", "median", "mean", "max")))
        f = s["filters"]
        itm = "off" if f["min_itm"] is None else f"> {f['min_itm']:g}"
        iva = "off" if f["min_iva"] is None else f"> {f['min_iva']:g}"
        lines.append(f"filters over {f['painted']} painted variations: mean ITM {itm}: {f['pass_itm']}, "
                     f"IVA ({f['iva_scope']}) {iva}: {f['pass_iva']}, both: {f['pass_both']}; exportable: "
                     f"{f['exportable']}")
    elif "score" not in s["stages"]:
        lines.append("no scores.jsonl: run `genemi generate --stages score` for score histograms and filter counts")
    lines.append("files:")
    lines += [f"  {path}" for path in s["files"].values()]
    return "\n".join(lines)


@dataclass
class StatsOptions(Section):
    """``genemi generate stats``'s options."""

    output_dir: str | None = option(None, "the pipeline run's output folder", metavar="DIR", required=True)
    stats_dir: str | None = option(None, "where to write stats.json and the PNGs", metavar="DIR",
                                   default_text="OUTPUT_DIR/stats")
    min_itm: float | None = option(DEFAULT_MIN_ITM, "ITM threshold counted and drawn (mean logit > this; none = off)",
                                   none="none", parse=threshold_arg, metavar="X")
    min_iva: float | None = option(DEFAULT_MIN_IVA, "IVA threshold counted and drawn (> this; none = off)",
                                   none="none", parse=threshold_arg, metavar="X")
    iva_scope: str = option(DEFAULT_IVA_SCOPE, "which IVA --min-iva compares: image or window", choices=IVA_SCOPES)
    plots: bool = option(True, "PNG histograms next to stats.json")


def build_parser() -> argparse.ArgumentParser:
    return tool_parser("genemi generate stats", "Per-stage counts and failure reasons, variations per item, score "
                       "summaries and histograms, and how many variations pass the export filters.", StatsOptions,
                       parser_class=_Parser)


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import run_tool

    def action(args):
        o = resolve(StatsOptions, args)
        return run_stats(o.output_dir, o.stats_dir, o.min_itm, o.min_iva, plots=o.plots, iva_scope=o.iva_scope)

    return run_tool("genemi generate stats", build_parser(), argv, action, lambda r: print(format_report(r)))


if __name__ == "__main__":
    raise SystemExit(main())
