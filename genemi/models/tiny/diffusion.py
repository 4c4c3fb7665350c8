"""Tiny Stable Diffusion pipelines: a real diffusers ``StableDiffusionInpaintPipeline`` folder (9-channel UNet,
AutoencoderKL, CLIP text encoder + BPE tokenizer, PNDM scheduler), and a ``StableDiffusionPipeline`` text-to-image
folder of the same components with a 4-channel UNet; each also as one original-layout (CompVis /
``sd-v1-5*.ckpt`` key names) ``.safetensors`` file that ``from_single_file`` reads with the folder as ``config=``.
Native size 32 px (latents 16 x 16, VAE scale factor 2); the UNet is convolutional, so ``--sd-size 64`` works
too."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from genemi.models.tiny.building import save_folder, seeded

_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _learn_merges(words: "dict[tuple[str, ...], int]", num_merges: int) -> list[tuple[str, str]]:
    """Byte-pair merges learnt deterministically: the most frequent adjacent pair first, ties broken by the
    pair itself (the tokenizers trainer breaks ties differently from run to run, so two saves differed)."""
    from collections import Counter

    merges: list[tuple[str, str]] = []
    words = Counter(words)
    for _ in range(num_merges):
        pairs: Counter = Counter()
        for word, freq in words.items():
            for a, b in zip(word, word[1:]):
                pairs[a, b] += freq
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        merged: Counter = Counter()
        for word, freq in words.items():
            out, k = [], 0
            while k < len(word):
                if k + 1 < len(word) and (word[k], word[k + 1]) == best:
                    out.append(word[k] + word[k + 1])
                    k += 2
                else:
                    out.append(word[k])
                    k += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def _clip_vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A small CLIP-style byte-level BPE (``</w>`` ends words) learnt from genemi's vocabulary, identical on
    every call: every byte symbol alone and word-final, then the learnt merges."""
    import re
    from collections import Counter

    from tokenizers import pre_tokenizers

    from genemi.models.tiny.language import corpus

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    byte_symbol = {b: s for b, s in enumerate(sorted(alphabet, key=lambda c: _byte_of(c)))}
    words: Counter = Counter()
    for text in corpus():
        for word in re.findall(r"[^\W\d_]+|\d|[^\s\w]+", text.lower()):
            symbols = [byte_symbol[b] for b in word.encode("utf-8")]
            words[tuple(symbols[:-1] + [symbols[-1] + "</w>"])] += 1
    merges = _learn_merges(words, 800 - 2 * len(alphabet) - 2)
    symbols = sorted(alphabet)
    ordered = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [_BOS, _EOS]
    vocab: dict[str, int] = {}
    for token in ordered:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def _byte_of(symbol: str) -> int:
    """The byte GPT-2's byte-level alphabet maps to ``symbol``."""
    code = ord(symbol)
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    if code in printable:
        return code
    return [b for b in range(256) if b not in printable][code - 256]


def _build(seed: int, text_to_image: bool = False):
    """The tiny inpainting pipeline (9-channel UNet), or with ``text_to_image`` a ``StableDiffusionPipeline``
    (4-channel UNet): the same components otherwise, drawn from the same seed in the same order."""
    from diffusers import (AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab, merges = _clip_vocabulary()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # as SD
    with seeded(seed):
        unet = UNet2DConditionModel(
            sample_size=16, in_channels=4 if text_to_image else 9, out_channels=4, layers_per_block=1,
            block_out_channels=(16, 32),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32, attention_head_dim=8, use_linear_projection=True, norm_num_groups=8,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32), layers_per_block=1,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=8, sample_size=32,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
            max_position_embeddings=77, bos_token_id=vocab[_BOS], eos_token_id=vocab[_EOS], pad_token_id=vocab[_EOS],
            projection_dim=32,
        ))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, set_alpha_to_one=False)
    cls = StableDiffusionPipeline if text_to_image else StableDiffusionInpaintPipeline
    return cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)


# --- diffusers -> original (CompVis) key names, the layout of sd-v1-5-inpainting.ckpt --------------------

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _rename(rest: str, pairs) -> str:
    for new, old in pairs:
        if rest.startswith(new + "."):
            return old + rest[len(new):]
    return rest


def _unet_to_ldm(sd: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    per = config.layers_per_block + 1
    has_attn = ["CrossAttn" in t for t in config.up_block_types]
    out = {}
    for key, value in sd.items():
        if key in fixed:
            new = fixed[key]
        elif m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"input_blocks.{per * int(m[1]) + int(m[2]) + 1}.0.{_rename(m[3], _RESNET)}"
        elif m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            new = f"input_blocks.{per * int(m[1]) + int(m[2]) + 1}.1.{m[3]}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            new = f"input_blocks.{per * (int(m[1]) + 1)}.0.op.{m[2]}"
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"middle_block.{2 * int(m[1])}.{_rename(m[2], _RESNET)}"
        elif m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
            new = f"middle_block.1.{m[1]}"
        elif m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"output_blocks.{per * int(m[1]) + int(m[2])}.0.{_rename(m[3], _RESNET)}"
        elif m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            new = f"output_blocks.{per * int(m[1]) + int(m[2])}.1.{m[3]}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            b = int(m[1])
            new = f"output_blocks.{per * b + per - 1}.{2 if has_attn[b] else 1}.conv.{m[2]}"
        else:
            raise KeyError(f"no original-layout name for UNet weight {key}")
        out["model.diffusion_model." + new] = value
    return out


def _vae_to_ldm(sd: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    n = len(config.up_block_types)
    out = {}
    for key, value in sd.items():
        if key in fixed:
            new = fixed[key]
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"encoder.down.{m[1]}.block.{m[2]}.{_rename(m[3], [('conv_shortcut', 'nin_shortcut')])}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            new = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"decoder.up.{n - 1 - int(m[1])}.block.{m[2]}.{_rename(m[3], [('conv_shortcut', 'nin_shortcut')])}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            new = f"decoder.up.{n - 1 - int(m[1])}.upsample.conv.{m[2]}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{_rename(m[3], [('conv_shortcut', 'nin_shortcut')])}"
        elif m := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
            new = f"{m[1]}.mid.attn_1.{_rename(m[2], _VAE_ATTN)}"
            if value.ndim == 2:  # the original's attention projections are 1x1 convolutions
                value = value[:, :, None, None]
        else:
            raise KeyError(f"no original-layout name for VAE weight {key}")
        out["first_stage_model." + new] = value
    return out


def _text_to_ldm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # transformers >= 5.6 flattened CLIPTextModel (no ``text_model.`` level); the original layout keeps it
    return {"cond_stage_model.transformer.text_model." + k.removeprefix("text_model."): v for k, v in sd.items()
            if not k.endswith("position_ids")}


def _save(out_dir: str | Path, name: str, pipe) -> dict[str, Path]:
    """``out_dir/<name>/`` (the diffusers folder) and ``out_dir/<name>.safetensors`` (the same weights in the
    original layout)."""
    from safetensors.torch import save_file

    out = save_folder(Path(out_dir) / name, pipe)  # diffusers writes safetensors
    single = Path(out_dir) / f"{name}.safetensors"
    weights = {**_unet_to_ldm(pipe.unet.state_dict(), pipe.unet.config),
               **_vae_to_ldm(pipe.vae.state_dict(), pipe.vae.config),
               **_text_to_ldm(pipe.text_encoder.state_dict())}
    save_file({k: v.contiguous() for k, v in weights.items()}, single)
    return {name: out, f"{name}_single_file": single}


def save_tiny_sd_inpainting(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the tiny pipeline; returns ``sd_inpainting`` (the diffusers folder, what
    ``AutoPipelineForInpainting.from_pretrained`` loads) and ``sd_inpainting_single_file`` (the same weights in
    the original layout, for ``--sd-checkpoint FILE --sd-config FOLDER``)."""
    return _save(out_dir, "sd_inpainting", _build(seed))


def save_tiny_sd_t2i(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the tiny text-to-image pipeline; returns ``sd_t2i`` (a ``StableDiffusionPipeline`` folder: 4-channel
    UNet, native 32 px, 77-token text encoder, what ``--t2i-model`` takes) and ``sd_t2i_single_file`` (the same
    weights in the original layout, for ``--t2i-model FILE --t2i-config FOLDER``)."""
    return _save(out_dir, "sd_t2i", _build(seed, text_to_image=True))
