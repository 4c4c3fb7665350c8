"""A learned inpainter for the shapes world: a small Stable Diffusion inpainting model trained on the world's edits.

The ``render`` inpainter re-renders the scene (exact); this is the learned arm: a diffusers
``StableDiffusionInpaintPipeline`` (9-channel UNet fed ``[noisy latents, mask, masked-image latents]``, a CLIP
text encoder, an ``AutoencoderKL``) that genemi trains itself on the CPU in minutes, saved as a diffusers folder
that ``genemi generate --inpainter diffusers --sd-checkpoint <folder>`` loads unchanged.

The architecture and initial weights are the tiny pipeline of :func:`genemi.models.tiny.save_tiny_sd_inpainting`
(32 px native, latents 16 x 16, 4 latent channels, a 2-layer CLIP text encoder with genemi's BPE vocabulary). The
training data are the world's own edits, in three steps:

1. **Examples** (:func:`build_examples`): train-split scenes (never a held-out pair or arrangement, also after the
   edit) rendered at the model's size. For every visible object: the source image, the object's exact mask grown by
   ``mask_dilate`` pixels (as ``--mask-dilate`` grows the ground-truth segmenter's mask), an edit of the object
   (a new colour, and with some probability a new shape and texture; the size stays, so the new object fits the old
   mask's neighbourhood) rendered by the world, and a prompt naming the new object phrase in the wordings the
   ``rules`` portrayer writes ("a photo of a small red star, true to life"). The target is the edited rendering
   inside the mask and the source outside it (what a mask paste gives).
2. **VAE** (:func:`fit_vae`): the tiny random autoencoder learns to reconstruct the world's images and their masked
   versions (mean squared error + a small KL term); its ``scaling_factor`` is set to one over the latents' standard
   deviation, as Stable Diffusion's is.
3. **UNet and text encoder** (:func:`fit_unet`): the usual noise-prediction objective on the frozen VAE's latents,
   the loss weighted up inside the (latent-size) mask, the prompt dropped to ``""`` with probability
   ``uncond_prob`` so classifier-free guidance has an unconditional branch to push against.

Everything random is drawn from generators seeded by ``seed`` (the same seed gives the same weights on the same
machine and thread count).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genemi.errors import ConfigError
from genemi.synthetic.scenes import COLOURS, SHAPES, Scene, SplitSpec, render, sample_split

#: the folder, under the output folder, of the trained diffusers pipeline
PIPELINE_DIR = "pipeline"
#: how prompts word the new object (the ``rules`` portrayer's forms: lead words, the phrase, detail words)
_LEADS = ("{a} {phrase}", "a photo of {a} {phrase}", "close-up photo of {a} {phrase}", "a picture of {a} {phrase}")
_DETAILS = ("", ", true to life", ", realistic proportions", ", fine detail", ", vivid {colour} colour", ", photo",
            ", realistic, natural light", ", sharp focus")

#: steps per logged loss (the mean over the window)
LOG_EVERY = 10
#: progress callback: (phase, step, total steps, last loss)
Progress = Callable[[str, int, int, float], None]


@dataclass
class InpainterTrainingConfig:
    """What :func:`train_inpainter` trains on and for how long (defaults: about 10 minutes on 2 CPU cores)."""

    num_scenes: int = 1500  # train-split scenes the examples come from
    edits_per_object: int = 2  # edits drawn per visible object
    image_size: int = 32  # world rendering = model input side (the tiny pipeline's native size)
    mask_dilate: int = 1  # pixels the object mask is grown by (pass the same --mask-dilate to genemi generate)
    shape_change_prob: float = 0.5  # an edit also changes the shape with this probability
    texture_change_prob: float = 0.2  # ... and the texture with this one
    vae_steps: int = 300
    vae_batch_size: int = 16
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-6
    unet_steps: int = 2400
    unet_lr: float = 1e-3
    text_lr: float = 3e-4
    batch_size: int = 32
    mask_weight: float = 4.0  # the noise-prediction loss inside the latent mask counts 1 + mask_weight times
    uncond_prob: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name in ("num_scenes", "edits_per_object", "batch_size", "vae_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} = {getattr(self, name)}: must be at least 1")
        for name in ("vae_steps", "unet_steps", "mask_dilate"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} = {getattr(self, name)}: must not be negative")
        if self.image_size < 16 or self.image_size % 8:
            raise ConfigError(f"image_size = {self.image_size}: must be a multiple of 8, at least 16")


@dataclass
class InpaintExamples:
    """``sources`` and ``targets`` uint8 ``[N, S, S, 3]``, ``masks`` bool ``[N, S, S]``, one prompt each."""

    sources: np.ndarray
    masks: np.ndarray
    targets: np.ndarray
    prompts: list[str]

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class TrainingReport:
    """What :func:`train_inpainter` did: the folder it wrote, the losses (mean per logged window), timings."""

    pipeline_dir: Path
    config: dict
    num_examples: int
    vae_losses: list[float] = field(default_factory=list)
    unet_losses: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**asdict(self), "pipeline_dir": str(self.pipeline_dir)}


# --- examples -------------------------------------------------------------------------------------------


def grow(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` grown by ``px`` pixels (the inpaint stage's own dilation)."""
    from genemi.masks import dilate

    return dilate(mask, px) if px else mask


def prompt_for(obj, rng: random.Random) -> str:
    """A portrayal-style prompt naming ``obj`` (a :class:`~genemi.synthetic.scenes.SceneObject`)."""
    from genemi.text.inflection import indefinite_article

    phrase = obj.phrase()
    head = rng.choice(_LEADS).format(a=indefinite_article(phrase), phrase=phrase)
    return head + rng.choice(_DETAILS).format(colour=obj.colour)


def _edit(scene: Scene, index: int, cfg: InpainterTrainingConfig, spec: SplitSpec, rng: random.Random) -> Scene:
    """The scene with object ``index`` given a random new colour (and maybe shape, texture) that creates no
    held-out element; the scene unchanged when 20 draws all would."""
    obj = scene.objects[index]
    for _ in range(20):
        changes = {"colour": rng.choice(list(COLOURS))}
        if rng.random() < cfg.shape_change_prob:
            changes["shape"] = rng.choice(SHAPES)
        if rng.random() < cfg.texture_change_prob:
            changes["texture"] = "striped" if obj.texture == "plain" else "plain"
        edited = scene.with_object(index, **changes)
        if not spec.novel(edited):
            return edited
    return scene


def build_examples(cfg: InpainterTrainingConfig, progress: Progress | None = None) -> InpaintExamples:
    """The training examples of :class:`InpainterTrainingConfig` (see the module docstring, step 1)."""
    spec = SplitSpec.default()
    rng = random.Random(f"{cfg.seed}:inpainter-examples")
    sources, masks, targets, prompts = [], [], [], []
    scenes = sample_split(spec, "train", cfg.num_scenes, cfg.seed)
    for n, scene in enumerate(scenes):
        rendered = render(scene, cfg.image_size)
        image = np.asarray(rendered.image)
        for index, exact in enumerate(rendered.masks):
            if not exact.any():
                continue
            mask = grow(exact, cfg.mask_dilate)
            for _ in range(cfg.edits_per_object):
                edited = _edit(scene, index, cfg, spec, rng)
                painted = np.asarray(render(edited, cfg.image_size).image)
                sources.append(image)
                masks.append(mask)
                targets.append(np.where(mask[..., None], painted, image))
                prompts.append(prompt_for(edited.objects[index], rng))
        if progress is not None:
            progress("examples", n + 1, len(scenes), float("nan"))
    return InpaintExamples(np.stack(sources), np.stack(masks), np.stack(targets), prompts)


# --- training -------------------------------------------------------------------------------------------


def _pixels(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, S, S, 3]`` -> float ``[N, 3, S, S]`` in ``[-1, 1]`` (the pipeline's image processor)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _masked_pixels(examples: InpaintExamples) -> torch.Tensor:
    """The sources with the mask blanked as the pipeline blanks it: ``image * (mask < 0.5)``."""
    keep = torch.from_numpy(~examples.masks)[:, None].float()
    return _pixels(examples.sources) * keep


def fit_vae(vae, examples: InpaintExamples, cfg: InpainterTrainingConfig, generator: torch.Generator,
            progress: Progress | None = None) -> list[float]:
    """Train ``vae`` to reconstruct the targets and the masked sources (step 2); sets its ``scaling_factor``.
    Returns the mean loss of each ``LOG_EVERY``-step window."""
    data = torch.cat([_pixels(examples.targets), _masked_pixels(examples)])
    optimizer = torch.optim.Adam(vae.parameters(), lr=cfg.vae_lr)
    vae.train()
    losses, window = [], []
    for step in range(cfg.vae_steps):
        batch = data[torch.randint(len(data), (cfg.vae_batch_size,), generator=generator)]
        dist = vae.encode(batch).latent_dist
        latents = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=generator)
        recon = vae.decode(latents).sample
        loss = torch.nn.functional.mse_loss(recon, batch) + cfg.vae_kl_weight * dist.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append(loss.item())
        if len(window) == LOG_EVERY or step == cfg.vae_steps - 1:
            losses.append(float(np.mean(window)))
            window = []
        if progress is not None:
            progress("vae", step + 1, cfg.vae_steps, loss.item())
    vae.eval()
    with torch.no_grad():
        std = torch.cat([vae.encode(data[i : i + 256]).latent_dist.mean for i in range(0, min(len(data), 1024), 256)])
    vae.register_to_config(scaling_factor=float(1.0 / std.std()))
    return losses


@torch.no_grad()
def _encode(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` of the VAE's latent distribution, in batches."""
    means, stds = [], []
    for i in range(0, len(pixels), 256):
        dist = vae.encode(pixels[i : i + 256]).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
    return torch.cat(means), torch.cat(stds)


def fit_unet(pipe, examples: InpaintExamples, cfg: InpainterTrainingConfig, generator: torch.Generator,
             progress: Progress | None = None) -> list[float]:
    """Train the pipeline's UNet and text encoder on the examples (step 3), the VAE frozen. Returns the mean
    unweighted noise-prediction loss of each ``LOG_EVERY``-step window."""
    from diffusers import DDPMScheduler

    vae, unet, text_encoder, tokenizer = pipe.vae, pipe.unet, pipe.text_encoder, pipe.tokenizer
    noise_schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    scale = vae.config.scaling_factor
    target_mean, target_std = _encode(vae, _pixels(examples.targets))
    masked_mean, masked_std = _encode(vae, _masked_pixels(examples))
    latent_side = target_mean.shape[-1]
    masks = torch.nn.functional.interpolate(torch.from_numpy(examples.masks)[:, None].float(),
                                            size=(latent_side, latent_side))  # the pipeline's mask resize
    ids = tokenizer(examples.prompts + [""], padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    prompt_ids, empty_ids = ids[:-1], ids[-1:]
    params = [{"params": unet.parameters(), "lr": cfg.unet_lr},
              {"params": text_encoder.parameters(), "lr": cfg.text_lr}]
    optimizer = torch.optim.AdamW(params, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * (1 - s / max(1, cfg.unet_steps))))
    unet.train()
    text_encoder.train()
    losses, window = [], []
    num_train_timesteps = noise_schedule.config.num_train_timesteps
    for step in range(cfg.unet_steps):
        rows = torch.randint(len(examples), (cfg.batch_size,), generator=generator)
        latents = (target_mean[rows] + target_std[rows] * torch.randn(target_mean[rows].shape, generator=generator))
        masked = (masked_mean[rows] + masked_std[rows] * torch.randn(masked_mean[rows].shape, generator=generator))
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(num_train_timesteps, (cfg.batch_size,), generator=generator)
        noisy = noise_schedule.add_noise(latents * scale, noise, t)
        drop = torch.rand(cfg.batch_size, generator=generator) < cfg.uncond_prob
        batch_ids = torch.where(drop[:, None], empty_ids, prompt_ids[rows])
        context = text_encoder(batch_ids)[0]
        inputs = torch.cat([noisy, masks[rows], masked * scale], dim=1)
        pred = unet(inputs, t, encoder_hidden_states=context).sample
        err = (pred - noise).pow(2)
        loss = (err * (1 + cfg.mask_weight * masks[rows])).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        window.append(err.mean().item())
        if len(window) == LOG_EVERY or step == cfg.unet_steps - 1:
            losses.append(float(np.mean(window)))
            window = []
        if progress is not None:
            progress("unet", step + 1, cfg.unet_steps, window[-1] if window else losses[-1])
    unet.eval()
    text_encoder.eval()
    return losses


def train_inpainter(out_dir: str | Path, cfg: InpainterTrainingConfig | None = None,
                    progress: Progress | None = None) -> TrainingReport:
    """Build the examples, fit the VAE, then the UNet and text encoder, starting from the tiny pipeline built
    from ``cfg.seed``; save the diffusers folder to ``out_dir/pipeline`` and return a :class:`TrainingReport`."""
    import tempfile

    from diffusers import StableDiffusionInpaintPipeline

    from genemi.models.hf import quiet_loading
    from genemi.models.tiny import save_tiny_sd_inpainting
    from genemi.models.tiny.building import save_folder

    cfg = cfg or InpainterTrainingConfig()
    out_dir = Path(out_dir)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    examples = build_examples(cfg, progress)
    seconds["examples"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp, quiet_loading():
        pipe = StableDiffusionInpaintPipeline.from_pretrained(save_tiny_sd_inpainting(tmp, cfg.seed)["sd_inpainting"],
                                                              local_files_only=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    start = time.perf_counter()
    vae_losses = fit_vae(pipe.vae, examples, cfg, generator, progress)
    seconds["vae"] = time.perf_counter() - start
    pipe.vae.requires_grad_(False)
    start = time.perf_counter()
    unet_losses = fit_unet(pipe, examples, cfg, generator, progress)
    seconds["unet"] = time.perf_counter() - start
    pipe.unet.register_to_config(sample_size=cfg.image_size // pipe.vae_scale_factor)  # native size = trained size
    folder = save_folder(out_dir / PIPELINE_DIR, pipe)
    return TrainingReport(folder, asdict(cfg), len(examples), vae_losses, unet_losses, seconds)


__all__ = ["InpaintExamples", "InpainterTrainingConfig", "PIPELINE_DIR", "TrainingReport", "build_examples",
           "fit_unet", "fit_vae", "prompt_for", "train_inpainter"]
