"""``genemi eval`` / ``python -m genemi.evaluation.eval_autogmentation``: every benchmark, every snapshot.

Options are declared once: the command's in :mod:`genemi.evaluation.config`, each benchmark's data options next
to its code (:mod:`genemi.evaluation.benchmarks`). The original GeNeMi flags keep working as aliases
(``--model_name --snapshot_file --snapshot_folder --evaluation-filepath --evaluation-image-folder --force``).
Precedence: defaults < ``--config`` (its ``data:`` section) < ``--data-config`` < flags < ``--set``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError
from genemi.evaluation.config import EvalConfig, ModelOptions
from genemi.manifest import check_writable_dir, write_atomic
from genemi.options import (Section, add_options, build, command_parser, given_values, option, resolve, setup_logging,
                            tool_parser)


def flag_for(section: str, option: str) -> str | None:
    """The flag that sets a data-config option (its own flag first, else a shared one), e.g.
    ``("sugarcrepe", "images")`` -> ``--coco-val2017``; None when only the data config can."""
    from genemi.evaluation.benchmarks import BENCHMARKS
    from genemi.evaluation.benchmarks.base import option_flags

    spec = BENCHMARKS.get(section)
    return option_flags(spec.options, option) if spec else None


def build_parser() -> argparse.ArgumentParser:
    from genemi.evaluation.benchmarks import BENCHMARKS, SHARED_FLAGS, shared_targets

    p = command_parser(
        "genemi eval",
        "Evaluate CLIP snapshots and baselines on compositional benchmarks (official metrics) and write one JSON per "
        "model plus CSV, Markdown and PNG summaries. Every flag is also a YAML key of --config (a benchmark's data "
        "under data.<benchmark>) and of --set. `genemi eval compare RESULTS` compares models already evaluated.\n\n"
        "Benchmarks:\n" + "\n".join(f"  {k}: {v.description}" for k, v in BENCHMARKS.items()), progress=True)
    add_options(p, ModelOptions, "models")
    add_options(p, EvalConfig, "benchmarks and execution", skip=[f.name for f in dataclasses.fields(ModelOptions)])
    group = p.add_argument_group("benchmark data (YAML section data.<benchmark>; declared by each benchmark)")
    for name, spec in BENCHMARKS.items():
        add_options(p, spec.options, dest=f"data__{name}", group=group)
    for flag, text in SHARED_FLAGS.items():
        targets = ", ".join(f"{b}.{k}" for b, k in shared_targets(flag))
        group.add_argument(flag, dest=_shared_dest(flag), default=None, metavar="DIR",
                           help=f"{text}: fills {targets} of each of these benchmarks whose data is given otherwise")
    return p


def _shared_dest(flag: str) -> str:
    return "shared__" + flag.lstrip("-").replace("-", "_")


def _merge(base: dict, update: dict) -> dict:
    from genemi.presets import merge_dicts

    return merge_dicts(base, update)


def _with_flags(args, data: dict) -> dict:
    """``data`` (one section per benchmark) with each benchmark's flags on top."""
    from genemi.evaluation.benchmarks import BENCHMARKS

    data = dict(data)
    for name, spec in BENCHMARKS.items():
        given = given_values(args, spec.options, f"data__{name}")
        if given:
            section = data.get(name) if isinstance(data.get(name), dict) else {}
            data[name] = _merge(section, given)
    return data


def _with_shared(args, data: dict) -> dict:
    """The shared flags (``--coco-val2017``...) fill their option of every benchmark whose data is given otherwise
    and does not set it; a shared flag none of whose benchmarks is configured is refused."""
    from genemi.evaluation.benchmarks import SHARED_FLAGS, shared_targets

    data = dict(data)
    for flag in SHARED_FLAGS:
        value = getattr(args, _shared_dest(flag), None)
        if value is None:
            continue
        targets = shared_targets(flag)
        if not any(data.get(bench) for bench, _ in targets):
            raise ConfigError(f"{flag} is given but none of {', '.join(b for b, _ in targets)} has its data "
                              "(pass their root flags or --data-config)")
        for bench, key in targets:
            if data.get(bench) and not data[bench].get(key):
                data[bench] = {**data[bench], key: value}
    return data


def data_config(args) -> dict[str, dict]:
    """The ``--data-config`` file (if any) with the per-benchmark and shared flags on top."""
    from genemi.presets import read_preset

    data = read_preset(args.data_config) if getattr(args, "data_config", None) else {}
    return _with_shared(args, _with_flags(args, data))


def resolve_config(args) -> EvalConfig:
    """Defaults < --config < --data-config < flags < --set; shared data flags last; validated."""
    from genemi.presets import parse_set_overrides, read_preset

    preset = read_preset(args.config) if args.config else {}
    data = preset.get("data") if isinstance(preset.get("data"), dict) else {}
    data_file = args.data_config or preset.get("data_config")
    if data_file:
        data = _merge(data, read_preset(data_file))
    values = _merge(preset, given_values(args, EvalConfig))
    values["data"] = _with_flags(args, data)
    values = _merge(values, parse_set_overrides(args.set))
    values["data"] = _with_shared(args, values.get("data") or {})
    return build(EvalConfig, values, args)


def _configured(data: dict) -> list[str]:
    from genemi.evaluation.benchmarks import BENCHMARKS

    return [name for name in BENCHMARKS if data.get(name)]


def run(cfg: EvalConfig, progress: bool = True) -> tuple[Path, list[str]]:
    """Evaluate every model; returns the output folder and the labels evaluated or found. Every input is checked
    before the first model loads, and nothing is written before the first result."""
    from tqdm import tqdm

    from genemi.distributed import DistEnv, resolve_device
    from genemi.evaluation.benchmarks import build_benchmarks
    from genemi.evaluation.runner import check_inputs, evaluate, pending, write_result
    from genemi.evaluation.scoring import ClipEmbedder, EmbeddingCache
    from genemi.evaluation.snapshots import collect_models
    from genemi.models.clip import create_clip

    data = cfg.data
    names = list(cfg.benchmarks) if cfg.benchmarks else _configured(data)
    if cfg.suite:
        from genemi.evaluation.suites import get_suite, suite_benchmarks

        names, absent = suite_benchmarks(get_suite(cfg.suite), names)
        if absent:
            print(f"genemi eval: note: suite {cfg.suite}: no data for {', '.join(absent)}; their columns stay "
                  "empty", file=sys.stderr)
    if not names:
        raise ConfigError("no benchmark data given: pass --data-config or the per-benchmark flags (see --help)")
    models = collect_models(cfg.snapshot_file, cfg.snapshot_folder, cfg.baseline)
    if not models:
        raise ConfigError("nothing to evaluate: pass --snapshot-file, --snapshot-folder or --baseline")
    if cfg.reference and cfg.reference not in [m.label for m in models]:
        raise ConfigError(f"--reference {cfg.reference!r} is not among the models: "
                          f"{', '.join(m.label for m in models)}")
    benchmarks = build_benchmarks(names, data, cfg.ties)
    check_inputs(benchmarks, flag_for)  # a benchmark without a single image file: stop before loading a model
    device = resolve_device(cfg.device, DistEnv.from_environ())
    output = Path(cfg.output_dir) / cfg.model_name
    check_writable_dir(output, "--output-dir")  # before any model is scored; created with the first result
    cache = EmbeddingCache(cfg.cache_dir) if cfg.cache_dir else None
    for model in tqdm(models, desc="models", unit="model", disable=not progress):
        todo = pending(output, model.label, benchmarks, cfg.force, cfg.save_item_scores)
        if not todo:
            print(f"{model.label}: already evaluated (use --force to redo)")
            continue
        bundle = create_clip(cfg.clip_model, model.pretrained, quick_gelu=cfg.quick_gelu)
        embedder = ClipEmbedder(bundle, device, cfg.batch_size, cfg.workers, cfg.precision, progress)
        results = evaluate(embedder, todo, cache, cfg.fail_on_missing, flag_for)
        weights = bundle.checkpoint.path if bundle.checkpoint is not None else None
        meta = {"label": model.label, "checkpoint": str(weights) if weights else None,
                "weights": "checkpoint" if model.pretrained else ("model folder" if weights else "random"),
                "epoch": model.epoch, "baseline": model.baseline, "clip_model": cfg.clip_model,
                "quick_gelu": bundle.quick_gelu, "quick_gelu_reason": bundle.quick_gelu_reason,
                "model_key": embedder.key, "device": str(device)}
        write_result(output, model.label, meta, results, benchmarks, cfg.save_item_scores)
        for res in results.values():
            speed = "" if res.images_per_s != res.images_per_s else f", {res.images_per_s:.1f} images/s"
            print(f"{model.label}: {res.name}: {res.evaluated} of {res.items} items{speed}, {res.ties} exact "
                  f"tie(s) with the best wrong option, {res.ties_any} with any ({res.tie_rule} rule)")
        for res in results.values():
            if res.missing_images:
                print(f"{model.label}: {res.name}: {res.missing_images} of {res.items} items skipped (unreadable "
                      f"images, e.g. {res.missing_examples[0]})", file=sys.stderr)
            for note in res.notes:
                if not note.startswith("wall time"):
                    print(f"{model.label}: {res.name}: {note}", file=sys.stderr)
        del bundle, embedder
    labels = [m.label for m in models]
    written = write_reports(output, labels, cfg.suite, cfg.reference)
    print(f"results: {output}/ (per-model JSON, {', '.join(written)})")
    return output, labels


def write_reports(output: Path, labels: list[str], suite: str | None = None, reference: str | None = None) -> list[str]:
    """Tables, plots, the suite table and (two or more models) the comparison; prints the main table."""
    from genemi.evaluation.comparison import compare, load_item_tables
    from genemi.evaluation.reports import load_results, markdown_table, write_csv, write_plots, write_rows_csv

    results = load_results(output, labels)
    if not results:
        raise ConfigError(f"no results for {', '.join(labels)} in {output}")
    write_csv(results, output / "results.csv")
    table = markdown_table(results)
    write_atomic(output / "results.md", table.encode("utf-8"))
    write_plots(results, output / "plots")
    written = ["results.csv", "results.md", "plots/"]
    print(table)
    if suite:
        from genemi.evaluation.suites import get_suite, suite_table

        summary = suite_table(get_suite(suite), results)
        write_atomic(output / f"suite_{suite}.md", summary.encode("utf-8"))
        written.append(f"suite_{suite}.md")
        print(summary)
    if len(results) >= 2:
        text, flips = compare(results, load_item_tables(output, [r["label"] for r in results]), reference)
        write_atomic(output / "comparison.md", text.encode("utf-8"))
        written.append("comparison.md")
        if flips:
            write_rows_csv(output / "flipped_items.csv", list(flips[0]), flips)
            written.append("flipped_items.csv")
    return written


def _suite_names() -> tuple[str, ...]:
    from genemi.evaluation.suites import SUITES

    return tuple(SUITES)


@dataclass
class CompareOptions(Section):
    """``genemi eval compare``'s options."""

    results: str | None = option(None, "folder with the per-model result JSONs (e.g. evaluation_results/genemi)",
                                 positional=True, required=True)
    models: str | None = option(None, "comma list of model labels, in table order", metavar="LABELS",
                                default_text="all")
    reference: str | None = option(None, "model to compare against", metavar="LABEL", default_text="first")
    suite: str | None = option(None, "also write this suite's summary table", choices=_suite_names())


def build_compare_parser() -> argparse.ArgumentParser:
    return tool_parser(
        "genemi eval compare",
        "Compare models already evaluated in one results folder (OUTPUT_DIR/MODEL_NAME of genemi eval): "
        "per-benchmark deltas against a reference model and the items that flipped (needs --save-item-scores "
        "tables); rewrites results.csv/.md, plots, comparison.md, flipped_items.csv and the suite table.",
        CompareOptions)


def _compare(args) -> list[str]:
    folder = Path(args.results)
    if not folder.is_dir():
        raise ConfigError(f"results folder not found: {folder}")
    import json

    def order(path: Path) -> tuple:
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
        if not isinstance(meta, dict) or not isinstance(meta.get("benchmarks"), dict) or "label" not in meta:
            return (2, 0, path.stem)  # not a genemi eval result
        epoch = meta.get("epoch")
        return (0 if meta.get("baseline") else 1, epoch if isinstance(epoch, int) else 1 << 30, path.stem)

    found = [stem for rank, *_, stem in sorted(order(f) for f in folder.glob("*.json")) if rank < 2]  # baselines first
    if not found:
        raise ConfigError(f"no genemi eval results (per-model JSON files) in {folder}")
    labels = [m.strip() for m in args.models.split(",")] if args.models else found
    unknown = [m for m in labels if m not in found]
    if unknown:
        raise ConfigError(f"no result JSON for {', '.join(unknown)} in {folder} (found: {', '.join(found) or 'none'})")
    return write_reports(folder, labels, args.suite, args.reference)


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import guarded, parse_command, run_tool

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        def compare(args):
            return _compare(resolve(CompareOptions, args))

        return run_tool("genemi eval compare", build_compare_parser(), argv[1:], compare,
                        lambda written: print(f"written: {', '.join(written)}"))
    args = parse_command(build_parser(), argv)
    if isinstance(args, int):
        return args

    def action():
        setup_logging(args)
        cfg = resolve_config(args)
        if cfg.hf_auth_token:
            print("genemi eval: note: --hf-auth-token is ignored (benchmarks are read from local files; nothing is "
                  "downloaded)", file=sys.stderr)
        return run(cfg, progress=args.progress)

    return guarded("genemi eval", "rerun to continue (finished models are kept)", action)[0]


if __name__ == "__main__":
    raise SystemExit(main())
