"""``genemi generate gallery``: a static HTML gallery and a PNG contact sheet of a generation run.

Reads the score stage's manifest (``scores.jsonl``; images it does not hold yet are taken from the inpaint
stage's ``variations.jsonl`` and shown as "not scored"; without scores everything is) and the segment stage's
``masks.jsonl``, and writes under ``--gallery-dir`` (default ``<output-dir>/gallery``), never elsewhere:

* ``index.html``, ``page-0002.html``, ...: ``--items-per-page`` items per page, one row per item: the source
  image with the item's mask outline (cyan, dark halo), its box (magenta) and the inpainting crop window
  (dashed white), then the item's variations side by side. Variation thumbnails show the **crop window**
  (the region the inpainting stage repainted; the rest of a variation image is the source). Each card has the
  short label, the edit kind, the rewritten captions with their BLIP ITM raw logit and probability, the mean
  logit, IVA (and its note), CLIPScore when scored; failed variations are placeholder cards with the failure's
  stage, type and message; variations below the export thresholds (``--min-itm`` on the mean raw ITM logit,
  ``--min-iva`` on IVA in %) are marked "filtered (ITM)" / "filtered (IVA)". A variation without a score is
  never marked. The pager links the first and last pages, the neighbours and pages 10, 100 and 1000 away.
* ``gallery.css``, ``gallery.js`` (plain JS, no network), the only files every page loads: min ITM / min IVA
  inputs start at the export thresholds (or ``?min_itm=..&min_iva=..&hide=1`` in the URL), re-mark the
  cards, optionally hide what does not pass, and count what passes on the page (from the cards' data) and in
  the whole run (precomputed for the export thresholds, else counted from ``data/scores-*.js``, loaded then);
  a page box (or ``#page=N`` in the URL) jumps to any page; a search box (or ``?q=...``) searches image ids,
  item ids and labels, captions, short labels and rewritten captions of the whole run in ``data/search-*.js``,
  loaded on the first search, and links each hit's page and card.
* ``thumbs/*.jpg``: thumbnails fitted to ``--thumb-size`` px, names flattened from the ids plus a hash;
  ``thumbs.json`` records what each was made from, so that a rerun reuses the unchanged ones.
* ``contact_sheet.png``: one row per item (the first :data:`CONTACT_SHEET_MAX_ROWS`): source with outline,
  then the variations with their short labels and a status strip (green passes, orange filtered, grey
  failed).

Every text from the data (ids, captions, labels, messages: model output) is HTML-escaped by the templates'
autoescaping and set as text by the page's JS. Pages and the contact sheet are written atomically; rerunning
replaces the gallery (stale pages, data files and thumbnails of an earlier run are removed).

Modules: :mod:`.loading` (manifests to rows), :mod:`.thumbnails`, :mod:`.rendering` (pages, from ``templates/``
and ``static/``), :mod:`.shards` (the data pages load on demand), :mod:`.contact_sheet` and :mod:`.command`.
"""

from genemi.generation_pipeline.gallery.command import GallerySummary, build_gallery, build_parser, main, print_summary
from genemi.generation_pipeline.gallery.contact_sheet import CONTACT_CELL, CONTACT_SHEET_MAX_ROWS
from genemi.generation_pipeline.gallery.loading import filter_reasons
from genemi.generation_pipeline.gallery.thumbnails import source_thumbnail, thumb_name, variation_thumbnail

__all__ = ["CONTACT_CELL", "CONTACT_SHEET_MAX_ROWS", "GallerySummary", "build_gallery", "build_parser",
           "filter_reasons", "main", "print_summary", "source_thumbnail", "thumb_name", "variation_thumbnail"]
