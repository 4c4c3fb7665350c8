"""Caption rewriting backends: a parser turning captions into :class:`~genemi.text.parsing.ParsedCaption`.

The rewriting rules themselves (:mod:`genemi.text.rewrite`) are the same for every parser.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.text.parsing import ParsedCaption

#: name -> "module:Class" (each class: ``Class(CaptionConfig, StageContext)``)
CAPTION_PARSERS = BackendRegistry("caption", "--caption-parser", {
    "spacy": "genemi.generation_pipeline.captioning.spacy_parser:SpacyParser",
    "stanza": "genemi.generation_pipeline.captioning.stanza_parser:StanzaParser",
})


class CaptionParser(Protocol):
    name: str

    def check(self) -> None: ...

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def parse(self, texts: Sequence[str]) -> list[ParsedCaption]:
        """One parse per text (tokens with POS/tags/lemmas and base noun-phrase chunks)."""
