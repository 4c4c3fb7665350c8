"""``genemi negatives``: captions in, typed hard-negative JSONL out."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from genemi.cli import HelpFormatter
from genemi.caption_files import CAPTION_FORMATS
from genemi.negatives.edits import EDIT_TYPES, TYPE_SETS
from genemi.negatives.sources import SOURCE_NAMES


def _list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genemi negatives",
        description="Generate typed text hard negatives (CE-CLIP / NegCLIP / SugarCrepe edits) from captions. "
        "Output: JSONL of {id, image, caption, image_id, negatives: [{type, text, valid, reason}]}, one negative "
        "per selected type (invalid ones keep their slot), readable by `genemi train --dataset-type text_negatives`.",
        formatter_class=HelpFormatter,
    )
    io = p.add_argument_group("input / output")
    io.add_argument("--input", "--annotation-file", dest="input", help="caption file (Karpathy JSON, COCO captions JSON, JSONL, CSV/TSV)")
    io.add_argument("--output", required=True, help="JSONL to write (appended to and resumed if it exists)")
    io.add_argument("--format", default="auto", choices=CAPTION_FORMATS, help="input format")
    io.add_argument("--csv-img-key", default="filepath", help="CSV column with the image path")
    io.add_argument("--csv-caption-key", default="title", help="CSV column with the caption")
    io.add_argument("--csv-separator", default=None, help="CSV separator (default: ',' or tab for .tsv)")
    io.add_argument("--limit", type=int, default=None, help="only the first N captions")
    io.add_argument("--encoding", default="utf-8", help="text encoding of --input (e.g. latin-1, cp1252)")
    io.add_argument("--force", action="store_true",
                    help="start over: remove --output (and its summary and settings record) first")
    io.add_argument("--allow-changed-settings", action="store_true",
                    help="append to an --output written with other settings (recorded in <output>.settings.json); "
                    "without it such a rerun stops and names the differences")
    io.add_argument("--from-ceclip-npy", nargs="+", metavar="PATH", default=None,
                    help="convert the original CE-CLIP processed_dataset*.npy files (or a folder) instead of generating")
    io.add_argument("--trust-pickle", action="store_true",
                    help="allow loading CE-CLIP .npy files, which are pickles (UNSAFE: they can run code)")
    io.add_argument("--image-template", default="train2014/COCO_train2014_{image_id:012d}.jpg",
                    help="image path of a converted CE-CLIP record, formatted with its image_id")

    gen = p.add_argument_group("generation")
    gen.add_argument("--config", default=None, help="YAML preset (e.g. configs/negatives/ceclip.yaml); flags override it")
    gen.add_argument("--types", type=_list, default=None,
                     help=f"comma list of types and/or sets. Types: {', '.join(EDIT_TYPES)}. "
                     f"Sets: {', '.join(f'{k} ({len(v)})' for k, v in TYPE_SETS.items())}. Default: all")
    gen.add_argument("--sources", type=_list, default=None,
                     help=f"replacement sources tried in order, from {', '.join(SOURCE_NAMES)} (default vocabulary,wordnet)")
    gen.add_argument("--pick", choices=("random", "first", "original"), default=None,
                     help="which acceptable candidate to use: random, best ranked, or the 4th ranked as CE-CLIP (default random)")
    gen.add_argument("--mlm-model", default=None, help="local masked-LM folder for --sources mlm (e.g. distilroberta-base)")
    gen.add_argument("--mlm-top-k", type=int, default=None, help="masked-LM fills considered per slot (default 5)")
    gen.add_argument("--seed", type=int, default=None, help="random seed (default 0); output depends only on seed and caption ids")

    flu = p.add_argument_group("fluency guard")
    flu.add_argument("--fluency-model", default=None, help="local masked or causal LM folder; turns the guard on")
    flu.add_argument("--no-fluency", action="store_true", help="keep the model for --sources mlm but skip the guard")
    flu.add_argument("--fluency-margin", type=float, default=None,
                     help="invalidate negatives scoring more than this many nats/token below the caption (default 1.0)")
    flu.add_argument("--fluency-types", type=_list, default=None,
                     help="types the guard checks (default: all but the word-order shuffles, which are meant to be disfluent)")

    run = p.add_argument_group("execution")
    run.add_argument("--workers", type=int, default=1, help="processes (each loads spaCy and any models)")
    run.add_argument("--chunk-size", type=int, default=512, help="captions per chunk (unit of work and of writing)")
    run.add_argument("--device", default=None, help="device of the masked/causal LMs (cpu, cuda, cuda:1)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    return p


def _config(args):
    from genemi.negatives.generator import NegativesConfig
    from genemi.presets import load_config

    overrides = {
        "types": args.types, "sources": args.sources, "pick": args.pick, "mlm_model": args.mlm_model,
        "mlm_top_k": args.mlm_top_k, "fluency_model": args.fluency_model, "fluency_margin": args.fluency_margin,
        "fluency_types": args.fluency_types, "seed": args.seed, "device": args.device,
        "fluency": False if args.no_fluency else None,
    }  # fmt: skip
    return load_config(NegativesConfig, args.config, overrides)


def _print_summary(summary, types) -> None:
    speed = summary.captions_per_second
    rate = "nothing to do" if not summary.written else "too fast to time" if speed is None else f"{speed:.0f} captions/s"
    print(f"wrote {summary.written} records to {summary.output} in {summary.seconds:.1f}s "
          f"({rate}, {summary.workers} worker(s)); "
          f"{summary.already_done} already done, {summary.stats.get('non_english', 0)} not English")
    per_type = summary.stats.get("per_type", {})
    if per_type:
        width = max(map(len, per_type))
        print(f"  {'type'.ljust(width)}  {'valid':>8}  {'invalid':>8}  {'fluency-dropped':>15}")
        for t in types:
            c = per_type[t]
            print(f"  {t.ljust(width)}  {c['valid']:>8}  {c['invalid']:>8}  {c['fluency_dropped']:>15}")


def _convert(args) -> None:
    from genemi.negatives.legacy import read_ceclip_npy
    from genemi.manifest import ManifestWriter, done_ids

    records = read_ceclip_npy(args.from_ceclip_npy, args.trust_pickle, args.image_template)
    done = done_ids(args.output)
    with ManifestWriter(args.output) as writer:
        n = writer.write(r for r in records if r.id not in done)
    print(f"converted {len(records)} CE-CLIP records ({n} new) to {args.output}")


def _generate(args):
    from genemi.caption_files import read_caption_entries
    from genemi.negatives.run import generate_negatives

    cfg = _config(args)
    if "corpus" in cfg.sources and cfg.corpus_file is None:
        cfg.corpus_file = str(args.input)  # --sources corpus: the vocabulary of the captions file itself
    entries = read_caption_entries(args.input, args.format, args.csv_img_key, args.csv_caption_key, args.csv_separator,
                                   encoding=args.encoding)
    summary = generate_negatives(entries, args.output, cfg, limit=args.limit, workers=args.workers,
                                 chunk_size=args.chunk_size, progress=not args.no_progress, force=args.force,
                                 allow_changed_settings=args.allow_changed_settings)
    return summary, cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from genemi.cli import guarded

    if args.from_ceclip_npy:
        return guarded("genemi negatives", "rerun to continue", lambda: _convert(args))[0]
    if not args.input:
        print("genemi negatives: error: --input is required (or --from-ceclip-npy)", file=sys.stderr)
        return 2
    code, done = guarded("genemi negatives", "rerun the same command to continue", lambda: _generate(args))
    if code:
        return code
    summary, cfg = done
    _print_summary(summary, cfg.types)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
