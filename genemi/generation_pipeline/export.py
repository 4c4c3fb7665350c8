"""``genemi generate export``: a finished run's painted, scored variations as a training set.

Reads ``<output-dir>/scores.jsonl`` (one line per image: items -> variations with ITM, CLIPScore and IVA),
keeps every painted ``ok`` variation whose mean BLIP ITM logit is > ``--min-itm`` (default 0.0, the original
trainer's) and whose IVA in ``--iva-scope`` (default image, the original's definition) is > ``--min-iva``
(default 2.25, measured: see :mod:`genemi.score_filters`) and writes, under
``<output-dir>/export/`` (``--export-dir``):

* ``dataset.jsonl``: one :class:`~genemi.records.VariationRecord` per line
  (``genemi train --dataset-type variations --dataset dataset.jsonl --image-root <output-dir>``);
* ``variation_annotation.json``: the original GeNeMi JSON list, exactly its keys
  (:data:`~genemi.records.LEGACY_VARIATION_KEYS`);
* ``dataset.csv``: open_clip CSV, tab separated, columns ``filepath`` and ``title``, one row per caption,
  ``filepath`` relative to the output folder
  (``--dataset-type csv --csv-img-key filepath --csv-caption-key title --image-root <output-dir>``);
* ``wds/shard-000000.tar ...``: WebDataset shards (``--shard-size`` samples each), per sample the variation
  image's own bytes (``jpg``/``png``/``webp``), ``txt`` (its first caption) and ``json`` with its id, item,
  short label, source image, captions, scores and typed hard ``negatives``: the captions of the item's sibling
  variations (``sibling``) and the source image's own captions (``source``: they describe the unedited image).

Records are sorted by variation id; every file is written to a temporary name and renamed (the shards into a
temporary folder renamed at the end), so a rerun replaces the export with byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from genemi.errors import ConfigError, ManifestError
from genemi.options import Section, option, resolve, tool_parser
from genemi.generation_pipeline.dataset_files import image_payload, json_bytes, write_jsonl, write_shards, write_tsv
from genemi.generation_pipeline.registry import stage_spec
from genemi.generation_pipeline.runs import run_folder
from genemi.records import LEGACY_VARIATION_KEYS, PlannedItem, PlannedVariation, VariationPlan, VariationRecord
from genemi.score_filters import (DEFAULT_IVA_SCOPE, DEFAULT_MIN_ITM, DEFAULT_MIN_IVA, IVA_SCOPES, iva_of, passes,
                                  threshold_arg)

#: export formats, in the order they are written
FORMATS = ("jsonl", "legacy", "csv", "webdataset")
#: why a variation is not exported, in the order the checks run
DROP_REASONS = ("failed", "not_painted", "no_captions", "low_itm", "low_iva", "missing_image")
#: the trainer's defaults (genemi.training.config.DataConfig), which reproduce the original
DEFAULT_SHARD_SIZE = 1000

FILE_NAMES = {"jsonl": "dataset.jsonl", "legacy": "variation_annotation.json", "csv": "dataset.csv",
              "webdataset": "wds"}  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """One planned variation with its image record and item."""

    plan: VariationPlan
    item: PlannedItem
    var: PlannedVariation


# --- reading --------------------------------------------------------------------------------------------


def _shard_hint(root: Path) -> str:
    if (root / "shards").is_dir():
        return f" (shard outputs found under {root / 'shards'}: run `genemi generate merge --output-dir {root}` first)"
    return ""


def scored_manifest(output_dir: str | Path, allow_unscored: bool = False) -> Path:
    """``scores.jsonl`` of a run, or (``allow_unscored``) ``variations.jsonl`` when it was not scored."""
    root = run_folder(output_dir)
    scores = root / stage_spec("score").writes
    if scores.is_file():
        return scores
    painted = root / stage_spec("inpaint").writes
    if allow_unscored and painted.is_file():
        return painted
    if allow_unscored:
        raise ConfigError(f"neither {scores} nor {painted} exists: run the pipeline through "
                          f"`--stages inpaint` (and `score`) first{_shard_hint(root)}")
    raise ConfigError(f"{scores} not found: run `genemi generate --stages score --output-dir {root}` first "
                      f"(or pass --no-filter to export the unscored {painted.name}){_shard_hint(root)}")


def read_plans(path: str | Path) -> list[VariationPlan]:
    from genemi.manifest import read_records

    return read_records(path, VariationPlan)


def iter_candidates(plans: Iterable[VariationPlan]) -> Iterator[Candidate]:
    """Every planned variation of every item of every image, sorted by variation id (ids are unique)."""
    found: dict[str, Candidate] = {}
    for plan in plans:
        for item in plan.items:
            for var in item.variations:
                if var.id in found:
                    raise ManifestError(f"variation {var.id} appears twice (images {found[var.id].plan.id} and "
                                        f"{plan.id}): the manifest is corrupt")
                found[var.id] = Candidate(plan, item, var)
    for key in sorted(found):
        yield found[key]


def drop_reason(c: Candidate, output_dir: Path, min_itm: float | None, min_iva: float | None,
                check_files: bool = True, iva_scope: str = DEFAULT_IVA_SCOPE) -> str | None:  # fmt: skip
    """Why ``c`` is not exported (one of :data:`DROP_REASONS`), or None when it is.

    A filter set to None is off; a variation without the score an active filter needs fails that filter
    (as in :func:`genemi.training.data.filter_variations`).
    """
    if c.plan.status != "ok" or c.item.status != "ok" or c.var.status != "ok":
        return "failed"
    if not c.var.image:
        return "not_painted"
    if not c.var.captions:
        return "no_captions"
    if not passes(c.var.mean_itm, min_itm):
        return "low_itm"
    if not passes(iva_of(c.var, iva_scope), min_iva):
        return "low_iva"
    if check_files and not (output_dir / c.var.image).is_file():
        return "missing_image"
    return None


# --- records and formats --------------------------------------------------------------------------------


def variation_record(c: Candidate) -> VariationRecord:
    """The trainer's record of an exported variation; ``save`` is relative to the run's output folder."""
    return VariationRecord(
        id=c.var.id, parent_id=c.item.id, origin_name=c.plan.id, item=c.item.item, name=c.var.id,
        source=c.plan.image, save=c.var.image, short=c.var.short, portrayal=c.var.prompt,
        tag2text_caption=c.plan.caption, original_captions=list(c.plan.original_captions),
        captions=list(c.var.captions), itm_score=c.var.itm_score, itm_prob=c.var.itm_prob,
        iva_score=c.var.iva_image, iva_image=c.var.iva_image, iva_window=c.var.iva_window, seed=c.var.seed,
        kind=c.var.kind, crop=list(c.item.crop) if c.item.crop is not None else None,
    )  # fmt: skip


def legacy_record(rec: VariationRecord) -> dict:
    """The original ``variation_annotation.json`` entry: exactly :data:`LEGACY_VARIATION_KEYS`."""
    data = rec.model_dump(mode="json")
    return {k: data[k] for k in LEGACY_VARIATION_KEYS}


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" .")


def _names(caption: str, item: str) -> bool:
    """Whether ``caption`` names ``item`` (its last word, at a word start: 'cat' matches 'cats')."""
    words = item.lower().split()
    return bool(words) and re.search(r"\b" + re.escape(words[-1]), caption.lower()) is not None


def negatives_of(c: Candidate) -> list[dict]:
    """Typed hard negatives of a variation: its siblings' captions, then the source image's captions.

    ``valid`` is false for a text that is one of the variation's own captions, for a sibling with the same
    short label, and for a source caption that does not name the edited item (it may describe the variation
    too). Duplicates are listed once.
    """
    own = {_norm(t) for t in c.var.captions}
    short = _norm(c.var.short)
    out: list[dict] = []
    seen: set[str] = set()
    for sib in sorted(c.item.variations, key=lambda v: v.id):
        if sib.id == c.var.id:
            continue
        for text in sib.captions:
            key = _norm(text)
            if key and key not in seen:
                seen.add(key)
                out.append({"text": text, "type": "sibling", "valid": key not in own and _norm(sib.short) != short})
    for text in [*c.plan.original_captions, *([c.plan.caption] if c.plan.caption else [])]:
        key = _norm(text)
        if key and key not in seen:
            seen.add(key)
            out.append({"text": text, "type": "source", "valid": key not in own and _names(text, c.item.item)})
    return out


def _write_legacy(path: Path, records: Sequence[VariationRecord]) -> dict:
    from genemi.manifest import write_atomic

    data = json.dumps([legacy_record(r) for r in records], ensure_ascii=False, indent=1) + "\n"
    write_atomic(path, data.encode("utf-8"))
    return {"path": str(path), "records": len(records)}


def _write_csv(path: Path, records: Sequence[VariationRecord]) -> dict:
    return write_tsv(path, ["filepath", "title"], ([rec.save, caption] for rec in records for caption in rec.captions))


def wds_sample(index: int, c: Candidate, output_dir: Path) -> dict:
    """One WebDataset sample (key = zero-padded position: ids hold dots and slashes, which tar keys cannot)."""
    ext, payload = image_payload(output_dir / c.var.image)
    meta = {"id": c.var.id, "item": c.item.item, "short": c.var.short, "source": c.plan.image,
            "image": c.var.image, "captions": list(c.var.captions), "negatives": negatives_of(c),
            "itm_score": c.var.itm_score, "itm_prob": c.var.itm_prob, "iva_image": c.var.iva_image,
            "iva_window": c.var.iva_window, "seed": c.var.seed, "kind": c.var.kind, "crop": c.item.crop}  # fmt: skip
    return {"__key__": f"{index:08d}", ext: payload, "txt": c.var.captions[0].encode("utf-8"),
            "json": json_bytes(meta)}  # fmt: skip


# --- the export -----------------------------------------------------------------------------------------


def parse_formats(value: str | Sequence[str]) -> tuple[str, ...]:
    names = [s.strip() for s in (value.split(",") if isinstance(value, str) else value) if s.strip()]
    if names == ["all"]:
        return FORMATS
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ConfigError(f"--format {','.join(names) or '(empty)'}: choose from {', '.join(FORMATS)} or all")
    return tuple(f for f in FORMATS if f in names)


def export_run(
    output_dir: str | Path,
    export_dir: str | Path | None = None,
    formats: str | Sequence[str] = FORMATS,
    min_itm: float | None = DEFAULT_MIN_ITM,
    min_iva: float | None = DEFAULT_MIN_IVA,
    no_filter: bool = False,
    shard_size: int = DEFAULT_SHARD_SIZE,
    triplet_margin: float | None = None,
    input_dir: str | Path | None = None,
    iva_scope: str = DEFAULT_IVA_SCOPE,
) -> dict:
    """Export the kept variations of a run in ``formats``, and its kept whole-image negatives as triplets
    (:mod:`.triplet_export`) when the run has them; returns the summary (also ``export_summary.json``).

    ``no_filter`` turns every score filter off and accepts an unscored run (``variations.jsonl``,
    ``negimages.jsonl``); a threshold of None turns that filter off alone. ``triplet_margin`` None keeps the
    negatives that passed the run's own margin; ``input_dir`` (default: the run's) holds the source images the
    triplet CSV and shards need.
    """
    from genemi.generation_pipeline.triplet_export import export_triplets, triplet_manifest

    root = run_folder(output_dir)
    formats = parse_formats(formats)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ConfigError(f"--shard-size must be a positive number of samples, not {shard_size}")
    if no_filter:
        min_itm = min_iva = None
    for name, value in (("--min-itm", min_itm), ("--min-iva", min_iva)):
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number or 'none', not {value}")
    triplets = triplet_manifest(root, unscored_ok=no_filter)
    has_variations = any((root / stage_spec(s).writes).is_file() for s in ("score", "inpaint"))
    manifest = scored_manifest(root, allow_unscored=min_itm is None and min_iva is None) \
        if has_variations or triplets is None else None
    source_root = None
    if triplets is not None and {"csv", "webdataset"} & set(formats):
        from genemi.generation_pipeline.runs import input_dir_from_summary

        source_root = Path(input_dir) if input_dir is not None else input_dir_from_summary(root)
        if not source_root.is_dir():
            raise ConfigError(f"source image folder {source_root} not found (give --input-dir)")
    out = Path(export_dir) if export_dir is not None else root / "export"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the export folder {out}: {exc.strerror or exc}") from exc
    if iva_scope not in IVA_SCOPES:
        raise ConfigError(f"--iva-scope must be one of {', '.join(IVA_SCOPES)}, not {iva_scope!r}")
    variations = _export_variations(root, out, formats, manifest, min_itm, min_iva, shard_size,
                                    iva_scope) if manifest else {}
    summary: dict = {"input": variations.pop("input")} if variations else {}
    summary.update({"output_dir": str(root), "export_dir": str(out), **variations})
    if triplets is not None:
        summary["triplets"] = export_triplets(root, out, formats, triplets, not no_filter, triplet_margin,
                                              source_root, shard_size)
    from genemi.manifest import write_atomic

    write_atomic(out / "export_summary.json", (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    summary["summary_file"] = str(out / "export_summary.json")
    return summary


def _export_variations(root: Path, out: Path, formats: Sequence[str], manifest: Path, min_itm: float | None,
                       min_iva: float | None, shard_size: int, iva_scope: str = DEFAULT_IVA_SCOPE) -> dict:
    plans = read_plans(manifest)
    dropped = dict.fromkeys(DROP_REASONS, 0)
    kept: list[Candidate] = []
    candidates = list(iter_candidates(plans))
    for c in candidates:
        reason = drop_reason(c, root, min_itm, min_iva, iva_scope=iva_scope)
        if reason is None:
            kept.append(c)
        else:
            dropped[reason] += 1
    records = [variation_record(c) for c in kept]

    written: dict[str, dict] = {}
    for fmt in formats:
        path = out / FILE_NAMES[fmt]
        if fmt == "jsonl":
            written[fmt] = write_jsonl(path, records)
        elif fmt == "legacy":
            written[fmt] = _write_legacy(path, records)
        elif fmt == "csv":
            written[fmt] = _write_csv(path, records)
        else:
            written[fmt] = write_shards(path, (wds_sample(i, c, root) for i, c in enumerate(kept)), shard_size)
    return {
        "input": str(manifest),
        "filters": {"min_itm": min_itm, "min_iva": min_iva, "iva_scope": iva_scope},
        "images": len(plans),
        "failed_images": sum(p.status != "ok" for p in plans),
        "items": sum(len(p.items) for p in plans),
        "variations": len(candidates),
        "exported": len(kept),
        "dropped": dropped,
        "formats": written,
    }


# --- command line ---------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (exit 2), like the genemi errors."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


@dataclass
class ExportOptions(Section):
    """``genemi generate export``'s options (flags, YAML keys for --config / --set, defaults, checks)."""

    output_dir: str | None = option(None, "the pipeline run's output folder (holds scores.jsonl and/or "
                                    "negscores.jsonl)", metavar="DIR", required=True)
    export_dir: str | None = option(None, "where to write the export", metavar="DIR",
                                    default_text="OUTPUT_DIR/export")
    format: str = option("all", f"comma list of {', '.join(FORMATS)}, or all", metavar="LIST")
    min_itm: float | None = option(DEFAULT_MIN_ITM, "keep variations with mean BLIP ITM logit > this; none = off",
                                   none="none", parse=threshold_arg, metavar="X")
    min_iva: float | None = option(DEFAULT_MIN_IVA, "keep variations with IVA (%%, in --iva-scope) > this; none = "
                                   "off", none="none", parse=threshold_arg, metavar="X",
                                   default_text=f"{DEFAULT_MIN_IVA:g}, measured; the original trainer's: --iva-scope "
                                   "image --min-iva 14")
    iva_scope: str = option(DEFAULT_IVA_SCOPE, "which IVA --min-iva compares: image (over the whole variation "
                            "image, the original's definition) or window (over the item's crop window)",
                            choices=IVA_SCOPES)
    filter: bool = option(True, "the score filters above (off: none, and an unscored run's variations.jsonl is "
                          "accepted)")
    shard_size: int = option(DEFAULT_SHARD_SIZE, "samples per WebDataset shard", at_least=1, metavar="N")
    triplet_margin: float | None = option(None, "keep a negative image when its ITM logit with its own caption "
                                          "exceeds that with the source caption by more than this", metavar="X",
                                          default_text="the run's --triplet-margin, as negscore recorded it")
    input_dir: str | None = option(None, "the run's source images, for the triplet CSV and shards", metavar="DIR",
                                   default_text="config.input_dir of OUTPUT_DIR/run_summary.json")


def build_parser() -> argparse.ArgumentParser:
    return tool_parser(
        "genemi generate export",
        "Export a run's painted variations that pass the score filters as a training set: "
        "dataset.jsonl (VariationRecord), variation_annotation.json (original GeNeMi list), dataset.csv "
        "(open_clip, tab separated) and WebDataset shards with typed negatives.", ExportOptions, parser_class=_Parser,
        epilog="Train on it (the image paths are relative to the run's output folder):\n"
        "  genemi train --dataset-type variations --dataset EXPORT/dataset.jsonl --image-root OUTPUT\n"
        "  genemi train --dataset-type csv --dataset EXPORT/dataset.csv --image-root OUTPUT "
        "--csv-img-key filepath --csv-caption-key title\n"
        "  genemi train --dataset-type webdataset --dataset 'EXPORT/wds/shard-{000000..00000N}.tar'\n"
        "genemi train filters variations again with --itm-threshold/--iva-threshold/--iva-scope (the same "
        "defaults as here); after exporting with other thresholds pass the same values or 'none'.\n"
        "A run with whole-image negatives (stages negcaption, t2i, negscore) also gets triplets.jsonl, "
        "triplets.csv and wds-triplets/ (TripletCLIP; train with --loss triplet --dataset-type triplets ...).")


def _fmt_threshold(value: float | None) -> str:
    return "off" if value is None else f"> {value:g}"


def print_summary(s: dict, file=None) -> None:
    file = file or sys.stdout
    if "filters" in s:
        _print_variations(s, file)
    if "triplets" in s:
        _print_triplets(s["triplets"], s["output_dir"], file)
    print(f"summary: {s['summary_file']}", file=file)


def _print_triplets(t: dict, run: str, file) -> None:
    print(f"read {t['input']}: {t['images']} images, {t['negatives']} negatives (filter: {t['filter']})", file=file)
    print(f"exported {t['exported']} of {t['negatives']} negatives as triplets", file=file)
    for reason, count in t["dropped"].items():
        if count:
            print(f"  dropped {count:6d} x {reason}", file=file)
    for fmt, info in t["formats"].items():
        extra = ", ".join(f"{k} {v}" for k, v in info.items() if k in ("records", "rows", "samples"))
        print(f"  {fmt:10s} {info['path']}  ({extra})", file=file)
    if "jsonl" in t["formats"]:
        print(f"train on it: genemi train --loss triplet --dataset-type triplets --dataset "
              f"{t['formats']['jsonl']['path']} --image-root {run} --source-image-root <the run's --input-dir>",
              file=file)


def _print_variations(s: dict, file) -> None:
    f = s["filters"]
    print(f"read {s['input']}: {s['images']} images ({s['failed_images']} failed), {s['items']} items, "
          f"{s['variations']} variations", file=file)
    print(f"filters: mean ITM {_fmt_threshold(f['min_itm'])}, IVA ({f['iva_scope']}) {_fmt_threshold(f['min_iva'])}",
          file=file)
    print(f"exported {s['exported']} of {s['variations']} variations", file=file)
    for reason, count in s["dropped"].items():
        if count:
            print(f"  dropped {count:6d} x {reason}", file=file)
    for fmt, info in s["formats"].items():
        extra = ", ".join(f"{k} {v}" for k, v in info.items() if k in ("records", "rows", "samples"))
        shards = f", {len(info['shards'])} shards" if "shards" in info else ""
        print(f"  {fmt:10s} {info['path']}  ({extra}{shards})", file=file)
    out, run = s["formats"], s["output_dir"]
    thresholds = ""
    if (f["min_itm"], f["min_iva"], f["iva_scope"]) != (DEFAULT_MIN_ITM, DEFAULT_MIN_IVA, DEFAULT_IVA_SCOPE):
        itm = "none" if f["min_itm"] is None else f"{f['min_itm']:g}"
        iva = "none" if f["min_iva"] is None else f"{f['min_iva']:g}"
        thresholds = f" --itm-threshold {itm} --iva-threshold {iva} --iva-scope {f['iva_scope']}"
    if out:
        print("train on it:", file=file)
    if "jsonl" in out:
        print(f"  genemi train --dataset-type variations --dataset {out['jsonl']['path']} --image-root {run}"
              f"{thresholds}", file=file)
    if "csv" in out:
        print(f"  genemi train --dataset-type csv --dataset {out['csv']['path']} --image-root {run} "
              "--csv-img-key filepath --csv-caption-key title", file=file)
    if "webdataset" in out:
        print(f"  genemi train --dataset-type webdataset --dataset '{out['webdataset']['path']}'", file=file)


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import run_tool

    def action(args):
        o = resolve(ExportOptions, args)
        return export_run(o.output_dir, o.export_dir, o.format, o.min_itm, o.min_iva, not o.filter, o.shard_size,
                          o.triplet_margin, o.input_dir, o.iva_scope)

    return run_tool("genemi generate export", build_parser(), argv, action, print_summary,
                    on_interrupt="rerun it (the export is rewritten)")


if __name__ == "__main__":
    raise SystemExit(main())
