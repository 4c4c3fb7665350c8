"""The learned shapes-world inpainter on a budget of seconds: the trained folder loads through the real ``diffusers``
inpaint backend, and it paints the asked objects closer to the world's exact rendering than the untrained model it
starts from (measured here on held-out scenes, independently of the training's own loss and of edit_fidelity)."""

import random

import numpy as np
import pytest
import torch

from genemi.synthetic.inpainter_training import InpainterTrainingConfig, build_examples, prompt_for, train_inpainter

SIZE = 16  # world images of 16 px (latents 8 x 8): enough to learn colours in seconds
BUDGET = dict(image_size=SIZE, num_scenes=30, vae_steps=50, vae_batch_size=16, unet_steps=80, batch_size=16,
              unet_lr=2e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("learned_inpainter")
    return train_inpainter(out, InpainterTrainingConfig(**BUDGET))


def _inpainter(folder, size=None):
    from genemi.generation_pipeline.inpainting.config import InpaintConfig
    from genemi.generation_pipeline.inpainting.diffusers_backend import DiffusersInpainter
    from genemi.generation_pipeline.stage import StageContext

    backend = DiffusersInpainter(InpaintConfig(sd_checkpoint=str(folder), sd_num_steps=8, sd_size=size), StageContext())
    backend.check()
    backend.load()
    return backend


def _held_out_jobs(count=6, size=32):
    """Edits of test-split scenes (never trained on): source, grown mask, prompt, and the world's rendering."""
    from genemi.generation_pipeline.inpainting.diffusers_backend import PaintJob
    from genemi.synthetic.inpainter_training import grow
    from genemi.synthetic.scenes import COLOURS, SplitSpec, render, sample_split

    rng = random.Random(7)
    jobs, truths = [], []
    for scene in sample_split(SplitSpec.default(), "test", count, seed=5):
        rendered = render(scene, size)
        index = max(range(len(scene.objects)), key=lambda i: rendered.masks[i].sum())
        edited = scene.with_object(index, colour=rng.choice([c for c in COLOURS if c != scene.objects[index].colour]))
        mask = grow(rendered.masks[index], 1)
        prompt = prompt_for(edited.objects[index], rng)
        jobs.append(PaintJob(np.asarray(rendered.image), mask, [prompt], [rng.randrange(1000)]))
        truths.append(np.asarray(render(edited, size).image))
    return jobs, truths


def _region_error(backend, jobs, truths) -> float:
    """Mean absolute RGB error inside the masks between the painted variations and the world's renderings."""
    errors = []
    for job, truth, result in zip(jobs, truths, backend.paint(jobs)):
        assert result.errors == [None]
        errors.append(np.abs(result.images[0].astype(float) - truth.astype(float))[job.mask].mean())
    return float(np.mean(errors))


def test_examples_mask_the_object_and_name_the_edit():
    examples = build_examples(InpainterTrainingConfig(num_scenes=5, edits_per_object=1))
    assert len(examples) >= 5 and len(examples.prompts) == len(examples.masks)
    outside = ~examples.masks
    assert np.array_equal(examples.sources[outside], examples.targets[outside])  # only the mask is repainted
    assert all("," in p or p.startswith(("a", "close")) for p in examples.prompts)


def test_training_is_deterministic(tmp_path):
    cfg = InpainterTrainingConfig(**{**BUDGET, "num_scenes": 5, "vae_steps": 3, "unet_steps": 3})
    first, second = train_inpainter(tmp_path / "a", cfg), train_inpainter(tmp_path / "b", cfg)
    assert first.unet_losses == second.unet_losses and first.vae_losses == second.vae_losses
    weights = sorted(p.relative_to(first.pipeline_dir) for p in first.pipeline_dir.rglob("*.safetensors"))
    assert weights and all((first.pipeline_dir / w).read_bytes() == (second.pipeline_dir / w).read_bytes()
                           for w in weights)


@torch.no_grad()
def _noise_loss(pipe, jobs, truths) -> float:
    """The noise-prediction error of ``pipe`` on the held-out edits (fixed noise and timesteps), computed here."""
    gen = torch.Generator().manual_seed(0)
    pixels = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    masks = torch.from_numpy(np.stack([j.mask for j in jobs]))[:, None].float()
    scale = pipe.vae.config.scaling_factor
    latents = pipe.vae.encode(pixels(truths)).latent_dist.mean * scale
    masked = pipe.vae.encode(pixels([j.image for j in jobs]) * (masks < 0.5)).latent_dist.mean * scale
    small = torch.nn.functional.interpolate(masks, size=latents.shape[-2:])
    ids = pipe.tokenizer([j.prompts[0] for j in jobs], padding="max_length", max_length=77, truncation=True,
                         return_tensors="pt").input_ids
    losses = []
    for _ in range(4):
        noise = torch.randn(latents.shape, generator=gen)
        t = torch.randint(50, 950, (len(jobs),), generator=gen)
        noisy = pipe.scheduler.add_noise(latents, noise, t)
        pred = pipe.unet(torch.cat([noisy, small, masked], 1), t, encoder_hidden_states=pipe.text_encoder(ids)[0])
        losses.append(torch.nn.functional.mse_loss(pred.sample, noise).item())
    return float(np.mean(losses))


def test_the_trained_folder_loads_in_the_real_backend_and_beats_the_untrained_one(trained, tmp_path):
    from genemi.models.tiny import save_tiny_sd_inpainting

    assert trained.unet_losses[-1] < trained.unet_losses[0] and trained.vae_losses[-1] < trained.vae_losses[0]
    jobs, truths = _held_out_jobs(6, SIZE)
    learned = _inpainter(trained.pipeline_dir)  # its native size is the training's
    untrained = _inpainter(save_tiny_sd_inpainting(tmp_path, seed=0)["sd_inpainting"], SIZE)
    assert learned.size == SIZE
    assert _noise_loss(learned.pipe, jobs, truths) < 0.8 * _noise_loss(untrained.pipe, jobs, truths)
    assert _region_error(learned, jobs, truths) < 0.9 * _region_error(untrained, jobs, truths)
