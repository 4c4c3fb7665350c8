"""genemi: generative and rule-based hard-negative mining for compositional CLIP training."""

__version__ = "0.1.0"
