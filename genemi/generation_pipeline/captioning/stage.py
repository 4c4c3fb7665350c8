"""The ``caption`` stage: every planned variation gets the image's captions rewritten to name its short
label (``captions.jsonl``): the tagging caption and each original caption that mentions the item. When no
caption names the item, the original's fallback ``"<caption> and <short>"`` is used and recorded."""

from __future__ import annotations

from typing import Sequence

from genemi.generation_pipeline.stage import Stage
from genemi.records import VariationPlan
from genemi.text.rewrite import rewrite_captions


def image_captions(rec: VariationPlan) -> list[str]:
    """The tagging caption, then the original captions; unique, non-empty."""
    texts = ([rec.caption] if rec.caption else []) + list(rec.original_captions)
    return list(dict.fromkeys(t.strip() for t in texts if t and t.strip()))


class CaptionStage(Stage):
    name = "caption"

    def process(self, batch: Sequence[VariationPlan], prepared=None) -> list:
        texts = list(dict.fromkeys(t for rec in batch if rec.status == "ok" for t in image_captions(rec)))
        with self.timed():
            parsed = dict(zip(texts, self.backend.parse(texts))) if texts else {}
        return [(rec, parsed) for rec in batch]

    def finish(self, raw) -> list[VariationPlan]:
        out = []
        for rec, parsed in raw:
            if rec.status != "ok":
                out.append(rec)  # failed upstream: carried as it is
                continue
            captions = image_captions(rec)
            parses = [parsed[t] for t in captions]
            items = []
            for item in rec.items:
                variations = []
                for var in item.variations:
                    texts, fallback = rewrite_captions(parses, item.item, var.short, captions[0] if captions else None)
                    variations.append(var.model_copy(update={"captions": texts, "caption_fallback": fallback}))
                items.append(item.model_copy(update={"variations": variations}))
            out.append(rec.model_copy(update={"items": items}))
        return out
