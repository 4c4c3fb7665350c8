"""Stable Diffusion (or SDXL) inpainting through diffusers, from a local folder or one original-layout file.

Per item the masked crop (prepared by the pipeline's own image and mask processors) goes through the VAE
encoder once; its K variations share that latent distribution and are denoised together with other items'
variations in UNet batches of ``--sd-batch-size`` (an item's variations stay in one batch unless K exceeds it).
Each variation has its own CPU generator seeded with its recorded seed, and draws from it exactly what
diffusers' ``StableDiffusionInpaintPipeline`` draws, in the same order: the initial noise, then the sample of the
masked image's latents (``--masked-latents sample``, the default; ``mode`` takes the distribution's mode
instead, deterministic but not diffusers'), then whatever the scheduler's steps draw. So a variation equals plain
diffusers painting it alone with ``generator=torch.Generator("cpu").manual_seed(seed)`` (tested), and a variation
painted in a batch equals it painted alone, on any device (up to floating-point noise). A text-to-image
checkpoint (4-channel UNet) also loads; the pipeline then encodes the image itself for every variation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from genemi.errors import CheckpointError, ConfigError, GenemiError
from genemi.generation_pipeline.diffusion import (NonFiniteOutput, check_single_file, native_size,
                                                  scheduler_provenance, single_file_configs, to_pixels)
from genemi.generation_pipeline.diffusion import pipeline_folder as _pipeline_folder
from genemi.generation_pipeline.inpainting.config import INPAINT_PRESETS, InpaintConfig
from genemi.generation_pipeline.stage import StageContext, release_to_cpu
from genemi.models.files import PipelineFolder, inspect_pipeline_folder
from genemi.models.hf import hub_id_hint, quiet_loading

__all__ = ["DiffusersInpainter", "NonFiniteOutput", "PaintJob", "PaintResult", "inpaint_settings"]

#: --sd-scheduler name -> diffusers class (built from the checkpoint's scheduler config)
SCHEDULER_CLASSES = {
    "ddim": "DDIMScheduler", "pndm": "PNDMScheduler", "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler", "dpm++": "DPMSolverMultistepScheduler",
    "unipc": "UniPCMultistepScheduler",
}


@dataclass
class PaintJob:
    """One item: its model-size crop, what to paint (True), and one prompt and seed per variation."""

    image: np.ndarray  # [size, size, 3] uint8
    mask: np.ndarray  # [size, size] bool
    prompts: Sequence[str]
    seeds: Sequence[int]


@dataclass
class PaintResult:
    """One item's variations: ``images`` [K, size, size, 3] uint8 (zeros where a variation failed) and, per
    variation, ``None`` or the error that failed it."""

    images: np.ndarray
    errors: list[GenemiError | None]


def scheduler_override(name: str | None) -> tuple[str | None, dict]:
    """``(diffusers class name, extra config)`` of ``--sd-scheduler`` (``(None, {})``: the checkpoint's own)."""
    if name is None:
        return None, {}
    return SCHEDULER_CLASSES[name], ({"algorithm_type": "dpmsolver++"} if name == "dpm++" else {})


def inpaint_settings(config: InpaintConfig) -> tuple[int, float, str | None]:
    """``(steps, guidance, scheduler or None = the checkpoint's)``: the preset, overridden by explicit flags."""
    preset = INPAINT_PRESETS[config.sd_preset]
    steps = config.sd_num_steps if config.sd_num_steps is not None else preset["num_steps"]
    guidance = config.sd_guidance if config.sd_guidance is not None else preset["guidance"]
    return int(steps), float(guidance), config.sd_scheduler or preset["scheduler"]


def _unet_config(pipeline: PipelineFolder, flag: str) -> dict:
    """The pipeline's UNet config, refused unless genemi can paint with it (9 input channels: inpainting;
    4: text-to-image)."""
    unet = pipeline.components.get("unet")
    if unet is None:
        raise CheckpointError(f"{flag} {pipeline.path}: model_index.json lists no unet (genemi paints with Stable "
                              "Diffusion / SDXL UNet pipelines)")
    channels = unet.config.get("in_channels")
    if channels not in (4, 9):
        raise CheckpointError(f"{flag} {unet.path}: the UNet has {channels} input channels, expected an inpainting "
                              "UNet (9) or a text-to-image one (4)")
    return unet.config


class DiffusersInpainter:
    """``AutoPipelineForInpainting`` (SD / SDXL inpainting folders) or ``StableDiffusionInpaintPipeline`` from a
    single file; see the module docstring for the batching."""

    name = "diffusers"

    def __init__(self, config: InpaintConfig, context: StageContext):
        self.config, self.context = config, context
        self.pipe = None
        self.folder: PipelineFolder | None = None  # the configs the pipeline is built from (set by check)

    # --- setup ------------------------------------------------------------------------------------------

    def check(self) -> None:
        """Settings, and the model files read as structure without loading a weight: a pipeline folder's
        components (configs, weights, tokenizer, scheduler; :func:`genemi.models.files.inspect_pipeline_folder`)
        with a UNet genemi can paint with, or a single file's tensors against its ``--sd-config`` folder's UNet."""
        c = self.config
        if not c.sd_checkpoint:
            raise ConfigError("inpainting needs --sd-checkpoint (a local diffusers inpainting folder such as "
                              "stable-diffusion-2-inpainting, or a .safetensors/.ckpt file with --sd-config)")
        path = Path(c.sd_checkpoint).expanduser()
        if path.is_dir():
            self.folder = inspect_pipeline_folder(_pipeline_folder(path, "--sd-checkpoint"), "--sd-checkpoint")
            _unet_config(self.folder, "--sd-checkpoint")
        elif path.is_file():
            self.folder = single_file_configs(path, c.sd_config, "--sd-checkpoint", "--sd-config")
            check_single_file(path, _unet_config(self.folder, "--sd-config"), "--sd-checkpoint", "--sd-config")
        else:
            raise ConfigError(f"--sd-checkpoint {c.sd_checkpoint}: not found{hub_id_hint(str(c.sd_checkpoint))}; "
                              "genemi never downloads models")
        if c.sd_size is not None and (c.sd_size < 8 or c.sd_size % 8):
            raise ConfigError(f"--sd-size {c.sd_size}: must be a positive multiple of 8")
        steps, guidance, _ = inpaint_settings(c)
        if steps < 1:
            raise ConfigError(f"--sd-num-steps {steps}: must be at least 1")
        if guidance < 0:
            raise ConfigError(f"--sd-guidance {guidance}: must not be negative")
        if c.sd_batch_size < 1:
            raise ConfigError(f"--sd-batch-size {c.sd_batch_size}: must be at least 1")
        if c.mask_dilate < 0 or c.mask_feather < 0:
            raise ConfigError("--mask-dilate and --mask-feather must not be negative")

    def load(self) -> None:
        if self.pipe is None:
            self.pipe = self._load_pipeline()
        self.pipe.to(self.context.device)

    def _load_pipeline(self):
        import diffusers

        c = self.config
        path = Path(c.sd_checkpoint).expanduser()
        dtype = self.context.dtype or torch.float32
        try:
            with quiet_loading():
                if path.is_dir():
                    pipe = diffusers.AutoPipelineForInpainting.from_pretrained(path, dtype=dtype, local_files_only=True)
                else:
                    pipe = diffusers.StableDiffusionInpaintPipeline.from_single_file(
                        str(path), config=str(Path(c.sd_config).expanduser()), dtype=dtype, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - diffusers raises many types; all mean "cannot load this"
            raise CheckpointError(f"--sd-checkpoint {path}: cannot load an inpainting pipeline: "
                                  f"{type(exc).__name__}: {exc}") from exc
        if pipe.unet.config.in_channels not in (4, 9):
            raise CheckpointError(f"--sd-checkpoint {path}: UNet has {pipe.unet.config.in_channels} input channels, "
                                  "expected an inpainting UNet (9) or a text-to-image one (4)")
        name, extra = scheduler_override(inpaint_settings(c)[2])
        if name is not None:
            pipe.scheduler = getattr(diffusers, name).from_config(pipe.scheduler.config, **extra)
        pipe.set_progress_bar_config(disable=True)
        pipe.unet.to(memory_format=torch.channels_last)  # SDPA attention is diffusers' default processor
        if c.sd_batch_size > 1:
            pipe.vae.enable_slicing()  # decode (and encode) one image at a time: bounded memory
        if c.sd_vae_tiling:
            pipe.vae.enable_tiling()
        size = c.sd_size or native_size(pipe)
        multiple = pipe.vae_scale_factor * 2 ** (len(pipe.unet.config.block_out_channels) - 1)
        if size % multiple:
            raise ConfigError(f"--sd-size {size}: this model needs a multiple of {multiple}")
        if c.sd_compile:
            pipe.unet = torch.compile(pipe.unet)
        return pipe

    def provenance(self) -> dict:
        """What the preset and the checkpoint resolve to: steps, guidance, negative prompt, and the scheduler's
        effective class and config (``--sd-scheduler``, else the checkpoint's own)."""
        if self.folder is None:
            self.check()
        steps, guidance, scheduler = inpaint_settings(self.config)
        name, extra = scheduler_override(scheduler)
        return {"steps": steps, "guidance": guidance, "negative_prompt": self.config.sd_negative_prompt,
                "scheduler": scheduler_provenance(self.folder, name, **extra)}

    @property
    def size(self) -> int:
        """Side of the model's square input: ``--sd-size`` or the checkpoint's native size."""
        if self.config.sd_size:
            return int(self.config.sd_size)
        if self.pipe is None:
            raise RuntimeError("the inpainting model is not loaded yet (call load() first)")
        return native_size(self.pipe)

    def offload(self) -> None:
        if self.pipe is not None:
            release_to_cpu(self.pipe)

    # --- painting ---------------------------------------------------------------------------------------

    def _chunks(self, jobs: Sequence[PaintJob]) -> list[list[tuple[int, int]]]:
        """(job, variation) pairs in UNet batches: whole items packed in order; an item with more variations
        than a batch fills whole batches and its remainder starts the next one."""
        limit = self.config.sd_batch_size
        chunks, current = [], []
        for j, job in enumerate(jobs):
            pairs = [(j, k) for k in range(len(job.prompts))]
            if len(current) + len(pairs) > limit:
                if current:
                    chunks.append(current)
                current = []
                while len(pairs) > limit:
                    chunks.append(pairs[:limit])
                    pairs = pairs[limit:]
            current += pairs
        if current:
            chunks.append(current)
        return chunks

    def _encode_masked(self, jobs: Sequence[PaintJob]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` of the VAE's latent distribution of each job's crop with its mask blanked, one row per
        job: the image and mask go through the pipeline's own processors (``[-1, 1]`` pixels, the mask binarised
        at 0.5, ``image * (mask < 0.5)``), as the pipeline prepares what it encodes for every variation."""
        from PIL import Image

        pipe, size = self.pipe, self.size
        vae = pipe.vae
        init = pipe.image_processor.preprocess([Image.fromarray(j.image) for j in jobs], height=size, width=size)
        mask = pipe.mask_processor.preprocess([Image.fromarray(j.mask.astype(np.uint8) * 255) for j in jobs],
                                              height=size, width=size)
        masked = (init.to(torch.float32) * (mask < 0.5)).to(pipe._execution_device)
        upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
        if upcast:  # SDXL's VAE overflows in fp16, as the pipeline itself handles it
            vae.to(dtype=torch.float32)
        try:
            dist = vae.encode(masked.to(vae.dtype)).latent_dist
            return dist.mean, dist.std
        finally:
            if upcast:
                vae.to(dtype=torch.float16)

    def _draws(self, encoded: tuple[torch.Tensor, torch.Tensor], seed: int) -> tuple:
        """``(generator, initial noise, masked image latents)`` of one variation: its CPU generator, and what
        diffusers' pipeline draws from it before the first step, in its order (``prepare_latents``' noise, then
        ``latent_dist.sample`` of the masked image; ``--masked-latents mode``: no second draw)."""
        from diffusers.utils.torch_utils import randn_tensor

        pipe = self.pipe
        mean, std = encoded
        generator = torch.Generator("cpu").manual_seed(int(seed))
        h = w = self.size // pipe.vae_scale_factor
        noise = randn_tensor((1, pipe.vae.config.latent_channels, h, w), generator=generator,
                             device=pipe._execution_device, dtype=pipe.unet.dtype)
        if self.config.masked_latents == "sample":
            latents = mean + std * randn_tensor(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        else:
            latents = mean
        return generator, noise, (latents * pipe.vae.config.scaling_factor).to(pipe.unet.dtype)

    @torch.no_grad()
    def paint(self, jobs: Sequence[PaintJob]) -> list[PaintResult]:
        """Every job's variations, painted in UNet batches (see the module docstring)."""
        from PIL import Image

        if self.pipe is None:
            raise RuntimeError("the inpainting model is not loaded yet (call load() first)")
        size = self.size
        for job in jobs:
            shapes_ok = job.image.shape == (size, size, 3) and job.mask.shape == (size, size)
            if not shapes_ok or len(job.prompts) != len(job.seeds):
                raise ValueError(f"paint job of shape {job.image.shape} / {job.mask.shape} with {len(job.prompts)} "
                                 f"prompts and {len(job.seeds)} seeds; expected {size}x{size} and one seed per prompt")
        steps, guidance, _ = inpaint_settings(self.config)
        negative = self.config.sd_negative_prompt
        nine = self.pipe.unet.config.in_channels == 9
        results = [PaintResult(np.zeros((len(j.prompts), size, size, 3), np.uint8), [None] * len(j.prompts))
                   for j in jobs]
        pil_images: dict[int, Image.Image] = {}
        pil_masks: dict[int, Image.Image] = {}
        encoded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        remaining = {j: len(job.prompts) for j, job in enumerate(jobs)}
        for chunk in self._chunks(jobs):
            new = list(dict.fromkeys(j for j, _ in chunk if j not in pil_images))
            for j in new:
                pil_images[j] = Image.fromarray(jobs[j].image)
                pil_masks[j] = Image.fromarray(jobs[j].mask.astype(np.uint8) * 255)
            if nine and new:  # one VAE encoding per item, shared by all its variations
                mean, std = self._encode_masked([jobs[j] for j in new])
                for row, j in enumerate(new):
                    encoded[j] = (mean[row : row + 1], std[row : row + 1])
            kwargs = {}
            if nine:
                draws = [self._draws(encoded[j], jobs[j].seeds[k]) for j, k in chunk]
                generators = [d[0] for d in draws]
                kwargs["latents"] = torch.cat([d[1] for d in draws])
                kwargs["masked_image_latents"] = torch.cat([d[2] for d in draws])
            else:  # the pipeline encodes the image itself, drawing from each generator as usual
                generators = [torch.Generator("cpu").manual_seed(int(jobs[j].seeds[k])) for j, k in chunk]
            if negative:
                kwargs["negative_prompt"] = [negative] * len(chunk)
            out = self.pipe(
                prompt=[jobs[j].prompts[k] for j, k in chunk], image=[pil_images[j] for j, _ in chunk],
                mask_image=[pil_masks[j] for j, _ in chunk], height=size, width=size, strength=1.0,
                num_inference_steps=steps, guidance_scale=guidance, output_type="np", generator=generators,
                **kwargs,
            ).images
            for (j, k), img in zip(chunk, out):
                try:
                    results[j].images[k] = to_pixels(img, f"variation {k} (seed {jobs[j].seeds[k]})")
                except NonFiniteOutput as exc:
                    results[j].errors[k] = exc
            for j, _ in chunk:
                remaining[j] -= 1
                if remaining[j] == 0:
                    pil_images.pop(j), pil_masks.pop(j), encoded.pop(j, None)
        return results
