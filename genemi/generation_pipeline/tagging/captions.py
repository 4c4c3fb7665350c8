"""``captions`` tagger: items are the noun phrases of the image's given captions (spaCy; no model)."""

from __future__ import annotations

from typing import Sequence

from genemi.generation_pipeline.tagging.base import TagResult
from genemi.text.phrases import noun_phrases


class CaptionTagger:
    name = "captions"
    needs_captions = True

    def __init__(self, config, context):
        self.max_items = config.max_items

    def check(self) -> None:
        from genemi.text.parsing import load_spacy

        load_spacy()

    def load(self) -> None:
        return None

    def offload(self) -> None:
        return None

    def tag(self, images: Sequence, captions: Sequence[list[str]]) -> list[TagResult]:
        joined = [" . ".join(c) for c in captions]
        items = noun_phrases(joined, self.max_items)
        return [TagResult(caps[0] if caps else None, its) for caps, its in zip(captions, items)]
