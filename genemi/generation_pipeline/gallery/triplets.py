"""The gallery's pages of whole-image negatives (TripletCLIP's triplets): ``triplets.html``,
``triplets-0002.html``, ... one section per image: its source picture and caption, then each negative caption
with its picture side by side, its edit, its ITM logits against its own and the source caption and whether it
passes the run's margin. Read from ``negscores.jsonl`` (``negimages.jsonl`` for images not scored yet)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

from genemi.generation_pipeline.gallery.loading import fmt
from genemi.generation_pipeline.gallery.rendering import _ENV, pager_links
from genemi.generation_pipeline.gallery.thumbnails import Thumb, Thumbnailer
from genemi.manifest import read_records, write_atomic
from genemi.records import NegativePlan

_PAGE_RE = re.compile(r"triplets(-\d{4,})?\.html")


def load_triplets(output_dir: Path) -> list[NegativePlan] | None:
    """The run's negative plans (scored first, then those only painted), or None when the branch did not run."""
    from genemi.generation_pipeline import registry

    if "negscore" not in registry.STAGES:
        return None
    scored, painted = (output_dir / registry.manifest(name) for name in ("negscore", "t2i"))
    if not scored.is_file() and not painted.is_file():
        return None
    plans = read_records(scored, NegativePlan) if scored.is_file() else []
    seen = {p.id for p in plans}
    return plans + [p for p in read_records(painted, NegativePlan) if p.id not in seen] if painted.is_file() else plans


def triplet_page_name(page: int, first: str = "triplets.html") -> str:
    return first if page == 1 else f"triplets-{page:04d}.html"


def _view(plan: NegativePlan, thumbnailer: Thumbnailer) -> SimpleNamespace:
    source = thumbnailer.plain(plan.id, thumbnailer.inp / plan.image, ".src.jpg")
    negatives = []
    for n in plan.negatives:
        pic = thumbnailer.plain(n.id, thumbnailer.out / n.image) if n.status == "ok" and n.image else None
        scores = None
        if n.itm_own is not None:
            scores = f"ITM own {fmt(n.itm_own)} · source {fmt(n.itm_source)}"
            if n.clip_own is not None:
                scores += f" · CLIP own {fmt(n.clip_own, '.1f')} · source {fmt(n.clip_source, '.1f')}"
        negatives.append(SimpleNamespace(
            id=n.id, caption=n.caption, source=n.source, kind=n.kind or "", model=n.model, failed=n.status != "ok",
            error=n.error, thumb=pic if isinstance(pic, Thumb) else None,
            missing=pic if isinstance(pic, str) else ("not painted" if n.status == "ok" else None),
            scores=scores, passes=n.passes, truncated=bool(n.truncated)))
    return SimpleNamespace(id=plan.id, image=plan.image, failed=plan.status != "ok", error=plan.error,
                           source=source if isinstance(source, Thumb) else None,
                           source_problem=source if isinstance(source, str) else None, negatives=negatives)


def write_triplet_pages(gallery_dir: Path, plans: list[NegativePlan], thumbnailer: Thumbnailer, per_page: int,
                        run_name: str, first: str = "triplets.html", back: str | None = "index.html") -> int:
    """Write the triplet pages (the first named ``first``); returns how many. ``back`` links the variation pages."""
    pages = max(1, math.ceil(len(plans) / per_page))
    negatives = [n for p in plans for n in p.negatives]
    painted = sum(n.status == "ok" and bool(n.image) for n in negatives)
    passing = sum(bool(n.passes) for n in negatives)
    stats = (f"{len(plans)} images · {len(negatives)} negative captions · {painted} painted · "
             f"{passing} pass the margin")
    for page in range(1, pages + 1):
        chunk = plans[(page - 1) * per_page: page * per_page]
        html = _ENV.get_template("triplets.html").render(
            run_name=run_name, page=page, pages=pages, stats=stats, back=back, thumb_size=thumbnailer.size,
            items=[_view(p, thumbnailer) for p in chunk],
            pager_links=pager_links(page, pages, lambda p: triplet_page_name(p, first)))
        write_atomic(gallery_dir / triplet_page_name(page, first), html.encode("utf-8"))
    keep = {triplet_page_name(p, first) for p in range(1, pages + 1)}
    for path in gallery_dir.glob("triplets*.html"):
        if _PAGE_RE.fullmatch(path.name) and path.name not in keep:
            path.unlink()
    return pages
