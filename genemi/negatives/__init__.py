"""Rule-based text hard negatives from captions (CE-CLIP, NegCLIP and SugarCrepe edit types).

``genemi negatives`` / ``python -m genemi.negatives``; see docs/text_negatives.md.
"""

from genemi.negatives.edits import EDIT_TYPES, ORIGINAL_TYPES, TYPE_SETS
from genemi.negatives.generator import NegativeGenerator, NegativesConfig
from genemi.negatives.run import generate_negatives

__all__ = ["EDIT_TYPES", "ORIGINAL_TYPES", "TYPE_SETS", "NegativeGenerator", "NegativesConfig", "generate_negatives"]
