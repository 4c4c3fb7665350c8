"""``genemi generate gallery``: a static HTML gallery and a PNG contact sheet of a generation run.

Reads ``scores.jsonl`` (images it does not hold yet are taken from ``variations.jsonl`` and shown as "not
scored"; without ``scores.jsonl`` everything is) and ``masks.jsonl``, and writes under ``--gallery-dir``
(default ``<output-dir>/gallery``), never elsewhere:

* ``index.html``, ``page-0002.html``, ...: ``--items-per-page`` items per page, one row per item: the source
  image with the item's mask outline (cyan, dark halo), its box (magenta) and the inpainting crop window
  (dashed white), then the item's variations side by side. Variation thumbnails show the **crop window**
  (the region the inpainting stage repainted; the rest of a variation image is the source), so the edit is
  large even on big photos. Each card has the short label, the edit kind, the rewritten captions with their
  BLIP ITM raw logit and probability, the mean logit, IVA (and its note), CLIPScore when scored; failed
  variations are placeholder cards with the failure's stage, type and message; variations below the
  export thresholds (``--min-itm`` on the mean raw ITM logit, ``--min-iva`` on IVA in %) are marked
  "filtered (ITM)" / "filtered (IVA)". A variation without a score is never marked.
* ``gallery.css``, ``gallery.js`` (plain JS, no network): min ITM / min IVA inputs start at the export
  thresholds (or ``?min_itm=..&min_iva=..&hide=1`` in the URL), re-mark the cards, optionally hide what
  does not pass, and count what passes on the page and in the whole run (``run-scores.js``).
* ``thumbs/*.jpg``: thumbnails fitted to ``--thumb-size`` px, names flattened from the ids plus a hash.
* ``contact_sheet.png``: one row per item (the first :data:`CONTACT_SHEET_MAX_ROWS`): source with outline,
  then the variations with their short labels and a status strip (green passes, orange filtered, grey
  failed).

Every text from the data (ids, captions, labels, messages: model output) is HTML-escaped. Pages and the
contact sheet are written atomically; rerunning replaces the gallery (stale pages and thumbnails of an
earlier run are removed).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from genemi.errors import ConfigError, ImageError
from genemi.generation_pipeline.inpainting.geometry import dilate
from genemi.generation_pipeline.previews import safe_name
from genemi.masks import rle_decode
from genemi.images import load_rgb
from genemi.manifest import read_records, write_atomic
from genemi.records import Failure, ItemMask, MaskRecord, PlannedItem, PlannedVariation, VariationPlan
from genemi.score_filters import DEFAULT_MIN_ITM, DEFAULT_MIN_IVA, passes

#: rows (items) of the PNG contact sheet; a run with more items shows its first ones
CONTACT_SHEET_MAX_ROWS = 40
#: side of one contact-sheet cell in pixels (the label strip comes below it)
CONTACT_CELL = 160

_MASK_COLOUR = (0, 235, 255)
_BOX_COLOUR = (255, 0, 200)
_PAGE_RE = re.compile(r"page-\d{4,}\.html")
_THUMB_RE = re.compile(r".+-[0-9a-f]{10}(\.src)?\.jpg")

#: a thumbnail written: (file name under thumbs/, width, height)
Thumb = tuple[str, int, int]
#: a contact-sheet cell: (label "line 1\nline 2", thumbnail path or None, status ok/filtered/failed)
SheetCell = tuple[str, Path | None, str]


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


# --- data ---------------------------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return None if x is None else (float(x) if math.isfinite(x) else float("-inf"))


def mean_itm(v: PlannedVariation) -> float | None:
    """Mean of the raw ITM logits (-inf when one is not finite: it then fails any threshold)."""
    m = v.mean_itm
    return None if m is None else _finite(m)


def filter_reasons(v: PlannedVariation, min_itm: float | None, min_iva: float | None) -> list[str]:
    """Which export filters a painted variation fails ("ITM", "IVA"): as in export and the trainer, a score
    passes when it is strictly greater than the threshold; a missing score fails nothing here (shown as such)."""
    out = []
    if v.mean_itm is not None and not passes(v.mean_itm, min_itm):
        out.append("ITM")
    if v.iva_score is not None and not passes(v.iva_score, min_iva):
        out.append("IVA")
    return out


def _load_plans(output_dir: Path) -> tuple[list[VariationPlan], set[str], bool]:
    """The run's records in manifest order, the ids of the images without scores, and whether any is scored."""
    scores, variations = output_dir / "scores.jsonl", output_dir / "variations.jsonl"
    if not scores.exists() and not variations.exists():
        raise ConfigError(f"{output_dir} has neither scores.jsonl nor variations.jsonl (run the inpaint stage first)")
    scored = read_records(scores, VariationPlan) if scores.exists() else []
    seen = {r.id for r in scored}
    rest = [r for r in read_records(variations, VariationPlan) if r.id not in seen] if variations.exists() else []
    return scored + rest, {r.id for r in rest}, bool(scored)


def _load_masks(output_dir: Path) -> dict[str, ItemMask]:
    path = output_dir / "masks.jsonl"
    if not path.exists():
        return {}
    return {item.id: item for rec in read_records(path, MaskRecord) for item in rec.items}


def _input_dir_from_summary(output_dir: Path) -> Path:
    path = output_dir / "run_summary.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["config"]["input_dir"]
    except FileNotFoundError:
        value = None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read config.input_dir from {path}: {exc}; give --input-dir") from exc
    if not value:
        raise ConfigError(f"no --input-dir given and {path} does not name one (config.input_dir); give --input-dir")
    return Path(value)


# --- thumbnails -----------------------------------------------------------------------------------------


def thumb_name(record_id: str, suffix: str = ".jpg") -> str:
    """A flat, unique file name for an id (sanitised by ``previews.safe_name`` plus a hash of the id)."""
    digest = hashlib.sha1(record_id.encode("utf-8")).hexdigest()[:10]
    return safe_name(record_id, "")[:150] + f"-{digest}{suffix}"


def _fit(img: Image.Image, size: int) -> Image.Image:
    scale = size / max(img.size)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def _dashed_rect(draw: ImageDraw.ImageDraw, box: Sequence[float], dash: int = 5) -> None:
    x0, y0, x1, y1 = (round(v) for v in box)
    for a, b, fixed, horizontal in ((x0, x1, y0, True), (x0, x1, y1, True), (y0, y1, x0, False), (y0, y1, x1, False)):
        for k, s in enumerate(range(a, b, dash)):
            e = min(s + dash - 1, b)
            xy = [(s, fixed), (e, fixed)] if horizontal else [(fixed, s), (fixed, e)]
            draw.line(xy, fill=(255, 255, 255) if k % 2 == 0 else (0, 0, 0), width=1)


def source_thumbnail(image: Image.Image, item: PlannedItem, mask: ItemMask | None, size: int) -> Image.Image:
    """The whole source image fitted to ``size`` with the item's mask outline, box and crop window."""
    thumb = _fit(image, size)
    sx, sy = thumb.width / image.width, thumb.height / image.height
    if mask is not None:
        try:
            m = rle_decode(mask.mask)
        except ValueError:
            m = None
        if m is not None and m.any():
            scaled = Image.fromarray(m.astype(np.uint8) * 255).resize(thumb.size, Image.Resampling.BILINEAR)
            small = np.asarray(scaled) >= 128
            inner = small & dilate(~small, 2)  # a 2 px band inside the mask edge
            halo = dilate(small, 1) & ~small
            px = np.asarray(thumb).copy()
            px[halo] = (0, 0, 0)
            px[inner] = _MASK_COLOUR
            thumb = Image.fromarray(px)
    draw = ImageDraw.Draw(thumb)
    x0, y0, x1, y1 = item.crop
    if (x0, y0, x1, y1) != (0, 0, image.width, image.height):
        _dashed_rect(draw, [x0 * sx, y0 * sy, x1 * sx - 1, y1 * sy - 1])
    # the box is framed just outside its edges, so a mask that fills its box keeps a visible outline
    bx0, by0, bx1, by1 = (round(v * f) for v, f in zip(item.box, (sx, sy, sx, sy)))
    draw.rectangle([bx0 - 3, by0 - 3, max(bx0, bx1) + 2, max(by0, by1) + 2], outline=_BOX_COLOUR, width=2)
    return thumb


def variation_thumbnail(image: Image.Image, item: PlannedItem, source_size: tuple[int, int] | None,
                        size: int) -> Image.Image:
    """The crop window of a variation image fitted to ``size`` (scaled if the image is not at source size)."""
    w, h = source_size or image.size
    sx, sy = image.width / max(1, w), image.height / max(1, h)
    x0, y0, x1, y1 = item.crop
    box = (max(0, round(x0 * sx)), max(0, round(y0 * sy)),
           min(image.width, round(x1 * sx)), min(image.height, round(y1 * sy)))
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        box = (0, 0, image.width, image.height)
    return _fit(image.crop(box), size)


def _save_jpeg(img: Image.Image, folder: Path, name: str) -> Path:
    target = folder / name
    if target.resolve().parent != folder.resolve():  # names are flattened; never write outside the folder
        raise ConfigError(f"refusing thumbnail name {name!r}")
    img.convert("RGB").save(target, "JPEG", quality=88)
    return target


# --- HTML -----------------------------------------------------------------------------------------------


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None else (format(x, spec) if math.isfinite(x) else str(x))


def _page_name(page: int) -> str:
    return "index.html" if page == 1 else f"page-{page:04d}.html"


def _failure_html(err: Failure | None, what: str) -> str:
    if err is None:
        return f'<div class="fail"><b>{e(what)}</b></div>'
    return (f'<div class="fail"><b>{e(what)}: {e(err.stage)} / {e(err.type)}</b>'
            f'<div class="msg">{e(err.message)}</div></div>')


def _img(thumb: Thumb | None, title: str) -> str:
    if thumb is None:
        return f'<div class="noimg" title="{e(title)}">{e(title)}</div>'
    name, w, h = thumb
    return (f'<img src="thumbs/{e(name)}" width="{w}" height="{h}" alt="{e(title)}" title="{e(title)}" '
            'decoding="async">')


def _variation_card(v: PlannedVariation, thumb: Thumb | None, missing: str | None, scored: bool,
                    min_itm: float, min_iva: float) -> str:
    vid = v.id.rsplit("/", 1)[-1]
    head = (f'<div class="lab"><b class="short">{e(v.short)}</b> <span class="kind">{e(v.kind)}</span>'
            f'<span class="vid">{e(vid)}</span></div>')
    tip = f"{v.id} · seed {v.seed}\nprompt: {v.prompt}"
    if v.status != "ok":
        body = f'<div class="ph">{_failure_html(v.error, "failed")}</div>'
        caps = "".join(f"<li>{e(c)}</li>" for c in v.captions)
        return (f'<div class="var failed" data-id="{e(v.id)}" title="{e(tip)}">{body}{head}'
                f'<ol class="caps">{caps}</ol></div>')
    img = _img(thumb, missing or tip)
    itm, probs, clip = v.itm_score or [], v.itm_prob or [], v.clip_score or []
    caps = []
    for k, c in enumerate(v.captions):
        s = []
        if k < len(itm):
            s.append(f"ITM {_fmt(itm[k])}" + (f" · p {_fmt(probs[k])}" if k < len(probs) else ""))
        if k < len(clip):
            s.append(f"CLIP {_fmt(clip[k], '.1f')}")
        caps.append(f'<li>{e(c)}' + (f' <span class="s">{" · ".join(s)}</span>' if s else "") + "</li>")
    m, iva = mean_itm(v), _finite(v.iva_score)
    if v.itm_score is None and v.iva_score is None:
        scores = '<div class="sc none">not scored</div>'
    else:
        parts = [f"ITM <b>{_fmt(m)}</b>" if m is not None else "ITM not scored"]
        if probs:
            parts.append(f"p̄ {_fmt(sum(probs) / len(probs))}")
        parts.append(f"IVA <b>{_fmt(iva, '.1f')}%</b>" if iva is not None else "IVA not scored")
        if clip:
            parts.append(f"CLIP {_fmt(sum(clip) / len(clip), '.1f')}")
        note = f'<div class="note">IVA: {e(v.iva_note)}</div>' if v.iva_note else ""
        scores = f'<div class="sc">{" · ".join(parts)}</div>{note}'
    reasons = filter_reasons(v, min_itm, min_iva) if scored else []
    badges = "".join(f'<span class="badge b-{k.lower()}"{"" if k in reasons else " hidden"}>filtered ({k})</span>'
                     for k in ("ITM", "IVA"))
    data = "".join(f' data-{k}="{x!r}"' for k, x in (("itm", m), ("iva", iva)) if x is not None)
    cls = "var filtered" if reasons else "var"
    return (f'<div class="{cls}" data-id="{e(v.id)}"{data}>{img}<div class="badges">{badges}</div>{head}'
            f'<ol class="caps">{"".join(caps)}</ol>{scores}</div>')


_CSS = """
:root{--thumb:%(thumb)dpx;font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2125}
body{margin:0;background:#eef0f2}
[hidden]{display:none!important}
header.top{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid #cfd4d9;padding:8px 14px;
 display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center}
header.top h1{font-size:15px;margin:0}
.stats,.thr{color:#4a5259}
.controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap}
.controls input[type=number]{width:64px}
.count{font-weight:600;color:#245c3d}
nav.pager{padding:8px 14px;display:flex;gap:6px;flex-wrap:wrap;align-items:center}
nav.pager a,nav.pager span{padding:2px 7px;border-radius:4px;background:#fff;border:1px solid #cfd4d9;color:#23505e;text-decoration:none}
nav.pager span.cur{background:#23505e;color:#fff}
nav.pager span.off{color:#aab}
main{padding:0 14px 14px}
section.item{background:#fff;border:1px solid #d5dade;border-radius:6px;margin:10px 0;padding:8px}
section.item h2{font-size:13px;margin:0 0 6px;font-weight:500;color:#4a5259}
section.item h2 b{color:#1d2125}
.row{display:flex;gap:8px;align-items:flex-start}
.src,.var{flex:0 1 var(--thumb);min-width:150px;box-sizing:border-box;border:1px solid #d5dade;border-radius:5px;padding:4px;background:#fafbfc}
.src{background:#f1f4f7}
.row img,.noimg{display:block;width:100%%;height:auto;border-radius:3px;background:#dde}
.noimg{aspect-ratio:4/3;display:flex;align-items:center;justify-content:center;color:#7a4300;font-size:12px;text-align:center}
.lab{margin-top:3px}
.kind{font-size:11px;background:#e3e8ee;border-radius:3px;padding:0 4px;margin-left:3px}
.vid{float:right;color:#8a9299;font-size:11px}
ol.caps{margin:3px 0 2px 16px;padding:0;font-size:12px}
ol.caps .s{color:#5b6770;font-size:11px;white-space:nowrap}
.sc{font-size:12px}.sc.none,.note{color:#8a6d00;font-size:11px}
.badges{min-height:0}
.badge{display:inline-block;font-size:11px;font-weight:600;margin:3px 3px 0 0;padding:0 5px;border-radius:3px;background:#f2a33a;color:#2b1700}
.var.filtered{background:#fff4e6;border-color:#f2a33a}
.var.failed{background:repeating-linear-gradient(135deg,#f6f0f0,#f6f0f0 8px,#efe4e4 8px,#efe4e4 16px);border-color:#b55}
.ph{aspect-ratio:4/3;display:flex;align-items:center;justify-content:center;text-align:center}
.fail b{color:#8f1d1d}.fail .msg{color:#5a2a2a;font-size:12px;word-break:break-word}
.meta{font-size:11px;color:#5b6770;margin-top:3px;word-break:break-word}
details.failed-images{margin:10px 0;background:#fff;border:1px solid #d5dade;border-radius:6px;padding:6px 10px}
details.failed-images li{margin:2px 0}
.legend i{display:inline-block;width:10px;height:10px;margin:0 3px 0 8px;vertical-align:-1px}
"""

_JS = r"""
(function () {
  "use strict";
  var body = document.body, q = new URLSearchParams(location.search);
  var inItm = document.getElementById("min-itm"), inIva = document.getElementById("min-iva");
  var inHide = document.getElementById("hide"), count = document.getElementById("count");
  if (q.has("min_itm")) inItm.value = q.get("min_itm");
  if (q.has("min_iva")) inIva.value = q.get("min_iva");
  if (q.get("hide") === "1") inHide.checked = true;
  function thr(input) { var x = parseFloat(input.value); return isNaN(x) ? null : x; }
  function val(v) { return v === undefined ? null : Number(v); }
  function fails(itm, iva, mi, mv) {
    return [mi !== null && itm !== null && !(itm > mi), mv !== null && iva !== null && !(iva > mv)];
  }
  function apply() {
    if (body.dataset.scored !== "1") return;  // nothing to filter on
    var mi = thr(inItm), mv = thr(inIva), hide = inHide.checked;
    var pass = 0, painted = 0, failed = 0, unscored = 0, shown = 0;
    var cards = document.querySelectorAll(".var");
    for (var i = 0; i < cards.length; i++) {
      var c = cards[i], ok;
      if (c.classList.contains("failed")) { failed++; ok = false; }
      else if (c.dataset.itm === undefined && c.dataset.iva === undefined) { unscored++; ok = true; }
      else {
        painted++;
        var f = fails(val(c.dataset.itm), val(c.dataset.iva), mi, mv);
        c.querySelector(".b-itm").hidden = !f[0];
        c.querySelector(".b-iva").hidden = !f[1];
        c.classList.toggle("filtered", f[0] || f[1]);
        ok = !(f[0] || f[1]);
        if (ok) pass++;
      }
      c.hidden = hide && !ok;
      if (!c.hidden) shown++;
    }
    var text = "this page: " + pass + " of " + painted + " scored variations pass" +
      (failed ? " (" + failed + " failed)" : "") + (unscored ? " (" + unscored + " not scored)" : "") +
      "; " + shown + " cards shown";
    var all = window.GALLERY_SCORES;
    if (all) {
      var runPass = 0;
      for (var k = 0; k < all.length; k++) {
        var g = fails(all[k][0], all[k][1], mi, mv);
        if (!(g[0] || g[1])) runPass++;
      }
      text += " · run: " + runPass + " of " + all.length + " pass";
    }
    count.textContent = text;
    var params = new URLSearchParams();
    if (inItm.value !== "") params.set("min_itm", inItm.value);
    if (inIva.value !== "") params.set("min_iva", inIva.value);
    if (hide) params.set("hide", "1");
    var links = document.querySelectorAll("a[data-page]");
    for (var j = 0; j < links.length; j++) links[j].href = links[j].dataset.page + "?" + params.toString();
  }
  document.getElementById("reset").addEventListener("click", function () {
    inItm.value = body.dataset.minItm; inIva.value = body.dataset.minIva; inHide.checked = false; apply();
  });
  [inItm, inIva, inHide].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  apply();
})();
"""


def _pager(page: int, pages: int) -> str:
    def link(p: int, text: str) -> str:
        return f'<a href="{_page_name(p)}" data-page="{_page_name(p)}">{text}</a>'

    parts = [link(page - 1, "← prev") if page > 1 else '<span class="off">← prev</span>']
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    last = 0
    for p in shown:
        if p - last > 1:
            parts.append('<span class="off">…</span>')
        parts.append(f'<span class="cur">{p}</span>' if p == page else link(p, str(p)))
        last = p
    parts.append(link(page + 1, "next →") if page < pages else '<span class="off">next →</span>')
    return f'<nav class="pager">{"".join(parts)}<span class="off">page {page} of {pages}</span></nav>'


# --- contact sheet --------------------------------------------------------------------------------------


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # older Pillow / no FreeType: the bitmap font
        return ImageFont.load_default()


def _draw_text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font, width: int, fill) -> None:
    text = text.replace("\n", " ")
    try:
        while text and draw.textlength(text, font=font) > width:
            text = text[:-2] + "…" if len(text) > 2 else ""
        draw.text(xy, text, font=font, fill=fill)
    except (UnicodeEncodeError, ValueError):  # a glyph the font cannot draw
        _draw_text(draw, xy, text.encode("ascii", "replace").decode(), font, width, fill)


def _contact_sheet(rows: list[tuple[str, Path | None, list[SheetCell]]], total_items: int) -> Image.Image:
    """One row per item: ``(label, source thumbnail, [(label, variation thumbnail, status)])``; labels are
    ``"first line\nsecond line"``; status is ok, filtered or failed."""
    pad, label, title_h = 4, 30, 22
    cols = 1 + max((len(r[2]) for r in rows), default=0)
    loaded: list[list[tuple[str, Image.Image | None, str]]] = []
    for name, src, variations in rows:
        cells = []
        for text, path, status in [(name, src, "source")] + variations:
            im = None
            if path is not None:
                try:
                    with Image.open(path) as raw:
                        im = _fit(raw.convert("RGB"), CONTACT_CELL)
                except OSError:
                    im = None
            cells.append((text, im, status))
        loaded.append(cells)
    heights = [max([im.height for _, im, _ in cells if im is not None] or [CONTACT_CELL * 3 // 4]) for cells in loaded]
    cell_w = CONTACT_CELL + pad
    size = (cols * cell_w + pad, title_h + sum(h + label + pad for h in heights) + pad)
    sheet = Image.new("RGB", size, (238, 240, 242))
    draw = ImageDraw.Draw(sheet)
    font, small = _font(12), _font(11)
    more = f" (first {len(rows)} of {total_items} items)" if total_items > len(rows) else ""
    _draw_text(draw, (pad, 4), f"genemi gallery: source with mask outline, then variations{more}", font,
               sheet.width - 2 * pad, (30, 33, 37))
    status_colour = {"ok": (60, 170, 90), "filtered": (242, 163, 58), "failed": (150, 150, 150)}
    y = title_h
    for cells, h in zip(loaded, heights):
        for c, (text, im, status) in enumerate(cells):
            x = pad + c * cell_w
            draw.rectangle([x, y, x + CONTACT_CELL - 1, y + h - 1], fill=(221, 221, 230))
            if im is not None:
                sheet.paste(im, (x + (CONTACT_CELL - im.width) // 2, y + (h - im.height) // 2))
            else:
                _draw_text(draw, (x + 6, y + h // 2 - 7), "failed" if status == "failed" else "no image",
                           font, CONTACT_CELL - 12, (143, 29, 29))
            if status != "source":
                draw.rectangle([x, y + h, x + CONTACT_CELL - 1, y + h + 3], fill=status_colour[status])
            lines = text.split("\n", 1)
            _draw_text(draw, (x + 2, y + h + 4), lines[0], font, CONTACT_CELL - 4, (30, 33, 37))
            if len(lines) > 1:
                _draw_text(draw, (x + 2, y + h + 17), lines[1], small, CONTACT_CELL - 4, (90, 98, 105))
        y += h + label + pad
    return sheet


# --- the gallery ----------------------------------------------------------------------------------------

@dataclass
class _Writer:
    """Renders items into HTML sections, writing thumbnails and collecting contact-sheet rows and counts."""

    out: Path
    inp: Path
    thumbs: Path
    masks: dict[str, ItemMask]
    thumb_size: int
    min_itm: float
    min_iva: float
    sheet_max: int
    written: set[str] = field(default_factory=set)
    unreadable: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict(variations=0, painted=0, failed=0, passing=0))
    sheet: list[tuple[str, Path | None, list[SheetCell]]] = field(default_factory=list)
    _source: tuple[str, Image.Image | ImageError] | None = None

    def thumb(self, img: Image.Image, record_id: str, suffix: str) -> Thumb:
        name = thumb_name(record_id, suffix)
        _save_jpeg(img, self.thumbs, name)
        self.written.add(name)
        return name, img.width, img.height

    def source(self, rec: VariationPlan) -> Image.Image | ImageError:
        """The decoded source image (one kept: an image's items are consecutive), or why it cannot be read."""
        if self._source is None or self._source[0] != rec.id:
            try:
                self._source = (rec.id, load_rgb(self.inp / rec.image))
            except ImageError as exc:
                self._source = (rec.id, exc)
                self.unreadable.append(f"{rec.id}: {exc}")
        return self._source[1]

    def item(self, rec: VariationPlan, item: PlannedItem, scored: bool) -> str:
        src, mask = self.source(rec), self.masks.get(item.id)
        if isinstance(src, Image.Image):
            drawn = source_thumbnail(src, item, mask, self.thumb_size)
            src_thumb: Thumb | None = self.thumb(drawn, item.id, ".src.jpg")
            src_size = src.size
        else:
            src_thumb, src_size = None, (rec.width, rec.height) if rec.width and rec.height else None
        meta = [f"box {', '.join(f'{x:.0f}' for x in item.box)}", f"crop {', '.join(map(str, item.crop))}"]
        if mask is not None:
            meta.insert(0, f"box score {mask.box_score:.2f} · mask {mask.mask_score:.2f} · area {mask.area} px")
        cards = [f'<div class="src">{_img(src_thumb, rec.image if src_thumb else f"source image unreadable: {src}")}'
                 f'<div class="lab"><b>{e(item.item)}</b> <span class="kind">source</span></div>'
                 f'<div class="meta">{"<br>".join(e(x) for x in meta)}</div></div>']
        cells = [self.variation(v, item, src_size, scored, cards) for v in item.variations]
        if not item.variations:
            cards.append(f'<div class="var failed">{_failure_html(item.error, "item failed")}</div>'
                         if item.status != "ok" else '<div class="meta">no variations planned</div>')
        if len(self.sheet) < self.sheet_max:
            self.sheet.append((f"{item.item}\n{item.id}", self.thumbs / src_thumb[0] if src_thumb else None, cells))
        note = f' · <span class="note">{e(item.note)}</span>' if item.note else ""
        fail = f' · <span class="fail"><b>{e(item.error)}</b></span>' if item.status != "ok" and item.error else ""
        caption = f" · “{e(rec.caption)}”" if rec.caption else ""
        return (f'<section class="item" id="{e(item.id)}"><h2><b>{e(item.id)}</b> · {e(item.item)}{caption}'
                f' · <span class="kind">{e(item.backend)}</span>{note}{fail}</h2>'
                f'<div class="row">{"".join(cards)}</div></section>')

    def variation(self, v: PlannedVariation, item: PlannedItem, src_size: tuple[int, int] | None, scored: bool,
                  cards: list[str]) -> SheetCell:
        """Append the variation's card to ``cards``; returns its contact-sheet cell."""
        self.counts["variations"] += 1
        if v.status != "ok":
            self.counts["failed"] += 1
            cards.append(_variation_card(v, None, None, scored, self.min_itm, self.min_iva))
            return f"{v.short}\nfailed: {v.error.type if v.error else 'error'}", None, "failed"
        self.counts["painted"] += 1
        reasons = filter_reasons(v, self.min_itm, self.min_iva) if scored else []
        self.counts["passing"] += scored and not reasons
        thumb, missing = None, None
        if v.image is None:
            missing = "no image recorded"
        else:
            try:
                img = variation_thumbnail(load_rgb(self.out / v.image), item, src_size, self.thumb_size)
                thumb = self.thumb(img, v.id, ".jpg")
            except ImageError as exc:
                missing = f"variation image unreadable: {exc}"
                self.unreadable.append(f"{v.id}: {exc}")
        cards.append(_variation_card(v, thumb, missing, scored, self.min_itm, self.min_iva))
        if reasons:
            sub = f"filtered ({', '.join(reasons)})"
        else:
            sub = f"ITM {_fmt(mean_itm(v))} · IVA {_fmt(_finite(v.iva_score), '.1f')}" if scored else "not scored"
        return f"{v.short}\n{sub}", self.thumbs / thumb[0] if thumb else None, "filtered" if reasons else "ok"


def build_gallery(output_dir: str | Path, input_dir: str | Path | None = None, gallery_dir: str | Path | None = None,
                  *, items_per_page: int = 50, thumb_size: int = 256, min_itm: float = DEFAULT_MIN_ITM,
                  min_iva: float = DEFAULT_MIN_IVA, contact_sheet_rows: int = CONTACT_SHEET_MAX_ROWS) -> GallerySummary:
    """Write the gallery of the run in ``output_dir`` (see the module docstring); returns what was written."""
    out = Path(output_dir)
    if not out.is_dir():
        raise ConfigError(f"--output-dir {out} is not a folder")
    if items_per_page < 1:
        raise ConfigError(f"--items-per-page must be at least 1, not {items_per_page}")
    if not 32 <= thumb_size <= 2048:
        raise ConfigError(f"--thumb-size must be between 32 and 2048, not {thumb_size}")
    if contact_sheet_rows < 0:
        raise ConfigError(f"--contact-sheet-rows must be 0 (no sheet) or more, not {contact_sheet_rows}")
    for name, x in (("--min-itm", min_itm), ("--min-iva", min_iva)):
        if not math.isfinite(x):
            raise ConfigError(f"{name} must be a finite number, not {x}")
    inp = Path(input_dir) if input_dir is not None else _input_dir_from_summary(out)
    if not inp.is_dir():
        raise ConfigError(f"source image folder {inp} not found (give --input-dir)")
    gdir = Path(gallery_dir) if gallery_dir is not None else out / "gallery"
    if gdir.resolve() in (out.resolve(), inp.resolve()):
        raise ConfigError(f"--gallery-dir {gdir} must be its own folder, not the run or the image folder")

    plans, unscored_ids, scored = _load_plans(out)
    thumbs = gdir / "thumbs"
    try:
        thumbs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the gallery folder {thumbs}: {exc.strerror or exc}") from exc
    writer = _Writer(out, inp, thumbs, _load_masks(out), thumb_size, min_itm, min_iva, contact_sheet_rows)
    items = [(rec, item) for rec in plans if rec.status == "ok" for item in rec.items]
    failed_images = [rec for rec in plans if rec.status != "ok"]
    pages = max(1, math.ceil(len(items) / items_per_page))
    stats = _stats_line(plans, items, unscored_ids, scored)
    for page in range(1, pages + 1):
        chunk = items[(page - 1) * items_per_page: page * items_per_page]
        sections = [writer.item(rec, item, scored and rec.id not in unscored_ids) for rec, item in chunk]
        page_html = _page(page, pages, sections, stats, failed_images if page == 1 else [], out, scored,
                          min_itm, min_iva, len(items), items_per_page)
        write_atomic(gdir / _page_name(page), page_html.encode("utf-8"))

    run_scores = [[_json_num(mean_itm(v)), _json_num(_finite(v.iva_score))] for rec, item in items
                  if rec.id not in unscored_ids for v in item.variations if v.status == "ok"]
    write_atomic(gdir / "gallery.css", (_CSS % {"thumb": thumb_size}).encode("utf-8"))
    write_atomic(gdir / "gallery.js", _JS.encode("utf-8"))
    write_atomic(gdir / "run-scores.js",
                 f"window.GALLERY_SCORES={json.dumps(run_scores, separators=(',', ':'))};\n".encode("utf-8"))
    _remove_stale(gdir, thumbs, pages, writer.written)
    sheet_path = None
    if contact_sheet_rows and writer.sheet:
        buf = io.BytesIO()
        _contact_sheet(writer.sheet, len(items)).save(buf, "PNG", optimize=True)
        sheet_path = gdir / "contact_sheet.png"
        write_atomic(sheet_path, buf.getvalue())
    c = writer.counts
    return GallerySummary(index=gdir / "index.html", gallery_dir=gdir, pages=pages, images=len(plans),
                          failed_images=len(failed_images), items=len(items), variations=c["variations"],
                          painted=c["painted"], failed_variations=c["failed"], passing=c["passing"], scored=scored,
                          unscored_images=len(unscored_ids), thumbnails=len(writer.written), contact_sheet=sheet_path,
                          contact_sheet_rows=len(writer.sheet), unreadable=writer.unreadable)


def _json_num(x: float | None) -> float | None:
    if x is None:
        return None
    return round(x, 6) if math.isfinite(x) else -1e308  # JSON has no -inf: fails every threshold


def _stats_line(plans: list[VariationPlan], items: list, unscored: set[str], scored: bool) -> str:
    failed = sum(r.status != "ok" for r in plans)
    variations = [v for _, it in items for v in it.variations]
    bad = sum(v.status != "ok" for v in variations)
    if not scored:
        how = "not scored (no scores.jsonl)"
    elif unscored:
        how = f"scored: {len(plans) - len(unscored)} of {len(plans)} images (the rest not scored yet)"
    else:
        how = "scored"
    return (f"{len(plans)} images ({failed} failed upstream) · {len(items)} items · {len(variations)} variations "
            f"({len(variations) - bad} painted, {bad} failed) · {how}")


def _page(page: int, pages: int, sections: list[str], stats: str, failed_images: list[VariationPlan], out: Path,
          scored: bool, min_itm: float, min_iva: float, n_items: int, per_page: int) -> str:
    first = (page - 1) * per_page + 1
    shown = f"items {first}–{first + len(sections) - 1} of {n_items}" if sections else "no items"
    disabled = "" if scored else " disabled"
    failed = ""
    if failed_images:
        rows = "".join(f"<li><b>{e(r.id)}</b>: {e(f'{r.error.stage} / {r.error.type}: {r.error.message}')}</li>"
                       if r.error else f"<li><b>{e(r.id)}</b>: failed</li>" for r in failed_images)
        failed = (f'<details class="failed-images"><summary>{len(failed_images)} image(s) failed before painting'
                  f'</summary><ul>{rows}</ul></details>')
    body = "".join(sections) or '<p>No items in this run.</p>'
    pager = _pager(page, pages)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>genemi gallery: {e(out.name)} ({page}/{pages})</title><link rel="stylesheet" href="gallery.css"></head>
<body data-min-itm="{min_itm!r}" data-min-iva="{min_iva!r}" data-scored="{int(scored)}">
<header class="top"><h1>genemi gallery: {e(out.name)}</h1><span class="stats">{e(stats)} · {e(shown)}</span>
<span class="thr">export filters: mean ITM logit &gt; <b>{min_itm:g}</b> · IVA &gt; <b>{min_iva:g}%</b></span>
<span class="controls"><label>min ITM <input type="number" id="min-itm" step="0.1" value="{min_itm!r}"{disabled}></label>
<label>min IVA % <input type="number" id="min-iva" step="1" value="{min_iva!r}"{disabled}></label>
<label><input type="checkbox" id="hide"{disabled}> hide filtered &amp; failed</label>
<button type="button" id="reset"{disabled}>export filters</button>
<span class="count" id="count">{'' if scored else 'run not scored: filters inactive'}</span></span>
<span class="legend"><i style="background:#00ebff"></i>mask <i style="background:#ff00c8"></i>box
<i style="border:1px dashed #555"></i>crop window (variations show this region)</span></header>
{pager}<main>{failed}{body}</main>{pager}
<script src="run-scores.js"></script><script src="gallery.js"></script>
</body></html>
"""


def _remove_stale(gdir: Path, thumbs: Path, pages: int, written: set[str]) -> None:
    """Pages and thumbnails an earlier, larger gallery left (only files named as this module names them)."""
    keep = {_page_name(p) for p in range(1, pages + 1)}
    for path in gdir.glob("page-*.html"):
        if _PAGE_RE.fullmatch(path.name) and path.name not in keep:
            path.unlink()
    for path in thumbs.glob("*.jpg"):
        if _THUMB_RE.fullmatch(path.name) and path.name not in written:
            path.unlink()


# --- command --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genemi generate gallery",
        description="Static HTML gallery (paged, filterable by score in the page) and a PNG contact sheet of a "
        "generation run: each item's source with its mask outline and box, then its variations (crop window) "
        "with labels, captions, ITM, IVA and CLIPScore; failed and filtered variations marked.")
    p.add_argument("--output-dir", required=True, help="the run's output folder (scores.jsonl or variations.jsonl)")
    p.add_argument("--input-dir", default=None,
                   help="source image root (default: config.input_dir of OUTPUT_DIR/run_summary.json)")
    p.add_argument("--gallery-dir", default=None, help="where to write the gallery (default: OUTPUT_DIR/gallery)")
    p.add_argument("--items-per-page", type=int, default=50, help="items per HTML page (default: 50)")
    p.add_argument("--thumb-size", type=int, default=256, help="thumbnail size in pixels, longest side (default: 256)")
    p.add_argument("--min-itm", type=float, default=DEFAULT_MIN_ITM,
                   help="export filter shown and pre-set in the page: minimum mean raw ITM logit "
                   f"(default: {DEFAULT_MIN_ITM})")
    p.add_argument("--min-iva", type=float, default=DEFAULT_MIN_IVA,
                   help=f"export filter shown and pre-set in the page: minimum IVA in %% (default: {DEFAULT_MIN_IVA})")
    p.add_argument("--contact-sheet-rows", type=int, default=CONTACT_SHEET_MAX_ROWS,
                   help=f"items (rows) in contact_sheet.png, the first ones; 0: no sheet "
                   f"(default: {CONTACT_SHEET_MAX_ROWS})")
    return p


def print_summary(s: GallerySummary) -> None:
    print(f"gallery: {s.index} ({s.items} items on {s.pages} page(s); {s.images} images, {s.failed_images} failed "
          f"upstream; {s.variations} variations: {s.painted} painted, {s.failed_variations} failed"
          + (f", {s.passing} pass the export filters" if s.scored else ", not scored") + ")")
    if s.contact_sheet:
        print(f"contact sheet: {s.contact_sheet} ({s.contact_sheet_rows} of {s.items} items)")
    if s.unreadable:
        print(f"warning: {len(s.unreadable)} image(s) could not be read (placeholders shown), e.g. {s.unreadable[0]}",
              file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from genemi.cli import run_tool

    return run_tool("genemi generate gallery", build_parser(), argv, lambda a: build_gallery(
        a.output_dir, a.input_dir, a.gallery_dir, items_per_page=a.items_per_page, thumb_size=a.thumb_size,
        min_itm=a.min_itm, min_iva=a.min_iva, contact_sheet_rows=a.contact_sheet_rows), print_summary)


if __name__ == "__main__":
    raise SystemExit(main())
