"""``genemi eval`` / ``python -m genemi.evaluation.eval_autogmentation``: every benchmark, every snapshot.

Keeps the original GeNeMi flags (``--model-name --snapshot_file --snapshot_folder --evaluation-filepath
--evaluation-image-folder --force``) and adds the compositional benchmarks, baselines, caching and reports.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from genemi.cli import HelpFormatter
from genemi.errors import ConfigError
from genemi.manifest import require_writable_dir, write_atomic

#: flag dest -> (benchmark, option path inside its data section)
DATA_FLAGS = {
    "sugarcrepe_root": ("sugarcrepe", "root"),
    "sugarcrepe_pp_root": ("sugarcrepe_pp", "root"),
    "aro_root": ("aro", "root"), "aro_images": ("aro", "images"),
    "coco_order_annotations": ("aro", "coco_order.annotations"), "coco_order_images": ("aro", "coco_order.images"),
    "flickr_order_annotations": ("aro", "flickr_order.annotations"),
    "flickr_order_images": ("aro", "flickr_order.images"), "order_seeds": ("aro", "seeds"),
    "aro_order_protocol": ("aro", "order_protocol"), "aro_python_random_skip": ("aro", "python_random_skip"),
    "coco_order_options": ("aro", "coco_order.options_file"),
    "flickr_order_options": ("aro", "flickr_order.options_file"),
    "coco_order_write_options": ("aro", "coco_order.write_options"),
    "flickr_order_write_options": ("aro", "flickr_order.write_options"),
    "valse_root": ("valse", "root"), "valse_images": ("valse", "images"),
    "vl_checklist_root": ("vl_checklist", "root"), "vl_checklist_images": ("vl_checklist", "images"),
    "winoground_root": ("winoground", "root"),
    "evaluation_filepath": ("genemi_testset", "path"), "evaluation_image_folder": ("genemi_testset", "images"),
    "retrieval_annotations": ("retrieval", "annotations"), "retrieval_images": ("retrieval", "images"),
    "zeroshot_root": ("zeroshot", "root"), "zeroshot_classnames": ("zeroshot", "classnames"),
    "zeroshot_templates": ("zeroshot", "templates"),
    "whatsup_root": ("whatsup", "root"), "whatsup_coco_images": ("whatsup", "coco_images"),
    "whatsup_vg_images": ("whatsup", "vg_images"), "whatsup_subsets": ("whatsup", "subsets"),
    "crepe_prod_root": ("crepe_productivity", "root"), "crepe_syst_root": ("crepe_systematicity", "root"),
    "crepe_pretraining": ("crepe_systematicity", "pretraining"),
    "spec_root": ("spec", "root"),
    "colorswap_root": ("colorswap", "root"), "colorswap_split": ("colorswap", "split"),
}  # fmt: skip

#: flags that fill one option of every listed benchmark whose data is given otherwise (never configure one alone)
SHARED_DATA_FLAGS = {
    "coco_val2017": (("sugarcrepe", "images"), ("sugarcrepe_pp", "images"), ("whatsup", "coco_images")),
    "crepe_images": (("crepe_productivity", "images"), ("crepe_systematicity", "images")),
    "embedded_image_cache": (("winoground", "image_cache"), ("colorswap", "image_cache")),
}


def flag_for(section: str, option: str) -> str | None:
    """The flag that sets a data-config option (its own flag first, else a shared one), e.g.
    ``("sugarcrepe", "images")`` -> ``--coco-val2017``; None when only the data config can."""
    for dest, target in DATA_FLAGS.items():
        if target == (section, option):
            return "--" + dest.replace("_", "-")
    for dest, targets in SHARED_DATA_FLAGS.items():
        if (section, option) in targets:
            return "--" + dest.replace("_", "-")
    return None


def seed_list(text: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2] (an argparse type)."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from genemi.evaluation.benchmarks import BENCHMARKS
    from genemi.evaluation.item_scores import FORMATS
    from genemi.evaluation.suites import SUITES

    p = argparse.ArgumentParser(
        prog="genemi eval",
        description="Evaluate CLIP snapshots and baselines on compositional benchmarks (official metrics) and "
        "write one JSON per model plus CSV, Markdown and PNG summaries. Benchmarks: "
        + "; ".join(f"{k}: {v[1]}" for k, v in BENCHMARKS.items()),
        formatter_class=HelpFormatter,
    )
    m = p.add_argument_group("models")
    m.add_argument("--model-name", "--model_name", default="genemi", help="run name: results go to OUTPUT_DIR/MODEL_NAME/")
    m.add_argument("--snapshot_file", "--snapshot-file", action="append", default=[], metavar="PATH",
                   help="a checkpoint to evaluate (repeatable); any format genemi reads")
    m.add_argument("--snapshot_folder", "--snapshot-folder", default=None,
                   help="evaluate every *.pt/*.pth/*.bin/*.safetensors in it, in epoch order (model_3.pt, epoch_10.pt)")
    m.add_argument("--baseline", action="append", default=[], metavar="NAME=PATH",
                   help="a reference model, e.g. openai=/ckpt/ViT-B-32.pt (repeatable). NAME= (no path) evaluates "
                   "the architecture's own weights: random for an open_clip name, the folder's weights for "
                   "--clip-model local-dir:FOLDER")
    m.add_argument("--clip-model", default="ViT-B/32", help="architecture: open_clip name, OpenAI name or config JSON")
    m.add_argument("--quick-gelu", choices=("auto", "on", "off"), default="auto",
                   help="activation; auto decides from the weights (OpenAI-derived weights need QuickGELU)")
    m.add_argument("--force", action="store_true", help="re-evaluate models whose results already exist")

    b = p.add_argument_group("benchmarks and data")
    b.add_argument("--benchmarks", default=None,
                   help=f"comma list from {', '.join(BENCHMARKS)} (default: every benchmark with data configured)")
    b.add_argument("--suite", choices=tuple(SUITES), default=None,
                   help="a benchmark set and its summary table (suite_<name>.md): "
                   + "; ".join(f"{k}: {v.description}" for k, v in SUITES.items()))
    b.add_argument("--ties", choices=("official", "strict", "first"), default="official",
                   help="exact ties between the right and a wrong option: decided as each benchmark's official "
                   "scorer does (official), always counted wrong (strict), or won by the option listed first, "
                   "numpy argmax's way, as CLIP_benchmark scores Winoground (first); the tie count is in the results")
    b.add_argument("--data-config", default=None, help="YAML with one section of paths per benchmark (configs/eval/)")
    b.add_argument("--sugarcrepe-root", help="folder with SugarCrepe's 7 JSON files")
    b.add_argument("--coco-val2017", help="COCO val2017 images (SugarCrepe, SugarCrepe++, What'sUp COCO-spatial)")
    b.add_argument("--sugarcrepe-pp-root",
                   help="SugarCrepe++: Sri-Harsha/scpp data/ or the Aman-J/SugarCrepe_pp copy (JSON or Parquet)")
    b.add_argument("--aro-root", help="folder with visual_genome_relation.json, visual_genome_attribution.json, images/")
    b.add_argument("--aro-images", help="VG images for ARO (default ARO_ROOT/images)")
    b.add_argument("--coco-order-annotations", help="COCO Karpathy test JSON for COCO-Order")
    b.add_argument("--coco-order-images", help="COCO 2014 image root for COCO-Order")
    b.add_argument("--flickr-order-annotations", help="Flickr30k Karpathy test JSON for Flickr-Order")
    b.add_argument("--flickr-order-images", help="Flickr30k image root")
    b.add_argument("--order-seeds", type=seed_list, default=None,
                   help="seeds of the COCO/Flickr-Order perturbations (default 0,1,2,3,4)")
    b.add_argument("--aro-order-protocol", choices=("official", "strict"), default=None,
                   help="COCO/Flickr-Order caption options: ARO's own (official, default: its perturbations of the "
                   "raw caption, which may repeat it) or genemi's variant that never offers the true caption twice "
                   "(strict)")
    b.add_argument("--aro-python-random-skip", type=int, default=None, metavar="N",
                   help="COCO/Flickr-Order official protocol: discard N words of Python's random stream before the "
                   "first caption (default 0, a plain reading of ARO's code). Use 1 to reproduce a run of ARO's own "
                   "code where `import spacy` imports rich, which draws once from random (docs/benchmark_data.md)")
    b.add_argument("--coco-order-options", metavar="FILE",
                   help="fixed COCO-Order options (JSONL written by --coco-order-write-options), so models are "
                   "compared on identical options; the annotations are then not read")
    b.add_argument("--flickr-order-options", metavar="FILE", help="fixed Flickr-Order options (see --coco-order-options)")
    b.add_argument("--coco-order-write-options", metavar="FILE", help="write the generated COCO-Order options here")
    b.add_argument("--flickr-order-write-options", metavar="FILE", help="write the generated Flickr-Order options here")
    b.add_argument("--valse-root", help="VALSE data/ folder (existence.json, ...)")
    b.add_argument("--valse-images",
                   help="one VALSE image root with the CLIP script's layout (visual7w/, coco/2017/val2017/, "
                   "coco/2014/{train,val}2014/, SWiG/, VisualDialog_val2018/), or a flat folder; per source or "
                   "instrument: --data-config. COCO_val2014_/COCO_train2014_ files are redirected by name")
    b.add_argument("--vl-checklist-root", help="VL-CheckList repository (corpus/v1/*.yaml + data/)")
    b.add_argument("--vl-checklist-images", help="root the configs' IMG_ROOT paths are relative to")
    b.add_argument("--winoground-root",
                   help="local facebook/winoground copy: examples.jsonl + images/, or the hub's data/test-*.parquet")
    b.add_argument("--whatsup-root", help="What'sUp: the authors' data/ folder (controlled_*.json, coco_qa_*.json, "
                   "vg_qa_*.json, controlled_images/, controlled_clevr/)")
    b.add_argument("--whatsup-coco-images", help="COCO val2017 for What'sUp COCO-spatial (default: --coco-val2017, "
                   "else WHATSUP_ROOT/val2017)")
    b.add_argument("--whatsup-vg-images", help="Visual Genome images for GQA-spatial (default WHATSUP_ROOT/vg_images)")
    b.add_argument("--whatsup-subsets", help="comma list of What'sUp sets (default: every set whose file exists)")
    b.add_argument("--crepe-prod-root", help="CREPE productivity: the unzipped prod_hard_negatives/ (atom/ swap/ negate/)")
    b.add_argument("--crepe-syst-root", help="CREPE systematicity: the unzipped syst_hard_negatives/")
    b.add_argument("--crepe-pretraining", help="CREPE systematicity split(s): cc12m, yfcc, laion (comma list); only "
                   "meaningful for models pretrained on that data")
    b.add_argument("--crepe-images", help="Visual Genome folder holding VG_100K/ and VG_100K_2/ (both CREPE tasks)")
    b.add_argument("--spec-root", help="SPEC: the folder holding the six subset folders (image2text.json, text2image.json)")
    b.add_argument("--colorswap-root", help="ColorSwap: hub snapshot folder, one .parquet file, or test.json + images/")
    b.add_argument("--colorswap-split", choices=("test", "train", "all"), default=None,
                   help="ColorSwap split (default test)")
    b.add_argument("--embedded-image-cache", help="where images embedded in Parquet files (Winoground, ColorSwap) are "
                   "extracted once (default $GENEMI_CACHE/embedded_images)")
    b.add_argument("--evaluation-filepath", help="GeNeMi test set (JSON/JSONL rows) or a genemi variation manifest")
    b.add_argument("--evaluation-image-folder", help="images of --evaluation-filepath")
    b.add_argument("--retrieval-annotations", help="Karpathy test JSON (COCO 5k / Flickr30k 1k) for retrieval")
    b.add_argument("--retrieval-images", help="image root for retrieval")
    b.add_argument("--zeroshot-root", help="ImageFolder for zero-shot classification (e.g. ImageNet val)")
    b.add_argument("--zeroshot-classnames", help="class names file, one per line, in folder order")
    b.add_argument("--zeroshot-templates", choices=("openai", "simple"), default=None, help="prompt templates")

    r = p.add_argument_group("execution and output")
    r.add_argument("--output-dir", "--output", "--save-path", dest="output", default="evaluation_results",
                   help="output folder (results go to OUTPUT_DIR/MODEL_NAME/)")
    r.add_argument("--hf-auth-token", "--auth-token", dest="hf_auth_token", default=None,
                   help="accepted for the original's scripts and ignored: genemi reads Winoground from local files "
                   "(--winoground-root) and never contacts the hub")
    r.add_argument("--batch-size", type=int, default=256, help="images/texts per forward pass")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available)")
    r.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                   help="autocast precision (auto: bf16 on CUDA, fp32 on CPU)")
    r.add_argument("--workers", type=int, default=None,
                   help="image loading processes (default by device: 0 on CPU, where images are decoded between "
                   "forward passes; one per spare core, at most 8, on CUDA). On CPU genemi also runs torch with as many "
                   "threads as cores are idle when embedding starts, unless OMP_NUM_THREADS is set (docs/performance.md)")
    r.add_argument("--cache-dir", default=None, help="embedding cache folder (keyed by model and benchmark file hashes)")
    r.add_argument("--save-item-scores", nargs="?", const="csv", choices=FORMATS, default=None, metavar="FORMAT",
                   help="also write one row per item and benchmark (every option's score, decision, tie) to "
                   "OUTPUT_DIR/MODEL_NAME/<model>/items/<benchmark>.csv, or .parquet with FORMAT=parquet")
    r.add_argument("--reference", default=None, metavar="LABEL",
                   help="model the comparison (comparison.md, written when two or more models are evaluated) is "
                   "measured against (default: the first model)")
    r.add_argument("--fail-on-missing", action="store_true", help="error out if any benchmark image is unreadable")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def _set(data: dict, bench: str, dotted: str, value: Any) -> None:
    section = data.setdefault(bench, {})
    *parents, leaf = dotted.split(".")
    for key in parents:
        section = section.setdefault(key, {})
    section[leaf] = value


def data_config(args) -> dict[str, dict]:
    """The YAML data config (if any) with the per-benchmark flags on top."""
    from genemi.presets import read_preset

    data = read_preset(args.data_config) if args.data_config else {}
    for dest, (bench, key) in DATA_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            _set(data, bench, key, value)
    for dest, targets in SHARED_DATA_FLAGS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        used = [bench for bench, key in targets if data.get(bench) and not data[bench].get(key)]
        for bench, key in targets:
            if bench in used:
                _set(data, bench, key, value)
        if not any(data.get(bench) for bench, _ in targets):
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag} is given but none of {', '.join(b for b, _ in targets)} has its data "
                              "(pass their root flags or --data-config)")
    return data


def _configured(data: dict) -> list[str]:
    from genemi.evaluation.benchmarks import BENCHMARKS

    return [name for name in BENCHMARKS if data.get(name)]


def run(args) -> tuple[Path, list[str]]:
    """Evaluate every model; returns the output folder and the labels evaluated or found."""
    from tqdm import tqdm

    from genemi.distributed import DistEnv, resolve_device
    from genemi.evaluation.benchmarks import build_benchmarks
    from genemi.evaluation.runner import check_inputs, evaluate, pending, write_result
    from genemi.evaluation.scoring import ClipEmbedder, EmbeddingCache
    from genemi.evaluation.snapshots import collect_models
    from genemi.models.clip import create_clip

    data = data_config(args)
    names = [n.strip() for n in args.benchmarks.split(",")] if args.benchmarks else _configured(data)
    if args.suite:
        from genemi.evaluation.suites import get_suite, suite_benchmarks

        names, absent = suite_benchmarks(get_suite(args.suite), names)
        if absent:
            print(f"genemi eval: note: suite {args.suite}: no data for {', '.join(absent)}; their columns stay "
                  "empty", file=sys.stderr)
    if not names:
        raise ConfigError("no benchmark data given: pass --data-config or the per-benchmark flags (see --help)")
    models = collect_models(args.snapshot_file, args.snapshot_folder, args.baseline)
    if not models:
        raise ConfigError("nothing to evaluate: pass --snapshot_file, --snapshot_folder or --baseline")
    if args.reference and args.reference not in [m.label for m in models]:
        raise ConfigError(f"--reference {args.reference!r} is not among the models: "
                          f"{', '.join(m.label for m in models)}")
    benchmarks = build_benchmarks(names, data, args.ties)
    check_inputs(benchmarks, flag_for)  # a benchmark without a single image file: stop before loading a model
    device = resolve_device(args.device, DistEnv.from_environ())
    output = Path(args.output) / args.model_name
    require_writable_dir(output, "--output")  # before any model is scored
    cache = EmbeddingCache(args.cache_dir) if args.cache_dir else None
    quick_gelu = {"auto": None, "on": True, "off": False}[args.quick_gelu]
    for model in tqdm(models, desc="models", unit="model", disable=args.no_progress):
        todo = pending(output, model.label, benchmarks, args.force, args.save_item_scores)
        if not todo:
            print(f"{model.label}: already evaluated (use --force to redo)")
            continue
        bundle = create_clip(args.clip_model, model.pretrained, quick_gelu=quick_gelu)
        embedder = ClipEmbedder(bundle, device, args.batch_size, args.workers, args.precision, not args.no_progress)
        results = evaluate(embedder, todo, cache, args.fail_on_missing, flag_for)
        weights = bundle.checkpoint.path if bundle.checkpoint is not None else None
        meta = {"label": model.label, "checkpoint": str(weights) if weights else None,
                "weights": "checkpoint" if model.pretrained else ("model folder" if weights else "random"),
                "epoch": model.epoch, "baseline": model.baseline, "clip_model": args.clip_model,
                "quick_gelu": bundle.quick_gelu, "quick_gelu_reason": bundle.quick_gelu_reason,
                "model_key": embedder.key, "device": str(device)}
        write_result(output, model.label, meta, results, benchmarks, args.save_item_scores)
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
    written = write_reports(output, labels, args.suite, args.reference)
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


def build_compare_parser() -> argparse.ArgumentParser:
    from genemi.evaluation.suites import SUITES

    p = argparse.ArgumentParser(
        prog="genemi eval compare",
        description="Compare models already evaluated in one results folder (OUTPUT_DIR/MODEL_NAME of genemi eval): "
        "per-benchmark deltas against a reference model and the items that flipped (needs --save-item-scores "
        "tables); rewrites results.csv/.md, plots, comparison.md, flipped_items.csv and the suite table.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("results", help="folder with the per-model result JSONs (e.g. evaluation_results/genemi)")
    p.add_argument("--models", default=None, help="comma list of model labels, in table order (default: all)")
    p.add_argument("--reference", default=None, metavar="LABEL", help="model to compare against (default: first)")
    p.add_argument("--suite", choices=tuple(SUITES), default=None, help="also write this suite's summary table")
    return p


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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        from genemi.cli import run_tool

        return run_tool("genemi eval compare", build_compare_parser(), argv[1:], _compare,
                        lambda written: print(f"written: {', '.join(written)}"))
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from genemi.cli import guarded

    if args.hf_auth_token:
        print("genemi eval: note: --hf-auth-token is ignored (benchmarks are read from local files; nothing is "
              "downloaded)", file=sys.stderr)
    return guarded("genemi eval", "rerun to continue (finished models are kept)", lambda: run(args))[0]


if __name__ == "__main__":
    raise SystemExit(main())
