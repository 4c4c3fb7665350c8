"""``spacy`` caption parser: spaCy's small English pipeline (installed with genemi; CPU, no model to load)."""

from __future__ import annotations

from typing import Sequence

from genemi.errors import BackendUnavailable
from genemi.text.parsing import SPACY_MODEL, ParsedCaption, load_spacy, parse_captions


class SpacyParser:
    name = "spacy"

    def __init__(self, config, context=None):
        self.config, self.context = config, context

    def check(self) -> None:
        """Load the spaCy pipeline once (cached per process): raises BackendUnavailable if it cannot."""
        try:
            load_spacy()
        except BackendUnavailable:
            raise
        except Exception as exc:  # an incompatible or broken model package
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BackendUnavailable(f"spaCy model {SPACY_MODEL!r} cannot be loaded: {first}") from exc

    def load(self) -> None:
        return None

    def offload(self) -> None:
        return None

    def parse(self, texts: Sequence[str]) -> list[ParsedCaption]:
        return list(parse_captions(texts))
