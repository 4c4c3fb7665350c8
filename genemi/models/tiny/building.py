"""What every tiny-model builder does: build under a fixed seed without touching the caller's random state,
and write Hugging Face folders quietly."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def seeded(seed: int):
    """Random initialisation from ``seed``; the global torch random state is restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def save_folder(out: Path, *parts) -> Path:
    """``save_pretrained`` of a model and its tokenizer/processor into ``out``, without progress bars."""
    from genemi.models.hf import quiet_loading

    with quiet_loading():
        for part in parts:
            part.save_pretrained(out)
    return out
