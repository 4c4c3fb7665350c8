"""``contact_sheet.png``: one row per item (the first ones): the source thumbnail with its outline, then the
variations with their short labels and a status strip (green passes, orange filtered, grey failed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

from genemi.generation_pipeline.gallery.loading import Row, filter_reasons, fmt
from genemi.generation_pipeline.gallery.thumbnails import ItemThumbs, Thumb, fit, settings_key
from genemi.score_filters import DEFAULT_IVA_SCOPE, iva_of

#: rows (items) of the PNG contact sheet; a run with more items shows its first ones
CONTACT_SHEET_MAX_ROWS = 40
#: side of one contact-sheet cell in pixels (the label strip comes below it)
CONTACT_CELL = 160

#: a contact-sheet cell: (label "line 1\nline 2", thumbnail path or None, status source/ok/filtered/failed)
SheetCell = tuple[str, Path | None, str]
#: a contact-sheet row: the source cell, then one per variation
SheetRow = list[SheetCell]

_STATUS_COLOUR = {"ok": (60, 170, 90), "filtered": (242, 163, 58), "failed": (150, 150, 150)}


def sheet_row(row: Row, thumbs: ItemThumbs, folder: Path, min_itm: float, min_iva: float,
              iva_scope: str = DEFAULT_IVA_SCOPE) -> SheetRow:
    """The cells of one item: its source, then its variations (labels, thumbnail files under ``folder``)."""
    item = row.item

    def path(thumb: Thumb | str | None) -> Path | None:
        return folder / thumb.name if isinstance(thumb, Thumb) else None

    cells: SheetRow = [(f"{item.item}\n{item.id}", path(thumbs.source), "source")]
    for v in item.variations:
        if v.status != "ok":
            cells.append((f"{v.short}\nfailed: {v.error.type if v.error else 'error'}", None, "failed"))
            continue
        reasons = filter_reasons(v, min_itm, min_iva, iva_scope) if row.scored else []
        if reasons:
            sub = f"filtered ({', '.join(reasons)})"
        else:
            sub = f"ITM {fmt(v.mean_itm)} · IVA {fmt(iva_of(v, iva_scope), '.1f')}" if row.scored else "not scored"
        cells.append((f"{v.short}\n{sub}", path(thumbs.variations.get(v.id)), "filtered" if reasons else "ok"))
    return cells


def sheet_key(rows: list[SheetRow], total_items: int, key_of: Callable[[str], str | None]) -> str | None:
    """What the sheet is drawn from: its labels, statuses and the keys of its thumbnails (``key_of`` a thumbnail
    file name); None when a thumbnail has no key. The sheet is drawn again only when this changes."""
    parts: list = ["contact sheet", CONTACT_CELL, total_items]
    for cells in rows:
        for text, path, status in cells:
            key = None if path is None else key_of(path.name)
            if path is not None and key is None:
                return None
            parts.append([text, status, key])
    return settings_key(*parts)


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


def _load(path: Path | None) -> Image.Image | None:
    if path is None:
        return None
    try:
        with Image.open(path) as raw:
            return fit(raw.convert("RGB"), CONTACT_CELL)
    except OSError:
        return None


def contact_sheet(rows: list[SheetRow], total_items: int) -> Image.Image:
    """One row per item (see :func:`sheet_row`); the title says when the run has more items than rows."""
    pad, label, title_h = 4, 30, 22
    cols = max((len(r) for r in rows), default=1)
    loaded = [[(text, _load(path), status) for text, path, status in cells] for cells in rows]
    heights = [max([im.height for _, im, _ in cells if im is not None] or [CONTACT_CELL * 3 // 4]) for cells in loaded]
    cell_w = CONTACT_CELL + pad
    size = (cols * cell_w + pad, title_h + sum(h + label + pad for h in heights) + pad)
    sheet = Image.new("RGB", size, (238, 240, 242))
    draw = ImageDraw.Draw(sheet)
    font, small = _font(12), _font(11)
    more = f" (first {len(rows)} of {total_items} items)" if total_items > len(rows) else ""
    _draw_text(draw, (pad, 4), f"genemi gallery: source with mask outline, then variations{more}", font,
               sheet.width - 2 * pad, (30, 33, 37))
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
                draw.rectangle([x, y + h, x + CONTACT_CELL - 1, y + h + 3], fill=_STATUS_COLOUR[status])
            lines = text.split("\n", 1)
            _draw_text(draw, (x + 2, y + h + 4), lines[0], font, CONTACT_CELL - 4, (30, 33, 37))
            if len(lines) > 1:
                _draw_text(draw, (x + 2, y + h + 17), lines[1], small, CONTACT_CELL - 4, (90, 98, 105))
        y += h + label + pad
    return sheet


def contact_sheet_png(rows: list[SheetRow], total_items: int) -> bytes:
    buf = io.BytesIO()
    contact_sheet(rows, total_items).save(buf, "PNG", optimize=True)
    return buf.getvalue()
