"""Grounding: boxes for each tagged item, from transformers' Grounding DINO."""

from genemi.generation_pipeline.grounding.grounding_dino import GroundingDino, GroundStage, load_grounding_model

__all__ = ["GroundStage", "GroundingDino", "load_grounding_model"]
