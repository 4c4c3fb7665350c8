"""Caption normalisation shared by training (GeNeMi's ``pre_caption``) and ARO's order benchmarks."""

from __future__ import annotations

import re

_STRIP_CHARS = re.compile(r"[.!\"()*#:;~]")
MAX_CAPTION_WORDS = 50


def normalize_caption(text: str, max_words: int = MAX_CAPTION_WORDS) -> str:
    """The original ``pre_caption``: lowercase, drop ``.!"()*#:;~``, collapse spaces, at most 50 words.

    genemi applies it to *every* caption source (the original skipped COCO captions, which gave the model
    a style cue that told variations from COCO pairs).
    """
    words = re.sub(r"\s+", " ", _STRIP_CHARS.sub(" ", text.lower())).strip().split(" ")
    return " ".join(words[:max_words])
