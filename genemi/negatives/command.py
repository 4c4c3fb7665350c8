"""``genemi negatives``: captions in, typed hard-negative JSONL out.

Options are declared once: what shapes the negatives in :class:`~genemi.negatives.generator.NegativesConfig`
(the presets in ``configs/negatives/``), the files and the run in :class:`NegativesJob` below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

from genemi.caption_files import CAPTION_FORMATS
from genemi.negatives.generator import NegativesConfig
from genemi.options import add_options, build, command_parser, gather, option, setup_logging


@dataclass
class NegativesJob(NegativesConfig):
    """The command's options: the generation settings plus the files and how the run is cut."""

    input: str | None = option(None, "caption file (Karpathy JSON, COCO captions JSON, JSONL, CSV/TSV)",
                               aliases=("--annotation-file",), metavar="FILE")
    output: str | None = option(None, "JSONL to write (appended to and resumed if it exists)", metavar="FILE")
    format: str = option("auto", "input format", choices=CAPTION_FORMATS)
    csv_img_key: str = option("filepath", "CSV column with the image path")
    csv_caption_key: str = option("title", "CSV column with the caption")
    csv_separator: str | None = option(None, "CSV separator", default_text="',' or tab for .tsv")
    limit: int | None = option(None, "only the first N captions", at_least=1, metavar="N")
    encoding: str = option("utf-8", "text encoding of --input (e.g. latin-1, cp1252)")
    force: bool = option(False, "start over: remove --output (and its summary and settings record) first")
    allow_changed_settings: bool = option(False, "append to an --output written with other settings (recorded in "
                                          "<output>.settings.json); without it such a rerun stops and names the "
                                          "differences")
    from_ceclip_npy: list[str] | None = option(None, "convert the original CE-CLIP processed_dataset*.npy files (or a "
                                               "folder) instead of generating", metavar="PATH", nargs="+")
    trust_pickle: bool = option(False, "allow loading CE-CLIP .npy files, which are pickles (they can run code: "
                                "only for files you trust)")
    image_template: str = option("train2014/COCO_train2014_{image_id:012d}.jpg", "image path of a converted CE-CLIP "
                                 "record, formatted with its image_id")
    workers: int = option(1, "processes (each loads spaCy and any models)", at_least=1)
    chunk_size: int = option(512, "captions per chunk (unit of work and of writing)", at_least=1)

    def generation(self) -> NegativesConfig:
        """The settings that shape the records (what ``<output>.settings.json`` records)."""
        names = {f.name for f in dataclasses.fields(NegativesConfig)}
        return NegativesConfig(**{k: v for k, v in vars(self).items() if k in names})


def build_parser():
    p = command_parser("genemi negatives", "Generate typed text hard negatives (CE-CLIP / NegCLIP / SugarCrepe "
                       "edits) from captions. Output: JSONL of {id, image, caption, image_id, negatives: [{type, "
                       "text, valid, reason}]}, one negative per selected type (invalid ones keep their slot), "
                       "readable by `genemi train --dataset-type text_negatives`. Every flag is also a YAML key of "
                       "--config (configs/negatives/*.yaml) and of --set.", progress=True)
    generation = [f.name for f in dataclasses.fields(NegativesConfig)]
    add_options(p, NegativesJob, "input, output and execution", skip=generation)
    add_options(p, NegativesConfig, "generation (recorded in <output>.settings.json)")
    return p


def resolve_config(args) -> NegativesJob:
    """Defaults < --config preset < flags < --set; --sources corpus reads the vocabulary of --input."""
    from genemi.errors import ConfigError

    values = gather(NegativesJob, args)
    sources = values.get("sources") or NegativesConfig.__dataclass_fields__["sources"].default
    if "corpus" in sources and not values.get("corpus_file"):
        values["corpus_file"] = values.get("input")  # --sources corpus: the vocabulary of the captions file itself
    job = build(NegativesJob, values, args)
    if not job.output:
        raise ConfigError("--output is required: the JSONL file to write")
    if not job.input and not job.from_ceclip_npy:
        raise ConfigError("--input is required (the caption file), or --from-ceclip-npy to convert CE-CLIP files")
    return job


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


def _convert(job: NegativesJob) -> None:
    from genemi.manifest import ManifestWriter, done_ids, require_writable_file
    from genemi.negatives.legacy import read_ceclip_npy

    records = read_ceclip_npy(job.from_ceclip_npy, job.trust_pickle, job.image_template)
    output = require_writable_file(job.output, "--output")
    done = done_ids(output)
    with ManifestWriter(output) as writer:
        n = writer.write(r for r in records if r.id not in done)
    print(f"converted {len(records)} CE-CLIP records ({n} new) to {job.output}")


def _generate(job: NegativesJob, progress: bool):
    from genemi.caption_files import read_caption_entries
    from genemi.negatives.run import generate_negatives

    cfg = job.generation()
    entries = read_caption_entries(job.input, job.format, job.csv_img_key, job.csv_caption_key, job.csv_separator,
                                   encoding=job.encoding)
    summary = generate_negatives(entries, job.output, cfg, limit=job.limit, workers=job.workers,
                                 chunk_size=job.chunk_size, progress=progress, force=job.force,
                                 allow_changed_settings=job.allow_changed_settings)
    return summary, cfg


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import guarded, parse_command

    args = parse_command(build_parser(), argv)
    if isinstance(args, int):
        return args

    def run():
        setup_logging(args)
        job = resolve_config(args)
        if job.from_ceclip_npy:
            return _convert(job)
        return _generate(job, args.progress)

    code, done = guarded("genemi negatives", "rerun the same command to continue", run)
    if code or done is None:
        return code
    summary, cfg = done
    _print_summary(summary, cfg.types)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
