"""``genemi generate gallery``: the command line, and :func:`build_gallery`, which writes a whole gallery."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError
from genemi.options import Section, option, resolve, tool_parser
from genemi.generation_pipeline.gallery.contact_sheet import (CONTACT_SHEET_MAX_ROWS, contact_sheet_png, sheet_key,
                                                              sheet_row)
from genemi.generation_pipeline.gallery.loading import has_variations, load_run
from genemi.generation_pipeline.gallery.triplets import load_triplets, write_triplet_pages
from genemi.generation_pipeline.runs import input_dir_from_summary
from genemi.generation_pipeline.gallery.rendering import (PageContext, item_view, page_name, remove_stale_pages,
                                                          render_page, stats_line, write_static)
from genemi.generation_pipeline.gallery.shards import remove_stale_shards, score_rows, search_rows, write_shards
from genemi.generation_pipeline.gallery.thumbnails import Thumbnailer
from genemi.manifest import write_atomic
from genemi.score_filters import DEFAULT_IVA_SCOPE, DEFAULT_MIN_ITM, DEFAULT_MIN_IVA, IVA_SCOPES

#: threads drawing thumbnails by default
DEFAULT_THREADS = min(8, os.cpu_count() or 1)


@dataclass
class GallerySummary:
    index: Path
    gallery_dir: Path
    pages: int
    images: int
    failed_images: int
    items: int
    variations: int
    painted: int
    failed_variations: int
    passing: int
    scored: bool
    unscored_images: int
    thumbnails: int
    contact_sheet: Path | None
    contact_sheet_rows: int
    #: "<id>: <reason>" for each source or variation image that could not be read (shown as placeholders)
    unreadable: list[str] = field(default_factory=list)
    #: thumbnails kept from an earlier build (their images and settings unchanged), of :attr:`thumbnails`
    thumbnails_reused: int = 0
    #: whole-image negatives shown on the triplet pages, and how many pages
    negatives: int = 0
    triplet_pages: int = 0


def _check_settings(items_per_page: int, thumb_size: int, min_itm: float, min_iva: float,
                    contact_sheet_rows: int, threads: int) -> None:
    if items_per_page < 1:
        raise ConfigError(f"--items-per-page must be at least 1, not {items_per_page}")
    if not 32 <= thumb_size <= 2048:
        raise ConfigError(f"--thumb-size must be between 32 and 2048, not {thumb_size}")
    if contact_sheet_rows < 0:
        raise ConfigError(f"--contact-sheet-rows must be 0 (no sheet) or more, not {contact_sheet_rows}")
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, not {threads}")
    for name, x in (("--min-itm", min_itm), ("--min-iva", min_iva)):
        if not math.isfinite(x):
            raise ConfigError(f"{name} must be a finite number, not {x}")


def build_gallery(output_dir: str | Path, input_dir: str | Path | None = None, gallery_dir: str | Path | None = None,
                  *, items_per_page: int = 50, thumb_size: int = 256, min_itm: float = DEFAULT_MIN_ITM,
                  min_iva: float = DEFAULT_MIN_IVA, contact_sheet_rows: int = CONTACT_SHEET_MAX_ROWS,
                  threads: int = DEFAULT_THREADS, iva_scope: str = DEFAULT_IVA_SCOPE) -> GallerySummary:
    """Write the gallery of the run in ``output_dir`` (see :mod:`genemi.generation_pipeline.gallery`); returns
    what was written. ``threads`` draw thumbnails (the output does not depend on it)."""
    out = Path(output_dir)
    if not out.is_dir():
        raise ConfigError(f"--output-dir {out} is not a folder")
    _check_settings(items_per_page, thumb_size, min_itm, min_iva, contact_sheet_rows, threads)
    inp = Path(input_dir) if input_dir is not None else input_dir_from_summary(out)
    if not inp.is_dir():
        raise ConfigError(f"source image folder {inp} not found (give --input-dir)")
    gdir = Path(gallery_dir) if gallery_dir is not None else out / "gallery"
    if gdir.resolve() in (out.resolve(), inp.resolve()):
        raise ConfigError(f"--gallery-dir {gdir} must be its own folder, not the run or the image folder")

    triplets = load_triplets(out)
    run = load_run(out) if triplets is None or has_variations(out) else None
    thumbnailer = Thumbnailer(out, inp, gdir, run.masks if run else {}, thumb_size, threads)
    triplet_pages = 0
    if triplets is not None:  # with no variations in the run, the triplet pages are the gallery
        triplet_pages = write_triplet_pages(gdir, triplets, thumbnailer, items_per_page, out.name,
                                            first="triplets.html" if run else "index.html",
                                            back="index.html" if run else None)
    if run is None:
        write_static(gdir)
        remove_stale_pages(gdir, 0)
        thumbnailer.finish()
        negatives = [n for p in triplets for n in p.negatives]
        return GallerySummary(index=gdir / "index.html", gallery_dir=gdir, pages=0, images=len(triplets),
                              failed_images=sum(p.status != "ok" for p in triplets), items=0, variations=0,
                              painted=0, failed_variations=0, passing=0, scored=False, unscored_images=0,
                              thumbnails=len(thumbnailer.written), contact_sheet=None, contact_sheet_rows=0,
                              unreadable=thumbnailer.unreadable, thumbnails_reused=thumbnailer.reused,
                              negatives=len(negatives), triplet_pages=triplet_pages)
    counts = run.counts(min_itm, min_iva, iva_scope)
    search = write_shards(gdir, "search", search_rows(run.rows, items_per_page))
    scores = write_shards(gdir, "scores", score_rows(run.rows, iva_scope))
    pages = max(1, math.ceil(len(run.rows) / items_per_page))
    ctx = PageContext(run_name=out.name, stats=stats_line(run, counts), thumb_size=thumb_size, min_itm=repr(min_itm),
                      min_iva=repr(min_iva), min_itm_text=f"{min_itm:g}", min_iva_text=f"{min_iva:g}", iva_scope=iva_scope,
                      scored=run.scored, run_pass=counts.passing, run_scored=counts.scored_painted,
                      search_shards=len(search), score_shards=len(scores), items=len(run.rows),
                      per_page=items_per_page, pages=pages,
                      triplets=f"{sum(len(p.negatives) for p in triplets)} whole-image negatives" if triplets else None)
    sheet = []
    for page in range(1, pages + 1):
        rows = run.rows[(page - 1) * items_per_page: page * items_per_page]
        views = []
        for row, thumbs in zip(rows, thumbnailer.items(rows)):
            views.append(item_view(row, thumbs, run.masks.get(row.item.id), min_itm, min_iva, iva_scope))
            if len(sheet) < contact_sheet_rows:
                sheet.append(sheet_row(row, thumbs, thumbnailer.folder, min_itm, min_iva, iva_scope))
        failed = run.failed_images if page == 1 else []
        write_atomic(gdir / page_name(page), render_page(page, views, failed, ctx))
    write_static(gdir)
    remove_stale_pages(gdir, pages)
    remove_stale_shards(gdir, set(search) | set(scores))
    sheet_path = None
    if sheet:
        sheet_path = gdir / "contact_sheet.png"
        key = sheet_key(sheet, len(run.rows), thumbnailer.cache.key_of)
        if not thumbnailer.cache.reuse_file(sheet_path, key):
            write_atomic(sheet_path, contact_sheet_png(sheet, len(run.rows)))
            thumbnailer.cache.store_file(sheet_path, key)
    thumbnailer.finish()
    return GallerySummary(index=gdir / "index.html", gallery_dir=gdir, pages=pages, images=len(run.images),
                          failed_images=len(run.failed_images), items=len(run.rows), variations=counts.variations,
                          painted=counts.painted, failed_variations=counts.failed, passing=counts.passing,
                          scored=run.scored, unscored_images=len(run.unscored), thumbnails=len(thumbnailer.written),
                          contact_sheet=sheet_path, contact_sheet_rows=len(sheet), unreadable=thumbnailer.unreadable,
                          thumbnails_reused=thumbnailer.reused,
                          negatives=sum(len(p.negatives) for p in triplets) if triplets else 0,
                          triplet_pages=triplet_pages)


@dataclass
class GalleryOptions(Section):
    """``genemi generate gallery``'s options."""

    output_dir: str | None = option(None, "the run's output folder (scores.jsonl or variations.jsonl)", metavar="DIR",
                                    required=True)
    input_dir: str | None = option(None, "source image root", metavar="DIR",
                                   default_text="config.input_dir of OUTPUT_DIR/run_summary.json")
    gallery_dir: str | None = option(None, "where to write the gallery", metavar="DIR",
                                     default_text="OUTPUT_DIR/gallery")
    items_per_page: int = option(50, "items per HTML page", at_least=1, metavar="N")
    thumb_size: int = option(256, "thumbnail size in pixels, longest side", at_least=1, metavar="PX")
    min_itm: float = option(DEFAULT_MIN_ITM, "export filter shown and pre-set in the page: minimum mean raw ITM "
                            "logit", metavar="X")
    min_iva: float = option(DEFAULT_MIN_IVA, "export filter shown and pre-set in the page: minimum IVA in %%",
                            metavar="X")
    iva_scope: str = option(DEFAULT_IVA_SCOPE, "which IVA is shown and filtered: image or window", choices=IVA_SCOPES)
    contact_sheet_rows: int = option(CONTACT_SHEET_MAX_ROWS, "items (rows) in contact_sheet.png, the first ones; 0: "
                                     "no sheet", at_least=0, metavar="N")
    threads: int = option(DEFAULT_THREADS, "threads drawing thumbnails", at_least=1, metavar="N",
                          default_text=f"the CPU count, at most 8: {DEFAULT_THREADS}")


def build_parser() -> argparse.ArgumentParser:
    return tool_parser(
        "genemi generate gallery",
        "Static HTML gallery (paged, searchable, filterable by score in the page) and a PNG contact "
        "sheet of a generation run: each item's source with its mask outline and box, then its variations (crop "
        "window) with labels, captions, ITM, IVA and CLIPScore; failed and filtered variations marked. Thumbnails "
        "of unchanged images are reused on a rerun.", GalleryOptions)


def print_summary(s: GallerySummary) -> None:
    if s.triplet_pages:
        first = s.index if not s.pages else s.gallery_dir / "triplets.html"
        print(f"triplets: {first} ({s.negatives} whole-image negatives on {s.triplet_pages} page(s))")
    if not s.pages:
        return
    print(f"gallery: {s.index} ({s.items} items on {s.pages} page(s); {s.images} images, {s.failed_images} failed "
          f"upstream; {s.variations} variations: {s.painted} painted, {s.failed_variations} failed"
          + (f", {s.passing} pass the export filters" if s.scored else ", not scored") + ")")
    print(f"thumbnails: {s.thumbnails} ({s.thumbnails_reused} reused, {s.thumbnails - s.thumbnails_reused} drawn)")
    if s.contact_sheet:
        print(f"contact sheet: {s.contact_sheet} ({s.contact_sheet_rows} of {s.items} items)")
    if s.unreadable:
        print(f"warning: {len(s.unreadable)} image(s) could not be read (placeholders shown), e.g. {s.unreadable[0]}",
              file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import run_tool

    def action(args):
        o = resolve(GalleryOptions, args)
        return build_gallery(o.output_dir, o.input_dir, o.gallery_dir, items_per_page=o.items_per_page,
                             thumb_size=o.thumb_size, min_itm=o.min_itm, min_iva=o.min_iva,
                             contact_sheet_rows=o.contact_sheet_rows, threads=o.threads, iva_scope=o.iva_scope)

    return run_tool("genemi generate gallery", build_parser(), argv, action, print_summary)
