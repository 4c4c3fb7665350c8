"""Text-to-image backends (``--painter``): paint a list of prompts, one seed each, into square RGB images.

Every backend is built as ``Class(T2IConfig, StageContext)`` and has ``name``, ``check()``, ``load()``,
``offload()`` and :meth:`Painter.paint`. A prompt that cannot be painted fails alone (its entry carries the
error); the others of the call are painted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from genemi.generation_pipeline.backends import BackendRegistry

#: name -> "module:Class"
T2I_BACKENDS = BackendRegistry("t2i", "--painter", {
    "diffusers": "genemi.generation_pipeline.t2i.diffusers_backend:DiffusersPainter",
    "render": "genemi.generation_pipeline.t2i.render:WorldRenderer",
})


@dataclass
class Painting:
    """One prompt painted: ``image`` ([H, W, 3] uint8) or the ``error`` that failed it; ``truncated``: the
    prompt was longer than the text encoder takes, and only its beginning was painted."""

    image: np.ndarray | None = None
    truncated: bool = False
    error: Exception | None = None


class Painter(Protocol):
    name: str

    def check(self) -> None: ...

    def load(self) -> None: ...

    def offload(self) -> None: ...

    def paint(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Painting]:
        """One :class:`Painting` per prompt, in order; the image of a prompt depends only on the prompt, its seed
        and the settings, never on the other prompts of the call."""
