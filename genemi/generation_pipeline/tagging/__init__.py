"""Tagging: which items of an image to edit (stage ``tag``, :mod:`.stage`). Backends: ``captions`` (noun
phrases of the given captions), ``blip`` (a BLIP caption's noun phrases), ``tag2text`` (not available yet)."""

from genemi.generation_pipeline.tagging.base import TAGGERS, Tagger
from genemi.generation_pipeline.tagging.config import TagConfig

__all__ = ["TAGGERS", "TagConfig", "Tagger"]
