"""Process-group facts and collective helpers shared by training and generation.

Works with ``torchrun`` and ``accelerate launch`` alike: both set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. Nothing here writes environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits: global rank, world size and rank on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environ(cls) -> "DistEnv":
        """Read the launcher's variables; a plain ``python`` run is rank 0 of 1."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )


def init_distributed(device: str) -> DistEnv:
    """Join the process group the launcher prepared (no-op for a single process)."""
    env = DistEnv.from_environ()
    if env.is_distributed and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(env.local_rank)
        dist.init_process_group(backend=backend)
    return env


def resolve_device(requested: str | None, env: DistEnv) -> torch.device:
    """``cuda`` picks this process's local GPU; ``None`` means CUDA when available, else CPU. An unknown
    device string, or a CUDA device on a machine without one, is a ConfigError naming ``--device``."""
    from genemi.errors import ConfigError

    if requested is None:
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"--device {requested!r}: not a device (use cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {requested}: no CUDA GPU is visible on this machine (use --device cpu)")
        if device.index is None:
            return torch.device("cuda", env.local_rank % count)
        if device.index >= count:
            raise ConfigError(f"--device {requested}: only {count} CUDA GPU(s) are visible")
    return device


def all_gather_with_local_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (dim 0) from every rank; gradients flow through this rank's slice only.

    Ranks may hold different numbers of rows (for example after skipped corrupt images): sizes are
    exchanged first and shorter slices are padded for the collective, then trimmed.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    world, rank = dist.get_world_size(), dist.get_rank()
    size = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    longest = max(counts)
    padded = tensor.detach()
    if tensor.shape[0] < longest:
        pad = tensor.new_zeros((longest - tensor.shape[0], *tensor.shape[1:]))
        padded = torch.cat([padded, pad])
    slots = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(slots, padded.contiguous())
    pieces = [slot[:count] for slot, count in zip(slots, counts)]
    pieces[rank] = tensor
    return torch.cat(pieces)


def all_reduce_flag(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any rank (keeps per-step decisions in lock-step)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def all_reduce_sum(value: float, device: torch.device) -> float:
    """Sum a Python number over ranks."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    t = torch.tensor([float(value)], device=device, dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item())
