"""Rule-based text hard negatives from captions (CE-CLIP, NegCLIP and SugarCrepe edit types).

``genemi negatives`` / ``python -m genemi.generation_pipeline.text_negatives``; see docs/text_negatives.md.
"""

from genemi.generation_pipeline.text_negatives.edits import EDIT_TYPES, ORIGINAL_TYPES, TYPE_SETS
from genemi.generation_pipeline.text_negatives.generator import NegativeGenerator, NegativesConfig
from genemi.generation_pipeline.text_negatives.run import generate_negatives

__all__ = ["EDIT_TYPES", "ORIGINAL_TYPES", "TYPE_SETS", "NegativeGenerator", "NegativesConfig", "generate_negatives"]
