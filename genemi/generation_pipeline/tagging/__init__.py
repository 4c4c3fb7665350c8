"""Tagging: which items of an image to edit (stage ``tag``, :mod:`.stage`). Backends: ``captions`` (noun
phrases of the given captions), ``blip`` (a BLIP caption's noun phrases), ``tag2text`` (the original's Tag2Text
checkpoint, :mod:`genemi.models.tag2text`)."""

from genemi.generation_pipeline.tagging.base import TAGGERS, TagResult, Tagger
from genemi.generation_pipeline.tagging.config import TagConfig

__all__ = ["TAGGERS", "TagConfig", "TagResult", "Tagger"]
