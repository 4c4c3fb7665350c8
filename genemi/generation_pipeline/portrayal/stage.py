"""The ``portray`` stage: each segmented item -> K planned variations (``portrayals.jsonl``).

Each variation gets a hierarchical id (``<image>/item_02/var_1``), a file-name slug built from its short
label (sanitised, unique within the item) and an inpainting seed derived from (``--seed``, variation id),
so any variation can be regenerated alone with the same pixels.
"""

from __future__ import annotations

from typing import Sequence

from genemi.errors import ConfigError
from genemi.generation_pipeline.portrayal.base import ItemPortrayals, PortrayalRequest, derive_seed, slugify
from genemi.generation_pipeline.portrayal.config import PortrayConfig
from genemi.generation_pipeline.stage import Stage, StageContext
from genemi.records import Failure, MaskRecord, PlannedItem, PlannedVariation, VariationPlan


class PortrayStage(Stage):
    name = "portray"

    def __init__(self, config: PortrayConfig, context: StageContext):
        if config.num_portrayals < 1:
            raise ConfigError(f"--num-portrayals must be at least 1, not {config.num_portrayals}")
        super().__init__(config, context)

    def request(self, rec: MaskRecord) -> PortrayalRequest:
        caption = rec.caption or (rec.original_captions[0] if rec.original_captions else None)
        items = tuple(dict.fromkeys(it.item for it in rec.items))
        return PortrayalRequest(key=rec.id, items=items, caption=caption, k=self.config.num_portrayals,
                                seed=derive_seed(self.context.seed, rec.id))

    def process(self, batch: Sequence[MaskRecord], prepared=None) -> list:
        todo = [rec for rec in batch if rec.status == "ok" and rec.items]
        answers = {}
        if todo:
            with self.timed():
                results = self.backend.portray([self.request(rec) for rec in todo])
            answers = {rec.id: res for rec, res in zip(todo, results)}
        return [(rec, answers.get(rec.id)) for rec in batch]

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

    def finish(self, raw) -> list[VariationPlan]:
        out = []
        for rec, answer in raw:
            if rec.status != "ok" or not rec.items:
                out.append(self.fail(rec, rec.error or Failure(stage="segment", type="no_items",
                                                               message="no item was segmented")))
                continue
            items = [self.plan_item(it, answer.get(it.item)) for it in rec.items]
            ok = any(it.status == "ok" for it in items)
            error = None if ok else Failure(stage=self.name, type="no_portrayals",
                                            message="no item of the image could be portrayed")
            out.append(VariationPlan(**rec.carried(), items=items, status="ok" if ok else "failed", error=error))
        return out
