"""Model precision: the one place a ``--dtype`` / ``--t2i-dtype`` name becomes a torch dtype for a device.

``auto`` is bf16 on a CUDA device that supports it, fp16 on older CUDA devices and fp32 elsewhere (CPU, MPS).
fp16 on the CPU is refused: diffusers and transformers run many fp16 kernels there slowly or not at all
(diffusers warns that it will fail), so a run would waste its time before breaking.
"""

from __future__ import annotations

from genemi.errors import ConfigError

#: the names ``--precision`` (alias ``--dtype``) accepts
DTYPES = ("auto", "fp32", "fp16", "bf16")


def _cuda_bf16(device: str) -> bool:
    import torch

    try:
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except (RuntimeError, AssertionError):  # a CUDA build without a usable device
        return False


def resolve_dtype_name(name: str, device: str, flag: str = "--precision") -> str:
    """``fp32``, ``fp16`` or ``bf16``: ``name`` (one of :data:`DTYPES`) for ``device`` (``cpu``, ``cuda:1``…);
    ``auto`` resolved as the module docstring says. A ConfigError for an unknown name or fp16 on the CPU."""
    if name not in DTYPES:
        raise ConfigError(f"{flag} must be one of {', '.join(DTYPES)}, not {name!r}")
    kind = str(device).split(":")[0]
    if name == "auto":
        if kind != "cuda":
            return "fp32"
        return "bf16" if _cuda_bf16(device) else "fp16"
    if name == "fp16" and kind == "cpu":
        raise ConfigError(f"{flag} fp16 with --device cpu: half precision does not run on the CPU (diffusers "
                          "refuses it); use fp32 (or auto, bf16) on the CPU, fp16 on a GPU")
    return name


def torch_dtype(name: str):
    """The torch dtype of a resolved name (``fp32`` -> float32)."""
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[name]
