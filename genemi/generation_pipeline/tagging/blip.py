"""``blip`` tagger: a BLIP captioning model from a local folder writes a caption; its noun phrases are the items."""

from __future__ import annotations

from typing import Sequence

import torch

from genemi.errors import ConfigError
from genemi.generation_pipeline.stage import release_to_cpu
from genemi.generation_pipeline.tagging.base import TagResult
from genemi.text.phrases import noun_phrases


class BlipTagger:
    name = "blip"

    def __init__(self, config, context, max_new_tokens: int = 30, num_beams: int = 3):
        self.path, self.device, self.dtype, self.max_items = config.blip_caption_model, context.device, context.dtype, config.max_items
        self.max_new_tokens, self.num_beams = max_new_tokens, num_beams
        self.model = self.processor = None

    def check(self) -> None:
        """The folder holds a BLIP captioning model whose config, weights (read as structure) and processor are
        all there (:func:`genemi.models.hf.check_pretrained`)."""
        from genemi.models.hf import check_pretrained

        if not self.path:
            raise ConfigError("--tagger blip needs --blip-caption-model (a local BLIP captioning folder)")
        check_pretrained(self.path, "--blip-caption-model", "blip", processor=True,
                         architectures=("BlipForConditionalGeneration",), prefixes=("vision_model.", "text_decoder."),
                         kind="a BLIP captioning model (BlipForConditionalGeneration)")

    def load(self) -> None:
        if self.model is None:
            from transformers import AutoProcessor, BlipForConditionalGeneration

            from genemi.models.hf import load_pretrained

            self.model, self.processor = load_pretrained(BlipForConditionalGeneration, self.path,
                                                         "BLIP captioning model", processor_cls=AutoProcessor)
        self.model.to(self.device, dtype=self.dtype or torch.float32)

    def offload(self) -> None:
        if self.model is not None:
            release_to_cpu(self.model)

    @torch.no_grad()
    def tag(self, images: Sequence, captions: Sequence[list[str]]) -> list[TagResult]:
        inputs = self.processor(images=list(images), return_tensors="pt").to(self.device)
        if self.dtype is not None:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams)
        texts = [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
        items = noun_phrases(texts, self.max_items)
        return [TagResult(text, its) for text, its in zip(texts, items)]
