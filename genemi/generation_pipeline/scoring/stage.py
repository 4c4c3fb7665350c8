"""The ``score`` stage: ``variations.jsonl`` -> ``scores.jsonl``, the same plan with every painted variation
scored.

Per painted variation (``status`` ok, ``image`` set by ``inpaint``), on the *variation* image
(``<output dir>/<image>``; the original scored the source image by mistake):

* ``itm_score``: the BLIP ITM head's raw "match" logit per caption (the original's ``itm_score``; filters
  compare its mean with ``--itm-threshold``, default 0), and ``itm_prob``, its softmax probability;
* ``clip_score`` (only with ``--clip-score-model``): ``100 * max(cos, 0)`` per caption (torchmetrics'
  convention; Hessel et al. use 2.5 instead of 100);
* ``iva_score``: the item's image variation area in percent, computed over the item's painted, readable
  siblings on its aligned ``crop`` window and stored on each of them (see :mod:`.iva`); ``iva_note`` says
  when it is degenerate (a group of one has IVA 0) or computed over only some of the siblings.

A variation without captions gets ``itm_score == []`` (and ``itm_prob``/``clip_score`` ``[]``): its mean ITM
is undefined, so ITM filters drop it; it still counts as a sibling for IVA. A missing or unreadable
variation image fails that variation only (stage ``score``); records, items and variations that failed
upstream are carried unchanged. Images are read, IVA computed and model inputs preprocessed in the reader
thread; one batched ITM call (and one CLIPScore call) covers every (variation, caption) pair of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from genemi.errors import GenemiError
from genemi.generation_pipeline.scoring.clip_score import ClipScorer
from genemi.variation_area import sibling_iva
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.images import load_rgb
from genemi.records import Failure, PlannedVariation, VariationPlan


@dataclass
class Prepared:
    """One record's inputs: the scored variations' ids in order with their model inputs, failures, IVA."""

    ids: list[str] = field(default_factory=list)  # variations to score, in record order
    itm_pixels: object = None  # the ITM model's pixel_values of ``ids`` (a tensor) or the PIL images
    clip_pixels: object = None
    failures: dict[str, Failure] = field(default_factory=dict)  # variation id -> why it failed here
    iva: dict[str, tuple[float, str | None]] = field(default_factory=dict)  # item id -> (IVA, note)


def painted(rec: VariationPlan) -> list[tuple]:
    """``(item, variation)`` of every variation this stage scores: ok record, ok item, ok variation."""
    if rec.status != "ok":
        return []
    return [(item, var) for item in rec.items if item.status == "ok" for var in item.variations if var.status == "ok"]


class ScoreStage(Stage):
    name = "score"

    def __init__(self, config, context) -> None:
        super().__init__(config, context)
        self.clip = ClipScorer.from_config(config, context)

    def check(self) -> None:
        super().check()
        if self.clip is not None:
            self.clip.check()

    def load(self) -> None:
        super().load()
        if self.clip is not None:
            self.clip.load()

    def offload(self) -> None:
        super().offload()
        if self.clip is not None:
            self.clip.offload()

    def _failure(self, kind: str, message: str) -> Failure:
        return Failure(stage=self.name, type=kind, message=message)

    # --- reader thread ----------------------------------------------------------------------------------

    def prepare(self, item: StageItem[VariationPlan]) -> Prepared:
        rec = item.record
        out = Prepared()
        images = []
        by_item: dict[str, list] = {}
        for plan, var in painted(rec):
            if not var.image:
                out.failures[var.id] = self._failure("no_image", "the variation has no image (not painted)")
                continue
            try:
                img = load_rgb(self.context.output_dir / var.image)
            except GenemiError as exc:
                out.failures[var.id] = Failure.from_exception(self.name, exc)
                continue
            out.ids.append(var.id)
            images.append(img)
            by_item.setdefault(plan.id, []).append(img)
        for plan in rec.items:
            if plan.id not in by_item:
                continue
            try:
                out.iva[plan.id] = sibling_iva(by_item[plan.id], plan.crop, self.config.iva_pixel_threshold,
                                               planned=len(plan.variations))
            except GenemiError as exc:  # e.g. siblings of different sizes: none of them can be compared
                for var in plan.variations:
                    if var.id in out.ids:
                        out.failures[var.id] = Failure.from_exception(self.name, exc)
        keep = [k for k, vid in enumerate(out.ids) if vid not in out.failures]
        out.ids, images = [out.ids[k] for k in keep], [images[k] for k in keep]
        preprocess = getattr(self.backend, "preprocess", None)
        out.itm_pixels = preprocess(images) if preprocess is not None else images
        out.clip_pixels = self.clip.preprocess(images) if self.clip is not None else None
        return out

    # --- model ------------------------------------------------------------------------------------------

    def process(self, items: list[StageItem[VariationPlan]]) -> None:
        import torch

        captions = {var.id: var.captions for item in items for _, var in painted(item.record)}
        ids = [vid for item in items for vid in item.prepared.ids]
        texts = [captions[vid] for vid in ids]

        def joined(parts: list):
            parts = [p for p in parts if p is not None and len(p)]
            if not parts:
                return []
            return torch.cat(parts) if isinstance(parts[0], torch.Tensor) else [x for p in parts for x in p]

        scores: dict[str, dict] = {}
        if ids:
            with self.timed():
                itm = self.backend.match(joined([it.prepared.itm_pixels for it in items]), texts)
                clip = self.clip.score(joined([it.prepared.clip_pixels for it in items]), texts) if self.clip else None
            for k, vid in enumerate(ids):
                scores[vid] = {"itm_score": itm[k][0], "itm_prob": itm[k][1]}
                if clip is not None:
                    scores[vid]["clip_score"] = clip[k]
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
            iva, note = prep.iva.get(plan.id, (None, None))
            variations = [self._scored(var, prep, item.result, iva, note) for var in plan.variations]
            items.append(plan.model_copy(update={"variations": variations}))
        return rec.model_copy(update={"items": items})

    def _scored(self, var: PlannedVariation, prep: Prepared, scores: dict, iva, note) -> PlannedVariation:
        if var.status != "ok":
            return var
        if var.id in prep.failures:
            return var.model_copy(update={"status": "failed", "error": prep.failures[var.id]})
        if var.id not in scores:  # cannot happen: every ok variation was scored or failed above
            return var.model_copy(update={"status": "failed", "error": self._failure("not_scored", "not scored")})
        return var.model_copy(update={**scores[var.id], "iva_score": iva, "iva_note": note})
