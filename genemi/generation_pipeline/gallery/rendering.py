"""The gallery's pages: ``index.html``, ``page-0002.html``, ... rendered from ``templates/`` with Jinja2
(autoescaped: every text from the data is model output), and the static files every page loads
(``gallery.css``, ``gallery.js``, copied from ``static/``).

This module turns rows into views (plain values, numbers already formatted); the templates only lay them out.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

from jinja2 import Environment, PackageLoader, StrictUndefined

from genemi.generation_pipeline.gallery.loading import Counts, Row, Run, filter_reasons, fmt
from genemi.generation_pipeline.gallery.thumbnails import ItemThumbs, Thumb
from genemi.manifest import write_atomic
from genemi.records import ItemMask, PlannedVariation, VariationPlan
from genemi.score_filters import DEFAULT_IVA_SCOPE, iva_of

#: files every page loads, written from ``static/`` as they are
STATIC_FILES = ("gallery.css", "gallery.js")
#: images that failed before painting listed on the first page (the rest are counted)
FAILED_IMAGES_LISTED = 200

_PAGE_RE = re.compile(r"page-\d{4,}\.html")
_ENV = Environment(loader=PackageLoader("genemi.generation_pipeline.gallery", "templates"), autoescape=True,
                   trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)


@dataclass(frozen=True)
class PageContext:
    """What every page of a gallery shows besides its items."""

    run_name: str
    stats: str
    thumb_size: int
    min_itm: str  # repr of the export filters (input values and data attributes)
    min_iva: str
    min_itm_text: str  # as shown in the header
    min_iva_text: str
    iva_scope: str
    scored: bool
    run_pass: int  # painted variations of scored images that pass the export filters, and all of them
    run_scored: int
    search_shards: int
    score_shards: int
    items: int
    per_page: int
    pages: int
    triplets: str | None = None  # "<n> whole-image negatives" when the run has them (linked to triplets.html)


def page_name(page: int) -> str:
    return "index.html" if page == 1 else f"page-{page:04d}.html"


def static_file(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def pager_pages(page: int, pages: int) -> list[int]:
    """The pages the pager links: first and last, two either side, and 10, 100 and 1000 pages away."""
    jumps = (page + sign * step for step in (10, 100, 1000) for sign in (-1, 1))
    near = range(max(1, page - 2), min(pages, page + 2) + 1)
    return sorted({1, pages, *near, *(p for p in jumps if 1 <= p <= pages)})


def pager_links(page: int, pages: int, name=page_name) -> list[tuple[str, str, str]]:
    """``(kind, target, text)``: kind "link" (target a page file, ``name(p)``), "cur" (this page) or "off"."""
    def link(p: int, text: str) -> tuple[str, str, str]:
        return "link", name(p), text

    parts = [link(page - 1, "← prev") if page > 1 else ("off", "", "← prev")]
    last = 0
    for p in pager_pages(page, pages):
        if p - last > 1:
            parts.append(("off", "", "…"))
        parts.append(("cur", "", str(p)) if p == page else link(p, str(p)))
        last = p
    parts.append(link(page + 1, "next →") if page < pages else ("off", "", "next →"))
    return parts


def number_attr(x: float | None) -> str | None:
    """A score for a data attribute the page's JS reads: exact (repr), non-finite as JS spells it."""
    return None if x is None else json.dumps(x)


def stats_line(run: Run, counts: Counts) -> str:
    failed = len(run.failed_images)
    if not run.scored:
        how = f"not scored (no {run.scores_file})"
    elif run.unscored:
        how = f"scored: {len(run.images) - len(run.unscored)} of {len(run.images)} images (the rest not scored yet)"
    else:
        how = "scored"
    return (f"{len(run.images)} images ({failed} failed upstream) · {len(run.rows)} items · {counts.variations} "
            f"variations ({counts.painted} painted, {counts.failed} failed) · {how}")


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def variation_view(v: PlannedVariation, thumb: Thumb | str | None, scored: bool, min_itm: float,
                   min_iva: float, iva_scope: str = DEFAULT_IVA_SCOPE) -> SimpleNamespace:
    """A variation card: ``thumb`` is its thumbnail or why there is none (failed variations have none)."""
    view = dict(id=v.id, vid=v.id.rsplit("/", 1)[-1], short=v.short, kind=v.kind,
                tip=f"{v.id} · seed {v.seed}\nprompt: {v.prompt}", failed=v.status != "ok")
    if view["failed"]:
        return SimpleNamespace(**view, error=v.error, captions=[(c, "") for c in v.captions])
    itm, probs, clip = v.itm_score or [], v.itm_prob or [], v.clip_score or []
    captions = []
    for k, c in enumerate(v.captions):
        s = []
        if k < len(itm):
            s.append(f"ITM {fmt(itm[k])}" + (f" · p {fmt(probs[k])}" if k < len(probs) else ""))
        if k < len(clip):
            s.append(f"CLIP {fmt(clip[k], '.1f')}")
        captions.append((c, " · ".join(s)))
    m, iva = v.mean_itm, iva_of(v, iva_scope)
    scores = None
    if v.itm_score is not None or iva is not None:
        scores = [("ITM ", fmt(m)) if m is not None else ("ITM not scored", None)]
        if probs:
            scores.append((f"p̄ {fmt(_mean(probs))}", None))
        scores.append(("IVA ", f"{fmt(iva, '.1f')}%") if iva is not None else ("IVA not scored", None))
        if clip:
            scores.append((f"CLIP {fmt(_mean(clip), '.1f')}", None))
    return SimpleNamespace(**view, thumb=thumb if isinstance(thumb, Thumb) else None,
                           missing=thumb if isinstance(thumb, str) else None, captions=captions, scores=scores,
                           note=v.iva_note, reasons=filter_reasons(v, min_itm, min_iva, iva_scope) if scored else [],
                           itm=number_attr(m), iva=number_attr(iva))


def item_view(row: Row, thumbs: ItemThumbs, mask: ItemMask | None, min_itm: float, min_iva: float,
              iva_scope: str = DEFAULT_IVA_SCOPE) -> SimpleNamespace:
    """An item's section: its source card, then its variation cards."""
    rec, item = row.image, row.item
    meta = [f"box {', '.join(f'{x:.0f}' for x in item.box)}", f"crop {', '.join(map(str, item.crop))}"]
    if mask is not None:
        meta.insert(0, f"box score {mask.box_score:.2f} · mask {mask.mask_score:.2f} · area {mask.area} px")
    failed = item.status != "ok"
    return SimpleNamespace(id=item.id, label=item.item, caption=rec.caption, backend=item.backend, note=item.note,
                error=str(item.error) if failed and item.error else None, failed=failed, failure=item.error,
                source=thumbs.source, source_title=rec.image if thumbs.source else thumbs.source_problem, meta=meta,
                variations=[variation_view(v, thumbs.variations.get(v.id), row.scored, min_itm, min_iva, iva_scope)
                            for v in item.variations])


def render_page(page: int, items: list[SimpleNamespace], failed_images: list[VariationPlan], ctx: PageContext) -> bytes:
    """One page; ``failed_images`` are listed (the first :data:`FAILED_IMAGES_LISTED`) when given."""
    first = (page - 1) * ctx.per_page + 1
    shown = f"items {first}–{first + len(items) - 1} of {ctx.items}" if items else "no items"
    html = _ENV.get_template("page.html").render(
        asdict(ctx), page=page, items=items, shown=shown, pager_links=pager_links(page, ctx.pages),
        failed_images=failed_images[:FAILED_IMAGES_LISTED], failed_total=len(failed_images))
    return html.encode("utf-8")


def remove_stale_pages(gallery_dir: Path, pages: int) -> None:
    """Pages an earlier, larger gallery left (only files named as this module names them)."""
    keep = {page_name(p) for p in range(1, pages + 1)}
    for path in gallery_dir.glob("page-*.html"):
        if _PAGE_RE.fullmatch(path.name) and path.name not in keep:
            path.unlink()


def write_static(gallery_dir: Path) -> None:
    """``gallery.css`` and ``gallery.js``, as they are in ``static/``."""
    for name in STATIC_FILES:
        write_atomic(gallery_dir / name, static_file(name))
