"""Options of the ``caption`` stage (YAML section ``caption``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.captioning.base import CAPTION_PARSERS

from genemi.generation_pipeline.options import StageSection, option


@dataclass
class CaptionConfig(StageSection):
    backends: ClassVar[BackendRegistry] = CAPTION_PARSERS
    backend: str = option("spacy", "parser that finds the phrase naming the item: spacy (installed) or stanza "
                          "(needs stanza and its English models on disk)", flag="--caption-parser")
    batch_size: int = 64  # images per batch (--batch-size caption=N)
    stanza_dir: str | None = option(None, "folder with stanza's English models (stanza_resources)",
                                    backends=("stanza",), metavar="DIR")
