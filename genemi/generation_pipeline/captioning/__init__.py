"""Caption rewriting: captions naming each variation's short label (stage ``caption``, :mod:`.stage`).
Parsers: ``spacy`` (default), ``stanza`` (its models on disk)."""

from genemi.generation_pipeline.captioning.base import CAPTION_PARSERS, CaptionParser
from genemi.generation_pipeline.captioning.config import CaptionConfig

__all__ = ["CAPTION_PARSERS", "CaptionConfig", "CaptionParser"]
