"""Tagging: which items of an image to edit. Backends: ``captions`` (noun phrases of the given captions),
``blip`` (a BLIP caption's noun phrases), ``tag2text`` (registered; not available yet)."""

from genemi.generation_pipeline.tagging.base import TAGGERS, TagStage, build_tagger

__all__ = ["TAGGERS", "TagStage", "build_tagger"]
