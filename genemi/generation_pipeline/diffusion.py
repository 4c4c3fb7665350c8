"""What the stages that paint with diffusers share (``inpaint``, ``t2i``): local pipeline folders and single
original-layout files checked before any weight is loaded, the model's native size, and model outputs turned
into pixels (a non-finite output fails only its image)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genemi.errors import CheckpointError, ConfigError, GenemiError
from genemi.models.files import PipelineFolder, inspect_pipeline_folder, inspect_weights, require_weights_only
from genemi.models.hf import hub_id_hint

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
#: the first UNet convolution in the original (CompVis / SGM) layout a single SD / SDXL file holds
UNET_CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"


class NonFiniteOutput(GenemiError):
    """The model returned NaN or infinite pixels for an image (e.g. fp16 overflow)."""


def pipeline_folder(path: Path, flag: str, example: str = "stable-diffusion-2-inpainting") -> Path:
    """``path`` if it is a local folder with a ``model_index.json`` (a ConfigError naming ``flag`` otherwise;
    ``example`` names a model of the kind expected)."""
    if not path.is_dir():
        raise ConfigError(f"{flag} {path}: not a local folder{hub_id_hint(str(path))}; genemi never downloads models")
    if not (path / "model_index.json").is_file():
        raise ConfigError(f"{flag} {path}: no model_index.json (expected a diffusers pipeline folder, e.g. a "
                          f"downloaded {example})")
    return path


def single_file_configs(path: Path, config_dir: str | None, flag: str, config_flag: str,
                        example: str = "stable-diffusion-2-inpainting") -> PipelineFolder:
    """The configs folder (``config_flag``) a single original-layout file (``flag``) is loaded with, read without
    weights; refused unless the file is ``.safetensors``/``.ckpt`` and the folder is given and local."""
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise ConfigError(f"{flag} {path}: expected a diffusers folder or a .safetensors/.ckpt file")
    if not config_dir:
        raise ConfigError(f"{flag} {path} is a single file: give {config_flag}, the local diffusers folder of the "
                          "same model type whose configs it uses (genemi never downloads them)")
    folder = pipeline_folder(Path(config_dir).expanduser(), config_flag, example)
    return inspect_pipeline_folder(folder, config_flag, weights=False)


def check_single_file(path: Path, unet: dict, flag: str, config_flag: str) -> None:
    """A single ``.safetensors``/``.ckpt`` file read as structure: an original-layout Stable Diffusion checkpoint
    whose UNet has the input channels and width of the ``config_flag`` folder's UNet it is loaded with."""
    found = inspect_weights(path, flag)
    if found.format != "safetensors":
        require_weights_only(found, flag)
    conv = found.tensors("state_dict").get(UNET_CONV_IN)
    if conv is None or len(conv.shape) != 4:
        raise CheckpointError(f"{flag} {path}: holds no Stable Diffusion UNet in the original layout "
                              f"({UNET_CONV_IN} is missing), which from_single_file reads")
    width, channels = conv.shape[:2]
    want = (unet.get("block_out_channels") or [None])[0], unet.get("in_channels")
    if (width, channels) != want:
        raise CheckpointError(f"{flag} {path}: its UNet takes {channels} input channels at width {width}, "
                              f"the {config_flag} UNet {want[1]} at width {want[0]}: give the config folder of the "
                              "same model type")


def native_size(pipe) -> int:
    """The side in pixels a loaded pipeline was trained at: its denoiser's ``sample_size`` x the VAE's scale."""
    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    sample = denoiser.config.sample_size
    sample = sample[0] if isinstance(sample, (list, tuple)) else sample
    return int(sample) * int(pipe.vae_scale_factor)


def to_pixels(image: np.ndarray, what: str, hint: str = "with --precision fp16 try bf16 or fp32") -> np.ndarray:
    """A pipeline's ``output_type="np"`` image in [0, 1] as uint8; NonFiniteOutput naming ``what`` if any value
    is NaN or infinite."""
    if not np.isfinite(image).all():
        raise NonFiniteOutput(f"the model returned non-finite pixels for {what}; {hint}")
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def scheduler_provenance(folder, class_name: str | None = None, **extra) -> dict:
    """``{"class", "config"}`` of the scheduler a pipeline folder's (:class:`~genemi.models.files.PipelineFolder`)
    pipeline runs with: its own ``scheduler_config.json``, or ``class_name`` built from it with ``extra`` (as the
    backends replace it). The config is the scheduler's effective one (diffusers' defaults filled in); building a
    scheduler loads no weights."""
    import json

    import diffusers

    path = folder.components.get("scheduler")
    if path is None:
        return {"class": None, "config": None}
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    name = class_name or config.get("_class_name")
    scheduler = getattr(diffusers, name).from_config(config, **extra)
    return {"class": type(scheduler).__name__,
            "config": {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}}
