"""``--painter render``: a shapes-world caption drawn exactly by the world's own renderer, so that an experiment
can tell what the objective learns from what a generator gets wrong.

Each caption is parsed back into a scene (:func:`genemi.synthetic.parsing.parse_caption`, laid out at random
from the negative's seed so that every relation it states holds) and rendered with
:func:`genemi.synthetic.scenes.render` at the world's image size and supersampling (``splits.json`` of the world
under the run's image root or its parent; ``--t2i-size`` overrides the size; without a ``splits.json`` the
world's defaults, 64 px and 4x supersampling). A caption outside the world's grammar fails only its negative
(``CaptionParseError``). No model, nothing to load; never truncated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from genemi.errors import DataError
from genemi.generation_pipeline.t2i.base import Painting

#: what :func:`genemi.synthetic.world.write_world` uses when no ``splits.json`` says otherwise
WORLD_DEFAULTS = {"image_size": 64, "supersample": 4}


def world_settings(image_root: str | Path) -> dict[str, int]:
    """``image_size`` and ``supersample`` of the shapes world whose ``splits.json`` lies in ``image_root`` or its
    parent (the world's layout: ``<world>/splits.json`` next to ``<world>/images/``); the defaults without one."""
    root = Path(image_root)
    for folder in (root, root.parent):
        path = folder / "splits.json"
        if path.is_file():
            try:
                found = json.loads(path.read_text(encoding="utf-8"))
                return {k: int(found.get(k, v)) for k, v in WORLD_DEFAULTS.items()}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                raise DataError(f"--painter render: {path}: not a shapes-world splits.json ({exc})") from exc
    return dict(WORLD_DEFAULTS)


class WorldRenderer:
    name = "render"

    def __init__(self, config, context):
        self.config, self.context = config, context
        self.settings: dict[str, int] | None = None

    def check(self) -> None:
        self.settings = world_settings(self.context.image_root)
        if self.config.t2i_size is not None:
            self.settings["image_size"] = int(self.config.t2i_size)

    def load(self) -> None:
        if self.settings is None:
            self.check()

    def offload(self) -> None:
        return None

    def paint(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Painting]:
        from genemi.synthetic.parsing import CaptionParseError, parse_caption
        from genemi.synthetic.scenes import render

        self.load()
        size, supersample = self.settings["image_size"], self.settings["supersample"]
        out = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            try:
                scene = parse_caption(prompt, seed)
            except CaptionParseError as exc:
                out.append(Painting(error=exc))
                continue
            out.append(Painting(image=np.asarray(render(scene, size, supersample).image)))
        return out
