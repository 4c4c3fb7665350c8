"""Tiny randomly initialised models of the real architectures, written in their real on-disk formats.

Tests and ``make demo`` build these and then load them through the same loaders users hit with real
checkpoints. Each builder takes ``(out_dir, seed)`` and returns the paths it wrote.
"""

from genemi.models.tiny.clip import save_tiny_clip
from genemi.models.tiny.detection import (save_tiny_blip, save_tiny_grounding_dino,
                                           save_tiny_grounding_dino_original, save_tiny_sam)
from genemi.models.tiny.diffusion import save_tiny_sd_inpainting, save_tiny_sd_t2i
from genemi.models.tiny.language import save_tiny_causal_lm, save_tiny_chat_lm, save_tiny_masked_lm
from genemi.models.tiny.matching import save_tiny_blip_itm
from genemi.models.tiny.tag2text import save_tiny_tag2text

#: name -> builder(out_dir: Path, seed: int) -> dict[str, Path]
TINY_BUILDERS = {
    "clip": save_tiny_clip,
    "masked_lm": save_tiny_masked_lm,
    "causal_lm": save_tiny_causal_lm,
    "chat_lm": save_tiny_chat_lm,
    "grounding_dino": save_tiny_grounding_dino,
    "grounding_dino_original": save_tiny_grounding_dino_original,
    "sam": save_tiny_sam,
    "blip": save_tiny_blip,
    "blip_itm": save_tiny_blip_itm,
    "sd_inpainting": save_tiny_sd_inpainting,
    "sd_t2i": save_tiny_sd_t2i,
    "tag2text": save_tiny_tag2text,
}

__all__ = ["TINY_BUILDERS", "save_tiny_blip", "save_tiny_blip_itm", "save_tiny_causal_lm", "save_tiny_chat_lm",
           "save_tiny_clip", "save_tiny_grounding_dino", "save_tiny_masked_lm", "save_tiny_sam",
           "save_tiny_sd_inpainting", "save_tiny_sd_t2i", "save_tiny_tag2text"]
