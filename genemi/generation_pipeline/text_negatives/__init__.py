"""Old location of :mod:`genemi.negatives` (``python -m genemi.generation_pipeline.text_negatives`` still works)."""

from genemi.negatives import *  # noqa: F401,F403
from genemi.negatives import __all__  # noqa: F401
