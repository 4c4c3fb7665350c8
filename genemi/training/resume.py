"""Epoch snapshots: the original GeNeMi layout plus what an exact resume needs, and the conversions between
genemi's snapshots and the original trainer's.

``model_{epoch}.pt`` holds ``{'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}`` as the original
trainer wrote them (``model_state_dict`` uses OpenAI ``clip`` key names, which open_clip shares, so the original
loads the weights strictly), and a ``genemi`` section: resolved config, model config (incl. QuickGELU),
optimizer step, GradScaler and loss state (CE-CLIP margins), RNG states. The optimizer state is indexed in
open_clip's parameter order (its parameter groups name their parameters): genemi continues from it exactly,
the original trainer cannot (its Adam state is indexed in OpenAI's order). :func:`to_original_snapshot`
(``genemi convert snapshot --to original``) writes the file the original trainer continues from; genemi
continues from the original trainer's snapshots directly (:func:`remap_original_optimizer_state`).
Everything loads with ``torch.load(weights_only=True)``. Files are written to a temporary name and renamed, so
an interrupted save never leaves a broken snapshot.
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
    return write_snapshot(path, payload)


def write_snapshot(path: Path, payload: dict[str, Any]) -> Path:
    """``torch.save`` through a temporary file, fsynced, then renamed (never a torn snapshot behind the name)."""
    path = Path(path)
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


def to_original_snapshot(snapshot: dict[str, Any], path: Path) -> tuple[dict[str, Any], list[str]]:
    """A genemi snapshot as the original trainer continues from it: the same epoch, weights and loss; the Adam
    state re-indexed in OpenAI's parameter order, in one parameter group over every parameter (the original's
    ``Adam(model.parameters())``); no ``genemi`` section (genemi reads the result as an original snapshot).
    Returns the payload and notes on what the original cannot keep (a second parameter group's weight decay,
    AdamW, parameters frozen in genemi's run)."""
    if "genemi" not in snapshot:
        raise CheckpointError(f"{path} has no genemi section: it is already in the original trainer's layout")
    weights = snapshot["model_state_dict"]
    state = snapshot.get("optimizer_state_dict") or {}
    groups = state.get("param_groups") or []
    names = list(weights)  # parameters in open_clip's order (a CLIP state dict holds no buffers)
    by_index: dict[int, str] = {}
    if groups and all("param_names" in g for g in groups):
        for g in groups:
            by_index.update(zip(g["params"], g["param_names"]))
    elif len(groups) == 1 and len(groups[0].get("params", [])) == len(names):
        by_index = dict(zip(groups[0]["params"], names))  # written before genemi named them: every parameter
    else:
        raise CheckpointError(f"{path}: its optimizer state does not name its parameters and does not cover every "
                              "parameter in one group, so its order cannot be recovered")
    unknown = sorted(set(by_index.values()) - set(names))
    if unknown:
        raise CheckpointError(f"{path}: optimizer state names {unknown[0]}, which model_state_dict does not hold")
    position = {name: k for k, name in enumerate(openai_parameter_order(names))}
    converted = {position[by_index[i]]: value for i, value in state.get("state", {}).items()}
    hyper = {k: v for k, v in (groups[0] if groups else {}).items() if k not in ("params", "param_names")}
    notes = []
    decays = sorted({g.get("weight_decay") for g in groups}, key=str)
    if len(decays) > 1:
        notes.append(f"genemi's run had {len(groups)} parameter groups (weight decay {', '.join(map(str, decays))}); "
                     f"the original's one group uses {hyper.get('weight_decay')} for every parameter")
    without = len(names) - len(converted)
    if without:
        notes.append(f"{without} parameters have no Adam state (frozen in genemi's run, or never stepped); the "
                     "original starts their moments from zero")
    optimizer = (snapshot["genemi"].get("config") or {}).get("optim", {}).get("optimizer")
    if optimizer and optimizer != "adam":
        notes.append(f"genemi's run used {optimizer}; the original trainer continues with Adam")
    payload = {"epoch": snapshot["epoch"], "model_state_dict": weights,
               "optimizer_state_dict": {"state": converted, "param_groups": [{**hyper, "params": list(range(len(names)))}]},
               "loss": snapshot.get("loss")}
    return payload, notes
