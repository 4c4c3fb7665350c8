"""Options of the ``inpaint`` stage (YAML section ``inpaint``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from genemi.generation_pipeline.backends import BackendRegistry
from genemi.generation_pipeline.inpainting.base import INPAINTERS

from genemi.generation_pipeline.options import StageSection, option

#: named settings; explicit flags override them. ``paper`` = the GeNeMi paper's settings.
INPAINT_PRESETS = {
    "paper": {"num_steps": 100, "guidance": 7.5, "scheduler": None},  # scheduler: the checkpoint's own
    "fast": {"num_steps": 25, "guidance": 7.5, "scheduler": "dpm++"},  # not the paper's: ~4x fewer UNet calls
}
#: the folder (under the output folder) of the painted variation images
VARIATIONS = "variations"
SCHEDULERS = ("ddim", "pndm", "euler", "euler_a", "dpm++", "unipc")


@dataclass
class InpaintConfig(StageSection):
    backends: ClassVar[BackendRegistry] = INPAINTERS
    backend: str = option("diffusers", "inpainter: diffusers (Stable Diffusion / SDXL inpainting, local folder or "
                          "single .safetensors/.ckpt file)", flag="--inpainter")
    sd_checkpoint: str | None = option(None, "local diffusers inpainting folder (e.g. stable-diffusion-2-inpainting) "
                                       "or a single .safetensors/.ckpt file", metavar="PATH")
    sd_config: str | None = option(None, "local diffusers folder whose configs a single-file --sd-checkpoint uses",
                                   metavar="DIR")
    sd_preset: str = option("paper", "paper: 100 steps, guidance 7.5, the checkpoint's scheduler (the paper's "
                            "settings); fast: 25 steps with DPM++ (not the paper's)", choices=tuple(INPAINT_PRESETS))
    sd_num_steps: int | None = option(None, "denoising steps (default: the preset's)")
    sd_guidance: float | None = option(None, "classifier-free guidance scale (default: the preset's)")
    sd_scheduler: str | None = option(None, "scheduler (default: the preset's)", choices=SCHEDULERS)
    sd_negative_prompt: str | None = option(None, "negative prompt for every variation (the original used none)",
                                            metavar="TEXT")
    sd_size: int | None = option(None, "model input side in pixels (default: the checkpoint's native size)")
    sd_batch_size: int = option(8, "variations per UNet batch; an item's portrayals stay together", content=False)
    sd_compile: bool = option(False, "torch.compile the UNet (CUDA; pays off on long runs)", content=False)
    sd_vae_tiling: bool = option(False, "decode the VAE in tiles (large --sd-size)", content=False)
    paste: str = option("mask", "mask: paste only the dilated, feathered mask region back into the source; crop: "
                        "paste the whole crop window (the original's paste; with --crop-fit squash the original's "
                        "whole procedure)", choices=("mask", "crop"))
    crop_fit: str = option("letterbox", "how the crop window becomes the model's square input: letterbox (resize "
                           "keeping the aspect ratio, pad; never painted) or squash (resize to the square, the "
                           "original's: non-square windows are distorted)", choices=("letterbox", "squash"))
    masked_latents: str = option("sample", "the masked image's VAE latents: sample (drawn with each variation's "
                                 "generator, as diffusers' pipeline and so the original do: equal to plain diffusers "
                                 "at the same seed) or mode (the distribution's mode: deterministic, not diffusers')",
                                 choices=("sample", "mode"))
    mask_dilate: int = option(8, "pixels the mask is grown by before painting and pasting (source resolution)")
    mask_feather: int = option(4, "width in pixels of the soft paste edge, inside the dilated mask")
    variation_format: str = option("png", "file format of the variation images: png (lossless: every pixel outside "
                                   "the painted region stays the source's) or jpg (quality 95, about 4x smaller on "
                                   "photos, re-encodes the whole image)", choices=("png", "jpg"))
    batch_size: int = 2  # images per batch (--batch-size inpaint=N)
