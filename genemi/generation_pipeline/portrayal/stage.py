"""The ``portray`` stage: each segmented item -> K planned variations (``portrayals.jsonl``).

Each variation gets a hierarchical id (``<image>/item_02/var_1``), a file-name slug built from its short
label (sanitised, unique within the item) and an inpainting seed derived from (``--seed``, variation id),
so any variation can be regenerated alone with the same pixels.
"""

from __future__ import annotations

from genemi.generation_pipeline.seeds import derive_seed
from genemi.generation_pipeline.portrayal.base import ItemPortrayals, PortrayalRequest, slugify
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.records import Failure, MaskRecord, PlannedItem, PlannedVariation, VariationPlan


class PortrayStage(Stage):
    name = "portray"

    def skip(self, item: StageItem[MaskRecord]) -> VariationPlan | None:
        rec = item.record
        if rec.status != "ok" or not rec.items:
            return self.fail(item, rec.error or Failure(stage="segment", type="no_items",
                                                        message="no item was segmented"))
        return None

    def request(self, rec: MaskRecord) -> PortrayalRequest:
        caption = rec.caption or (rec.original_captions[0] if rec.original_captions else None)
        items = tuple(dict.fromkeys(it.item for it in rec.items))
        return PortrayalRequest(key=rec.id, items=items, caption=caption, k=self.config.num_portrayals,
                                seed=derive_seed(self.context.seed, rec.id))

    def process(self, items: list[StageItem[MaskRecord]]) -> None:
        with self.timed():
            results = self.backend.portray([self.request(it.record) for it in items])
        for item, answers in zip(items, results, strict=True):
            item.result = answers

    def plan_item(self, item, answer: ItemPortrayals | None) -> PlannedItem:
        base = dict(id=item.id, item=item.item, box=item.box, crop=item.crop, backend=self.backend.name)
        if answer is None:
            answer = ItemPortrayals(error=Failure(stage=self.name, type="missing_answer",
                                                  message=f"the {self.backend.name} backend returned nothing"))
        if answer.error is not None or not answer.portrayals:
            error = answer.error or Failure(stage=self.name, type="no_portrayals", message="no portrayal")
            return PlannedItem(**base, note=answer.note, raw=answer.raw, status="failed", error=error)
        variations, slugs = [], set()
        for j, p in enumerate(answer.portrayals):
            slug, n = slugify(p.short), 2
            while slug in slugs:
                slug, n = f"{slugify(p.short)}_{n}", n + 1
            slugs.add(slug)
            var_id = f"{item.id}/var_{j}"
            variations.append(PlannedVariation(id=var_id, kind=p.kind, prompt=p.prompt, short=p.short, slug=slug,
                                               seed=derive_seed(self.context.seed, var_id)))
        return PlannedItem(**base, note=answer.note, variations=variations)

    def build(self, item: StageItem[MaskRecord]) -> VariationPlan:
        rec = item.record
        items = [self.plan_item(it, item.result.get(it.item)) for it in rec.items]
        ok = any(it.status == "ok" for it in items)
        error = None if ok else Failure(stage=self.name, type="no_portrayals",
                                        message="no item of the image could be portrayed")
        return VariationPlan(**rec.carried(), items=items, status="ok" if ok else "failed", error=error)
