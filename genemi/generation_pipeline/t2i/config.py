"""Options of the ``t2i`` stage (YAML section ``t2i``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.errors import ConfigError
from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.options import StageSection, option
from genemi.generation_pipeline.t2i.base import T2I_BACKENDS
from genemi.precision import DTYPES

#: steps and guidance per model family (``--t2i-preset auto`` picks the family from the model's files). ``sd``:
#: SD 1.x (512 px) and 2.x (768 px; 2.x-base 512 px) and ``sdxl``/``sd3``: diffusers' own defaults for their
#: pipelines; ``sdxl-turbo`` (an SDXL pipeline trained at 512 px): 4 steps (its model card: 1-4), no guidance.
T2I_PRESETS = {
    "sd": {"steps": 50, "guidance": 7.5},
    "sdxl": {"steps": 50, "guidance": 5.0},
    "sdxl-turbo": {"steps": 4, "guidance": 0.0},
    "sd3": {"steps": 28, "guidance": 7.0},
}
#: the folder (under the output folder) of the painted negatives
NEGATIVES = "negatives"


@dataclass
class T2IConfig(StageSection):
    backends: ClassVar[BackendRegistry] = T2I_BACKENDS
    backend: str = option("diffusers", "diffusers (Stable Diffusion 1.x/2.x, SDXL, SDXL-Turbo, SD3 text-to-image, "
                          "local folder or single .safetensors file) or render (the shapes world's renderer draws "
                          "a world caption exactly)", flag="--painter")
    t2i_model: str | None = option(None, "local diffusers text-to-image folder (e.g. sdxl-turbo, "
                                   "stable-diffusion-2-1, stable-diffusion-3-medium-diffusers) or a single "
                                   ".safetensors/.ckpt file (with --t2i-config)", metavar="PATH",
                                   backends=("diffusers",))
    t2i_config: str | None = option(None, "local diffusers folder whose configs a single-file --t2i-model uses",
                                    metavar="DIR", backends=("diffusers",))
    t2i_preset: str = option("auto", "steps and guidance: auto (from the model's family: sd 50 steps / 7.5, sdxl "
                             "50 / 5.0, sdxl-turbo 4 / 0, sd3 28 / 7.0) or one of those families",
                             choices=("auto", *T2I_PRESETS), backends=("diffusers",))
    t2i_steps: int | None = option(None, "denoising steps (default: the preset's)", backends=("diffusers",))
    t2i_guidance: float | None = option(None, "classifier-free guidance scale (default: the preset's; 0 or 1 = "
                                        "none)", backends=("diffusers",))
    t2i_size: int | None = option(None, "image side in pixels (default: the model's native size; render: the "
                                  "world's size)")
    t2i_dtype: str | None = option(None, "precision of this stage's model (default: the run's --precision, whose "
                                   "default is auto: bf16 on CUDA with bf16, fp16 on older CUDA, fp32 elsewhere)",
                                   choices=DTYPES, backends=("diffusers",))
    t2i_batch_size: int = option(8, "prompts per pipeline call (across the stage batch's images)", content=False,
                                 backends=("diffusers",))
    negative_format: str = option("png", "file format of the painted negatives (png: lossless)",
                                  choices=("png", "jpg"))
    batch_size: int = 4  # images (records) per batch (--batch-size t2i=N)

    def validate(self) -> None:
        if self.t2i_steps is not None and self.t2i_steps < 1:
            raise ConfigError(f"--t2i-steps {self.t2i_steps}: must be at least 1")
        if self.t2i_guidance is not None and not self.t2i_guidance >= 0:
            raise ConfigError(f"--t2i-guidance {self.t2i_guidance}: must not be negative")
        if self.t2i_size is not None:
            if self.backend == "diffusers" and (self.t2i_size < 8 or self.t2i_size % 8):
                raise ConfigError(f"--t2i-size {self.t2i_size}: must be a positive multiple of 8")
            if self.t2i_size < 8:
                raise ConfigError(f"--t2i-size {self.t2i_size}: must be at least 8")
        if self.t2i_batch_size < 1:
            raise ConfigError(f"--t2i-batch-size {self.t2i_batch_size}: must be at least 1")
