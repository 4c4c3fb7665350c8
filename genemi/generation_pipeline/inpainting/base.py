"""Inpainting backends: paint K prompts into one masked crop in one batch (see :mod:`.stage` for the geometry)."""

from __future__ import annotations

from genemi.generation_pipeline.backends import BackendRegistry

#: name -> "module:Class" (each class: ``Class(InpaintConfig, StageContext)``)
INPAINTERS = BackendRegistry("inpaint", "--inpainter", {
    "diffusers": "genemi.generation_pipeline.inpainting.diffusers_backend:DiffusersInpainter",
    "render": "genemi.generation_pipeline.inpainting.render_backend:WorldInpainter",
})
