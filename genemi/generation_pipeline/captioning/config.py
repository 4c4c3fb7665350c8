"""Options of the ``caption`` stage (YAML section ``caption``)."""

from __future__ import annotations

from dataclasses import dataclass

from genemi.generation_pipeline.options import option


@dataclass
class CaptionConfig:
    backend: str = option("spacy", "parser that finds the phrase naming the item: spacy (installed) or stanza "
                          "(needs stanza and its English models on disk)", flag="--caption-parser")
    batch_size: int = 64  # images per batch (--batch-size caption=N)
    stanza_dir: str | None = option(None, "folder with stanza's English models (stanza_resources)",
                                    backends=("stanza",), metavar="DIR")
