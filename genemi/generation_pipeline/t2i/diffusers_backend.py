"""``--painter diffusers``: Stable Diffusion 1.x / 2.x, SDXL, SDXL-Turbo and SD3 text-to-image pipelines from a
local diffusers folder, or SD / SDXL from one original-layout ``.safetensors``/``.ckpt`` file with the configs of
a local folder (``--t2i-config``). Nothing is downloaded; the safety checker is never loaded.

The family comes from the files, read as structure before any weight is loaded: ``model_index.json``'s
``_class_name`` (``StableDiffusionPipeline``, ``StableDiffusionXLPipeline``, ``StableDiffusion3Pipeline``; any
other pipeline, e.g. an inpainting one, is refused) and the denoiser's ``sample_size`` x the VAE's scale, the
native size (an SDXL pipeline trained at 512 px is SDXL-Turbo). The family picks the preset's steps and
guidance (:data:`~genemi.generation_pipeline.t2i.config.T2I_PRESETS`); images are painted at the native size
unless ``--t2i-size`` says otherwise.

Prompts are painted ``--t2i-batch-size`` per pipeline call. Each prompt draws its noise from its own CPU
generator seeded with its negative's seed, so its image does not depend on the other prompts of its batch nor on
the device's random-number generator (a prompt painted in a batch equals it painted alone, up to floating-point
noise). A prompt longer than a text encoder takes is cut by the pipeline, as diffusers does; it is reported
``truncated``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from genemi.errors import CheckpointError, ConfigError
from genemi.generation_pipeline.diffusion import (NonFiniteOutput, check_single_file, scheduler_provenance,
                                                  single_file_configs, to_pixels)
from genemi.generation_pipeline.stage import StageContext, release_to_cpu
from genemi.generation_pipeline.t2i.base import Painting
from genemi.generation_pipeline.t2i.config import T2I_PRESETS, T2IConfig
from genemi.models.files import ModelFolder, PipelineFolder, inspect_pipeline_folder
from genemi.models.hf import hub_id_hint, quiet_loading
from genemi.precision import resolve_dtype_name, torch_dtype

#: model_index.json ``_class_name`` -> family (its preset; SDXL at 512 px native becomes ``sdxl-turbo``)
PIPELINES = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl",
             "StableDiffusion3Pipeline": "sd3"}
#: what SD3's pipeline feeds its T5 encoder by default (diffusers' ``max_sequence_length``)
T5_TOKENS = 256
_EXAMPLE = "sdxl-turbo or stable-diffusion-2-1"


@dataclass(frozen=True)
class ModelInfo:
    """What the model files say, read before loading: the pipeline class, its family, native and allowed sizes."""

    pipeline: str  # model_index.json _class_name
    family: str  # key of T2I_PRESETS
    native: int  # native side in pixels
    multiple: int  # sizes the denoiser takes are multiples of this


def describe(folder: PipelineFolder, flag: str) -> ModelInfo:
    """The family of a text-to-image pipeline folder (CheckpointError naming ``flag`` for any other folder)."""
    name = folder.index.get("_class_name")
    if name not in PIPELINES:
        raise CheckpointError(f"{flag} {folder.path}: holds a {name}, not a text-to-image pipeline genemi paints "
                              f"with ({', '.join(PIPELINES)})")
    family = PIPELINES[name]
    part = "transformer" if family == "sd3" else "unet"
    denoiser, vae = folder.components.get(part), folder.components.get("vae")
    if not isinstance(denoiser, ModelFolder) or not isinstance(vae, ModelFolder):
        raise CheckpointError(f"{flag} {folder.path}: model_index.json lists no {part} or no vae, which a {name} "
                              "has")
    config = denoiser.config
    if family != "sd3" and config.get("in_channels") != 4:
        raise CheckpointError(f"{flag} {denoiser.path}: the UNet has {config.get('in_channels')} input channels, "
                              "expected a text-to-image UNet (4; 9 is an inpainting UNet)")
    scale = 2 ** (len(vae.config.get("block_out_channels") or [0]) - 1)
    sample = config.get("sample_size")
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    if not isinstance(sample, int) or sample < 1:
        raise CheckpointError(f"{flag} {denoiser.path}: config.json has no sample_size (the native size)")
    if family == "sd3":
        multiple = scale * int(config.get("patch_size") or 1)
    else:
        multiple = scale * 2 ** (len(config.get("block_out_channels") or [0]) - 1)
    native = sample * scale
    if family == "sdxl" and native == 512:
        family = "sdxl-turbo"
    return ModelInfo(name, family, native, multiple)


def t2i_dtype(choice: str | None, run_dtype, device: str):
    """The stage's weights' dtype: ``--t2i-dtype`` resolved as the run's ``--dtype`` is
    (:func:`genemi.precision.resolve_dtype_name`), else the run's."""
    if choice is None:
        return run_dtype or torch.float32
    return torch_dtype(resolve_dtype_name(choice, device, "--t2i-dtype"))


class DiffusersPainter:
    name = "diffusers"

    def __init__(self, config: T2IConfig, context: StageContext):
        self.config, self.context = config, context
        self.model: ModelInfo | None = None
        self.folder: PipelineFolder | None = None  # the configs the pipeline is built from (set by check)
        self.pipe = None

    # --- setup ------------------------------------------------------------------------------------------

    def check(self) -> None:
        """The model files read as structure without loading a weight (a folder's components, or a single file's
        UNet against its ``--t2i-config`` folder), the family they hold, and the settings against it."""
        c = self.config
        if not c.t2i_model:
            raise ConfigError(f"--painter diffusers needs --t2i-model (a local diffusers text-to-image folder such as "
                              f"{_EXAMPLE}, or a .safetensors file with --t2i-config)")
        path = Path(c.t2i_model).expanduser()
        if path.is_dir():
            self.folder = inspect_pipeline_folder(path, "--t2i-model")
            self.model = describe(self.folder, "--t2i-model")
        elif path.is_file():
            folder = self.folder = single_file_configs(path, c.t2i_config, "--t2i-model", "--t2i-config", _EXAMPLE)
            self.model = describe(folder, "--t2i-config")
            if self.model.family == "sd3":
                raise ConfigError(f"--t2i-model {path}: a single SD3 file is not supported; give the diffusers folder")
            check_single_file(path, folder.components["unet"].config, "--t2i-model", "--t2i-config")
        else:
            raise ConfigError(f"--t2i-model {c.t2i_model}: not found{hub_id_hint(str(c.t2i_model))}; genemi never "
                              "downloads models")
        if c.t2i_size is not None and c.t2i_size % self.model.multiple:
            raise ConfigError(f"--t2i-size {c.t2i_size}: this model needs a multiple of {self.model.multiple}")

    @property
    def steps_and_guidance(self) -> tuple[int, float]:
        """``(steps, guidance)``: the preset (``auto``: the model's family's), overridden by explicit flags."""
        c = self.config
        if self.model is None:
            self.check()
        preset = T2I_PRESETS[self.model.family if c.t2i_preset == "auto" else c.t2i_preset]
        steps = c.t2i_steps if c.t2i_steps is not None else preset["steps"]
        guidance = c.t2i_guidance if c.t2i_guidance is not None else preset["guidance"]
        return int(steps), float(guidance)

    def provenance(self) -> dict:
        """What ``--t2i-preset`` and the model resolve to: family, preset, steps, guidance, size, and the
        scheduler's effective class and config (the checkpoint's own)."""
        steps, guidance = self.steps_and_guidance
        preset = self.model.family if self.config.t2i_preset == "auto" else self.config.t2i_preset
        return {"family": self.model.family, "preset": preset, "steps": steps, "guidance": guidance,
                "size": self.size, "scheduler": scheduler_provenance(self.folder)}

    @property
    def size(self) -> int:
        """Side of the painted images: ``--t2i-size`` or the model's native size."""
        if self.model is None:
            self.check()
        return int(self.config.t2i_size or self.model.native)

    def load(self) -> None:
        if self.pipe is None:
            self.pipe = self._load_pipeline()
        self.pipe.to(self.context.device)

    def _load_pipeline(self):
        import diffusers

        if self.model is None:
            self.check()
        c = self.config
        path = Path(c.t2i_model).expanduser()
        dtype = t2i_dtype(c.t2i_dtype, self.context.dtype, self.context.device)
        cls = getattr(diffusers, self.model.pipeline)
        extra = {"safety_checker": None, "requires_safety_checker": False} if self.model.family == "sd" else {}
        try:
            with quiet_loading():
                if path.is_dir():
                    pipe = cls.from_pretrained(path, dtype=dtype, local_files_only=True, **extra)
                else:
                    pipe = cls.from_single_file(str(path), config=str(Path(c.t2i_config).expanduser()), dtype=dtype,
                                                local_files_only=True, **extra)
        except Exception as exc:  # noqa: BLE001 - diffusers raises many types; all mean "cannot load this"
            raise CheckpointError(f"--t2i-model {path}: cannot load a {self.model.pipeline}: {type(exc).__name__}: "
                                  f"{exc}") from exc
        pipe.set_progress_bar_config(disable=True)
        if getattr(pipe, "unet", None) is not None:
            pipe.unet.to(memory_format=torch.channels_last)  # SDPA attention is diffusers' default processor
        if c.t2i_batch_size > 1:
            pipe.vae.enable_slicing()  # decode one image at a time: bounded memory
        return pipe

    def offload(self) -> None:
        if self.pipe is not None:
            release_to_cpu(self.pipe)

    # --- painting ---------------------------------------------------------------------------------------

    def _limits(self) -> list[tuple[object, int]]:
        """Each tokenizer of the pipeline with the most tokens its encoder is given (specials included)."""
        pipe = self.pipe
        limits = [(tok, int(tok.model_max_length)) for tok in (getattr(pipe, "tokenizer", None),
                                                                getattr(pipe, "tokenizer_2", None)) if tok is not None]
        if getattr(pipe, "tokenizer_3", None) is not None:  # SD3's T5
            limits.append((pipe.tokenizer_3, T5_TOKENS))
        return limits

    def truncated(self, prompts: Sequence[str]) -> list[bool]:
        """Whether each prompt is longer than one of the pipeline's text encoders takes (the pipeline then
        encodes only its beginning)."""
        if self.pipe is None:
            raise RuntimeError("the text-to-image model is not loaded yet (call load() first)")
        limits = self._limits()
        return [any(len(tok(p, truncation=False).input_ids) > limit for tok, limit in limits) for p in prompts]

    @torch.no_grad()
    def paint(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Painting]:
        if self.pipe is None:
            raise RuntimeError("the text-to-image model is not loaded yet (call load() first)")
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts and {len(seeds)} seeds: one seed per prompt")
        steps, guidance = self.steps_and_guidance
        size, limit = self.size, self.config.t2i_batch_size
        out = [Painting(truncated=t) for t in self.truncated(prompts)]
        for start in range(0, len(prompts), limit):
            chunk = range(start, min(start + limit, len(prompts)))
            images = self.pipe(
                prompt=[prompts[i] for i in chunk], height=size, width=size, num_inference_steps=steps,
                guidance_scale=guidance, output_type="np",
                generator=[torch.Generator("cpu").manual_seed(int(seeds[i])) for i in chunk],
            ).images
            for i, image in zip(chunk, images, strict=True):
                try:
                    out[i].image = to_pixels(image, f"prompt {i} (seed {seeds[i]})")
                except NonFiniteOutput as exc:
                    out[i].error = exc
        return out
