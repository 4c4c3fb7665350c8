"""The ``score`` stage: ``variations.jsonl`` -> ``scores.jsonl``, the same plan with every painted variation
scored.

Per painted variation (``status`` ok, ``image`` set by ``inpaint``), on the *variation* image
(``<output dir>/<image>``; the original scored the source image by mistake):

* ``itm_score``: the BLIP ITM head's raw "match" logit per caption (the original's ``itm_score``; filters
  compare its mean with ``--itm-threshold``, default 0), and ``itm_prob``, its softmax probability;
* ``clip_score`` (only with ``--clip-score-model``): ``100 * max(cos, 0)`` per caption (torchmetrics'
  convention; Hessel et al. use 2.5 instead of 100);
* ``iva_image`` and ``iva_window``: the item's image variation area in percent, computed over the item's
  painted, readable siblings, over the whole image (the original's definition) and over the item's ``crop``
  window, stored on each of them (see :mod:`genemi.variation_area`); ``iva_note`` says when it is degenerate (a
  group of one has IVA 0) or computed over only some of the siblings.

A variation without captions gets ``itm_score == []`` (and ``itm_prob``/``clip_score`` ``[]``): its mean ITM
is undefined, so ITM filters drop it; it still counts as a sibling for IVA. A missing or unreadable
variation image fails that variation only (stage ``score``); records, items and variations that failed
upstream are carried unchanged. Images are read, IVA computed and model inputs preprocessed in the reader
thread; one batched ITM call (and one CLIPScore call) covers every (variation, caption) pair of a batch.
"""

from __future__ import annotations

from genemi.errors import GenemiError
from genemi.generation_pipeline.scoring.matching import MatchingStage, Prepared
from genemi.generation_pipeline.stage import StageItem
from genemi.records import Failure, PlannedVariation, VariationPlan
from genemi.variation_area import sibling_iva


def painted(rec: VariationPlan) -> list[tuple]:
    """``(item, variation)`` of every variation this stage scores: ok record, ok item, ok variation."""
    if rec.status != "ok":
        return []
    return [(item, var) for item in rec.items if item.status == "ok" for var in item.variations if var.status == "ok"]


class ScoreStage(MatchingStage):
    name = "score"

    # --- reader thread ----------------------------------------------------------------------------------

    def prepare(self, item: StageItem[VariationPlan]) -> Prepared:
        rec = item.record
        out = Prepared()
        for plan, var in painted(rec):
            self.read(out, var.id, var.image, "the variation has no image (not painted)")
        for plan in rec.items:
            siblings = [out.images[out.ids.index(v.id)] for v in plan.variations if v.id in out.ids]
            if not siblings:
                continue
            try:
                out.iva[plan.id] = sibling_iva(siblings, plan.crop, self.config.iva_pixel_threshold,
                                               planned=len(plan.variations))
            except GenemiError as exc:  # e.g. siblings of different sizes: none of them can be compared
                for var in plan.variations:
                    if var.id in out.ids:
                        out.failures[var.id] = Failure.from_exception(self.name, exc)
        return self.preprocess(out)

    # --- model ------------------------------------------------------------------------------------------

    def process(self, items: list[StageItem[VariationPlan]]) -> None:
        captions = {var.id: var.captions for item in items for _, var in painted(item.record)}
        scores = self.match(items, captions)
        for item in items:
            item.result = {vid: scores[vid] for vid in item.prepared.ids}

    # --- writer thread ----------------------------------------------------------------------------------

    def build(self, item: StageItem[VariationPlan]) -> VariationPlan:
        rec, prep = item.record, item.prepared
        items = []
        for plan in rec.items:
            if plan.status != "ok":
                items.append(plan)
                continue
            iva = prep.iva.get(plan.id, (None, None, None))
            variations = [self._scored(var, prep, item.result, iva) for var in plan.variations]
            items.append(plan.model_copy(update={"variations": variations}))
        return rec.model_copy(update={"items": items})

    def _scored(self, var: PlannedVariation, prep: Prepared, scores: dict, iva: tuple) -> PlannedVariation:
        if var.status != "ok":
            return var
        if var.id in prep.failures:
            return var.model_copy(update={"status": "failed", "error": prep.failures[var.id]})
        if var.id not in scores:  # cannot happen: every ok variation was scored or failed above
            return var.model_copy(update={"status": "failed", "error": Failure(stage=self.name, type="not_scored",
                                                                               message="not scored")})
        iva_image, iva_window, note = iva
        return var.model_copy(update={**scores[var.id], "iva_image": iva_image, "iva_window": iva_window,
                                      "iva_note": note})
