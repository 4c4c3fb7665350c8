"""The ``caption`` stage: every planned variation gets the image's captions rewritten to name its short
label (``captions.jsonl``): the tagging caption and each original caption that mentions the item. When no
caption names the item, the original's fallback ``"<caption> and <short>"`` is used and recorded."""

from __future__ import annotations

from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.records import VariationPlan
from genemi.text.rewrite import rewrite_captions


def image_captions(rec: VariationPlan) -> list[str]:
    """The tagging caption, then the original captions; unique, non-empty."""
    texts = ([rec.caption] if rec.caption else []) + list(rec.original_captions)
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


class CaptionStage(Stage):
    name = "caption"

    def process(self, items: list[StageItem[VariationPlan]]) -> None:
        texts = list(dict.fromkeys(t for it in items for t in image_captions(it.record)))
        with self.timed():
            parsed = dict(zip(texts, self.backend.parse(texts), strict=True)) if texts else {}
        for item in items:
            item.result = [parsed[t] for t in image_captions(item.record)]

    def build(self, item: StageItem[VariationPlan]) -> VariationPlan:
        rec, parses = item.record, item.result
        captions = image_captions(rec)
        items = []
        for plan in rec.items:
            variations = []
            for var in plan.variations:
                texts, fallback = rewrite_captions(parses, plan.item, var.short, captions[0] if captions else None)
                variations.append(var.model_copy(update={"captions": texts, "caption_fallback": fallback}))
            items.append(plan.model_copy(update={"variations": variations}))
        return rec.model_copy(update={"items": items})
