"""Options of the ``tag`` stage (YAML section ``tag``)."""

from __future__ import annotations

from dataclasses import dataclass

from genemi.generation_pipeline.options import option


@dataclass
class TagConfig:
    backend: str = option("captions", "where items come from: captions (noun phrases of the given captions), blip "
                          "(a BLIP caption's noun phrases), tag2text (original checkpoint; not available yet)",
                          flag="--tagger")
    max_items: int = option(10, "items per image, most salient first")
    blip_caption_model: str | None = option(None, "local BLIP captioning folder (BlipForConditionalGeneration)",
                                            backends=("blip",), metavar="DIR")
    tag2text_checkpoint: str | None = option(None, "original Tag2Text checkpoint (tag2text_swin_14m.pth)",
                                             backends=("tag2text",), metavar="PTH")
    tag2text_threshold: float = option(0.64, "Tag2Text tag threshold", backends=("tag2text",))
    image_size: int = option(384, "Tag2Text input size in pixels", backends=("tag2text",))
    batch_size: int = 16  # images per batch (--batch-size tag=N)
