"""Options of the ``tag`` stage (YAML section ``tag``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.tagging.base import TAGGERS

from genemi.generation_pipeline.options import StageSection, option, require_positive


@dataclass
class TagConfig(StageSection):
    backends: ClassVar[BackendRegistry] = TAGGERS
    backend: str = option("captions", "where items come from: captions (noun phrases of the given captions), blip "
                          "(a BLIP caption's noun phrases), tag2text (the original's Tag2Text checkpoint: tags + caption)",
                          flag="--tagger")
    max_items: int = option(10, "items per image, most salient first")
    blip_caption_model: str | None = option(None, "local BLIP captioning folder (BlipForConditionalGeneration)",
                                            backends=("blip",), metavar="DIR")
    tag2text_checkpoint: str | None = option(None, "original Tag2Text checkpoint (tag2text_swin_14m.pth); a configs/ "
                                             "folder next to it (the original's three size configs) overrides the "
                                             "real Swin-B sizes", backends=("tag2text",), metavar="PTH")
    tag2text_tag_list: str | None = option(None, "Tag2Text tag list, one tag per line in class order (the original's "
                                           "tag2text_ori_tag_list.txt; not shipped); default: tag2text_ori_tag_list.txt "
                                           "or tag_list.txt next to the checkpoint", backends=("tag2text",), metavar="TXT")
    tag2text_vocab: str | None = option(None, "bert-base-uncased vocab.txt for Tag2Text's tokenizer; default: vocab.txt "
                                        "next to the checkpoint", backends=("tag2text",), metavar="TXT")
    tag2text_threshold: float = option(0.68, "Tag2Text tag threshold: a tag is kept when its probability is strictly "
                                       "greater (person/man/woman always need > 0.70). The original's 0.64 never "
                                       "applied, so GeNeMi's published runs used 0.68", backends=("tag2text",))
    tag2text_length_rule: str = option("prompt", "beam-search length normalisation: prompt (transformers 4.25, the "
                                       "original's captions) or generated (newer transformers)",
                                       backends=("tag2text",), choices=("prompt", "generated"))
    image_size: int | None = option(None, "Tag2Text input size in pixels; default: the checkpoint's (384 for "
                                    "tag2text_swin_14m.pth, the only size it takes)", backends=("tag2text",))
    batch_size: int = 16  # images per batch (--batch-size tag=N)

    def validate(self) -> None:
        require_positive(self.max_items, "--max-items")
