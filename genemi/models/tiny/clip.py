"""Tiny open_clip ViT CLIP, saved as every CLIP checkpoint format genemi reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from genemi.models.tiny.building import seeded

#: A ViT CLIP with the real layout (conv1 patches, class token, resblocks, BPE vocabulary of 49408).
TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def tiny_clip_config(quick_gelu: bool = False) -> dict:
    cfg = copy.deepcopy(TINY_CLIP_CFG)
    cfg["quick_gelu"] = quick_gelu
    return cfg


def build_tiny_clip(seed: int = 0, quick_gelu: bool = False) -> torch.nn.Module:
    """A randomly initialised tiny CLIP; the same seed gives the same weights."""
    from genemi.models.clip import build_clip

    with seeded(seed):
        return build_clip(tiny_clip_config(quick_gelu)).eval()


def save_tiny_clip(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the tiny CLIP in every format; OpenAI-style files hold QuickGELU weights, as OpenAI's do.

    Returns paths keyed by format: ``config`` (model-config JSON usable as a model name),
    ``open_clip_dir`` (``local-dir:`` folder), ``open_clip_state_dict``, ``openai_state_dict`` (fp16
    mixed precision as ``clip.load`` produces on CUDA), ``openai_jit`` (TorchScript archive),
    ``genemi_snapshot`` (the original GeNeMi trainer's epoch file) and ``ceclip_train`` (open_clip /
    CE-CLIP training checkpoint with ``module.`` prefixes).
    """
    from open_clip.model import convert_weights_to_lp

    from genemi.models.clip import default_preprocess_cfg, save_open_clip_dir

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    paths["config"] = out / "tiny-clip.json"
    paths["config"].write_text(json.dumps({"model_cfg": tiny_clip_config()}, indent=2), encoding="utf-8")

    gelu = build_tiny_clip(seed, quick_gelu=False)
    paths["open_clip_dir"] = save_open_clip_dir(
        gelu, tiny_clip_config(False), default_preprocess_cfg(TINY_CLIP_CFG, {}), out / "open_clip"
    )
    paths["open_clip_state_dict"] = out / "open_clip_state_dict.pt"
    torch.save(gelu.state_dict(), paths["open_clip_state_dict"])

    openai = build_tiny_clip(seed + 1, quick_gelu=True)
    fp16 = copy.deepcopy(openai)
    convert_weights_to_lp(fp16, dtype=torch.float16)
    paths["openai_state_dict"] = out / "openai_state_dict.pt"
    torch.save(fp16.state_dict(), paths["openai_state_dict"])

    image = torch.zeros(1, 3, 32, 32)
    text = torch.zeros(1, 32, dtype=torch.long)
    traced = torch.jit.trace(openai, (image, text), check_trace=False)
    paths["openai_jit"] = out / "openai_jit.pt"
    torch.jit.save(traced, str(paths["openai_jit"]))

    optimizer = torch.optim.Adam(fp16.parameters(), lr=1e-6, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)
    paths["genemi_snapshot"] = out / "model_3.pt"
    torch.save(
        {
            "epoch": 3,
            "model_state_dict": fp16.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": torch.tensor(1.25),
        },
        paths["genemi_snapshot"],
    )

    paths["ceclip_train"] = out / "epoch_5.pt"
    torch.save(
        {
            "epoch": 5,
            "name": "ceclip-tiny",
            "state_dict": {f"module.{k}": v for k, v in openai.state_dict().items()},
            "optimizer": torch.optim.AdamW(openai.parameters(), lr=5e-6).state_dict(),
        },
        paths["ceclip_train"],
    )
    return paths
