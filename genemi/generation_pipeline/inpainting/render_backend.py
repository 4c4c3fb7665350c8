"""``--inpainter render``: the exact inpainter of the shapes world. The item is edited in the scene's spec and the
scene re-rendered by the world's own renderer, so an experiment can tell what training on variations does from
what an inpainting model gets wrong.

Per item the stage hands over the model-size crop, the (dilated) item mask and one prompt per variation. The
scene is found by the crop's pixels (:class:`genemi.synthetic.ground_truth.SceneIndex`, as the ``ground_truth``
backends find it): the world's images are under 512 px, so the crop window is the whole image, and the model size
is the world's image size (``splits.json`` under the image root or its parent; ``--sd-size`` overrides it), so the
crop is the image itself. The edited object is the one whose exact mask, grown by ``--mask-dilate`` as the stage
grows the item's, matches the item mask best (intersection over union). Each prompt
names the new object: its first comma-separated part is an object phrase of the world's grammar
(``[small|large] [striped] <colour> <shape>``, after at most an article and "photo of" / "picture of" words); a
prompt that names no drawable object ("a large teal circle", "a giant red circle": words the world has no
picture for) fails only its variation (``CaptionParseError``), as the ``render`` painter of ``t2i`` does.

The whole scene is re-rendered (a new shape or size reaches past the old object's mask), so the stage must paste
the whole window: ``--paste crop``. Then the variation equals the world's rendering of the edited scene, pixel for
pixel. No model, nothing to load, seeds unused (rendering is deterministic).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genemi.errors import ConfigError, DataError


class UndrawableEdit(DataError):
    """A prompt that names no object the shapes world can draw, or a crop that shows no scene of the world."""


class WorldInpainter:
    name = "render"

    def __init__(self, config, context):
        self.config, self.context = config, context
        self.settings: dict[str, int] | None = None
        self.index = None

    # --- setup ------------------------------------------------------------------------------------------

    def check(self) -> None:
        from genemi.generation_pipeline.t2i.render import world_settings
        from genemi.synthetic.ground_truth import scene_files

        if self.config.paste != "crop":
            raise ConfigError("--inpainter render re-renders the whole scene (a new shape or size reaches past the "
                              "old object's mask): it needs --paste crop")
        scene_files(self.context.image_root)
        self.settings = world_settings(self.context.image_root)
        if self.config.sd_size is not None:
            self.settings["image_size"] = int(self.config.sd_size)

    def load(self) -> None:
        from genemi.synthetic.ground_truth import SceneIndex

        if self.settings is None:
            self.check()
        if self.index is None:
            self.index = SceneIndex.for_root(self.context.image_root)

    def offload(self) -> None:
        return None

    def provenance(self) -> dict:
        if self.settings is None:
            self.check()
        return {"renderer": "genemi.synthetic.scenes.render", **self.settings}

    @property
    def size(self) -> int:
        if self.settings is None:
            self.check()
        return int(self.settings["image_size"])

    # --- painting ---------------------------------------------------------------------------------------

    def paint(self, jobs: Sequence) -> list:
        from genemi.generation_pipeline.inpainting.diffusers_backend import PaintResult

        self.load()
        out = []
        for job in jobs:
            images = np.zeros((len(job.prompts), self.size, self.size, 3), dtype=np.uint8)
            errors: list = [None] * len(job.prompts)
            try:
                scene, index = self._scene_and_object(job.image, job.mask)
            except DataError as exc:
                out.append(PaintResult(images, [exc] * len(job.prompts)))
                continue
            for k, prompt in enumerate(job.prompts):
                try:
                    images[k] = self.render_edit(scene, index, prompt)
                except DataError as exc:
                    errors[k] = exc
            out.append(PaintResult(images, errors))
        return out

    def _scene_and_object(self, image: np.ndarray, mask: np.ndarray):
        from genemi.masks import dilate
        from genemi.synthetic.ground_truth import decode_mask
        from genemi.synthetic.scenes import Scene

        ann = self.index.find(image)
        if ann is None:
            raise UndrawableEdit("--inpainter render: the crop shows no scene of the world under the image root (the "
                                 "world's images must be under 512 px, so the window is the whole image, and "
                                 "--sd-size, if given, their size)")
        grow = self.config.mask_dilate
        fits = []
        for o in ann["objects"]:
            if o["area"] > 0:
                grown = dilate(decode_mask(o), grow)
                fits.append(((grown & mask).sum() / max(1, (grown | mask).sum()), o["index"]))
        best, index = max(fits, default=(0.0, -1))
        if best == 0:
            raise UndrawableEdit("--inpainter render: the item's mask covers no object of the scene")
        return Scene.from_dict(ann["scene"]), index

    def render_edit(self, scene, index: int, prompt: str) -> np.ndarray:
        """The scene with object ``index`` replaced by what ``prompt`` names, rendered at the world's size."""
        from genemi.synthetic.parsing import prompt_object
        from genemi.synthetic.scenes import render

        new = prompt_object(prompt)
        edited = scene.with_object(index, shape=new.shape, colour=new.colour, size=new.size, texture=new.texture)
        return np.asarray(render(edited, self.size, self.settings["supersample"]).image)


__all__ = ["UndrawableEdit", "WorldInpainter"]
