"""Epoch snapshots: the original GeNeMi format plus what an exact resume needs.

``model_{epoch}.pt`` holds ``{'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}`` exactly as the
original trainer wrote it (``model_state_dict`` uses OpenAI ``clip`` key names, which open_clip shares), and
a ``genemi`` section: resolved config, model config (incl. QuickGELU), optimizer step, GradScaler and
loss state (CE-CLIP margins), RNG states. Everything loads with ``torch.load(weights_only=True)``.
Files are written to a temporary name and renamed, so an interrupted save never leaves a broken snapshot.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import torch

from genemi.errors import CheckpointError
from genemi.models.checkpoints import torch_load

SNAPSHOT_PATTERN = re.compile(r"^(?:model|epoch)_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_snapshot(
    path: Path,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_value: float,
    genemi_state: dict[str, Any],
) -> Path:
    """Write one epoch snapshot atomically; returns its path."""
    payload = {
        "epoch": epoch,
        "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": float(loss_value),
        "genemi": {**genemi_state, "rng": rng_state()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:  # fsynced before the rename: a crash never leaves a torn snapshot behind the name
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_snapshot(path: Path, trust_pickle: bool = False) -> dict[str, Any]:
    """Load a GeNeMi/genemi snapshot for resuming (needs at least ``model_state_dict`` and ``epoch``)."""
    obj = torch_load(path, trust_pickle=trust_pickle)
    if not isinstance(obj, dict) or "model_state_dict" not in obj:
        raise CheckpointError(f"{path} is not a GeNeMi snapshot (no 'model_state_dict'); cannot resume from it")
    if not isinstance(obj.get("epoch"), int):
        raise CheckpointError(f"{path}: snapshot has no integer 'epoch'")
    return obj


def snapshot_epoch(path: Path) -> int | None:
    match = SNAPSHOT_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else None


def latest_snapshot(folder: Path) -> Path | None:
    """The snapshot with the highest epoch number in ``folder`` (``model_3.pt`` < ``model_10.pt``)."""
    if not Path(folder).is_dir():
        return None
    found = [(snapshot_epoch(p), p) for p in Path(folder).iterdir() if snapshot_epoch(p) is not None]
    return max(found)[1] if found else None


# --- the original trainer's optimizer state ------------------------------------------------------------------
# The original trained OpenAI's ``clip`` model, so its Adam state is indexed in that model's parameter order.
# The two orders differ only inside residual blocks: OpenAI registers attn, ln_1, mlp, ln_2; open_clip
# registers ln_1, attn, ln_2, mlp.
_OPENAI_BLOCK_ORDER = ("attn", "ln_1", "mlp", "ln_2")
_BLOCK = re.compile(r"^(.*\.resblocks\.\d+\.)")


def openai_parameter_order(names: list[str]) -> list[str]:
    """open_clip parameter names (in open_clip's order) in the order OpenAI's ``clip`` model lists them."""
    out, i = [], 0
    while i < len(names):
        match = _BLOCK.match(names[i])
        if not match:
            out.append(names[i])
            i += 1
            continue
        prefix, j = match.group(1), i
        while j < len(names) and names[j].startswith(prefix):
            j += 1

        def rank(name: str, prefix: str = prefix) -> int:
            rest = name[len(prefix):]
            return next((k for k, s in enumerate(_OPENAI_BLOCK_ORDER) if rest.startswith(s + ".")),
                        len(_OPENAI_BLOCK_ORDER))

        out.extend(sorted(names[i:j], key=rank))  # stable: order within a submodule is kept
        i = j
    return out


def remap_original_optimizer_state(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                                   path: Path) -> dict[str, Any]:
    """The original trainer's optimizer state (indices in OpenAI's parameter order, fp16 tensors from its fp16
    training) as a state dict for ``optimizer``: matched by parameter *name*, converted to each parameter's
    dtype, this run's hyperparameters kept. A state that cannot be matched is a CheckpointError naming it."""
    all_names = [n for n, _ in model.named_parameters()]
    original = openai_parameter_order(all_names)
    flat = [i for group in state.get("param_groups", []) for i in group.get("params", [])]
    if len(flat) != len(original):
        raise CheckpointError(f"{path}: its optimizer state covers {len(flat)} parameters, this model has "
                              f"{len(original)}; it was written for another architecture")
    params = dict(model.named_parameters())
    ours = optimizer.state_dict()
    index = {}
    position = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            index[id(p)] = position
            position += 1
    remapped: dict[int, dict[str, Any]] = {}
    for k, old in enumerate(flat):
        entry = state.get("state", {}).get(old)
        name = original[k]
        if entry is None or id(params[name]) not in index:
            continue  # no state yet, or a frozen tower in this run
        p = params[name]
        converted = {}
        for key, value in entry.items():
            if torch.is_tensor(value) and value.ndim > 0:
                if tuple(value.shape) != tuple(p.shape):
                    raise CheckpointError(f"{path}: optimizer state {key!r} of {name} has shape {tuple(value.shape)}, "
                                          f"the parameter {tuple(p.shape)}")
                value = value.to(dtype=p.dtype)
            converted[key] = value
        remapped[index[id(p)]] = converted
    return {"state": remapped, "param_groups": ours["param_groups"]}
