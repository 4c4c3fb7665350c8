"""Negative captions (stage ``negcaption``, :mod:`.stage`): each source caption of an image rewritten minimally so
it can no longer be true of the image (TripletCLIP's negatives). Backends: ``rules`` (``genemi negatives``' typed
edits), ``hf`` and ``openai`` (the run's chat model)."""

from genemi.generation_pipeline.negcaption.base import NEGATIVE_KINDS, NEGCAPTIONERS, NegCaptioner, Rewrite, RewriteRequest
from genemi.generation_pipeline.negcaption.config import NegCaptionConfig

__all__ = ["NEGATIVE_KINDS", "NEGCAPTIONERS", "NegCaptionConfig", "NegCaptioner", "Rewrite", "RewriteRequest"]
