"""Portrayals: K ways to repaint each item (stage ``portray``, :mod:`.stage`). Backends: ``rules`` (offline
vocabulary + WordNet), ``hf`` (a local chat LM), ``openai`` (an OpenAI-compatible server)."""

from genemi.generation_pipeline.portrayal.base import PORTRAYERS, ItemPortrayals, PortrayalRequest, Portrayer
from genemi.generation_pipeline.portrayal.config import PortrayConfig

__all__ = ["PORTRAYERS", "ItemPortrayals", "PortrayConfig", "PortrayalRequest", "Portrayer"]
