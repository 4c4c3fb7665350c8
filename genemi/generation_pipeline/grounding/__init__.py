"""Grounding: a box for each tagged item (stage ``ground``, :mod:`.stage`). Backend: ``grounding_dino``
(transformers' Grounding DINO, :mod:`.grounding_dino`)."""

from genemi.generation_pipeline.grounding.base import GROUNDERS, Detections, Grounder
from genemi.generation_pipeline.grounding.config import GroundConfig

__all__ = ["GROUNDERS", "Detections", "GroundConfig", "Grounder"]
