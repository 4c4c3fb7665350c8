"""Reading weight files safely and checking them against a model.

Every format genemi meets is read here, with ``torch.load(..., weights_only=True)``:

=====================  ==========================================================================
format                 what it looks like
=====================  ==========================================================================
``genemi``             GeNeMi snapshot plus a ``genemi`` section (config, RNG, scheduler, ...)
``genemi_snapshot``    ``{'epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'}`` (original)
``open_clip_train``    open_clip / CE-CLIP training checkpoint: ``{'state_dict': {'module.…'}, …}``
``openai_state_dict``  OpenAI ``clip`` state dict (fp16 tensors and/or ``input_resolution`` keys)
``openai_jit``         OpenAI TorchScript archive (``ViT-B-32.pt`` as downloaded by ``clip``)
``state_dict``         a plain state dict (open_clip ``.bin``/``.pt`` or ``.safetensors``)
=====================  ==========================================================================
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from genemi.errors import CheckpointError

OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
MAX_KEYS_SHOWN = 8


@dataclass
class Checkpoint:
    """The weights of a file plus what else it held."""

    path: Path
    format: str
    state_dict: dict[str, torch.Tensor]
    epoch: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the whole loaded object when it was a dict

    @property
    def is_openai_derived(self) -> bool:
        """Weights that come from OpenAI's ``clip`` package (which only has QuickGELU)."""
        return self.format in ("openai_jit", "openai_state_dict", "genemi_snapshot")


def torch_load(path: str | Path, trust_pickle: bool = False) -> Any:
    """``torch.load`` on CPU with ``weights_only=True`` unless the caller explicitly trusts the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise CheckpointError(f"cannot read checkpoint {path}: not a valid torch file") from exc
        raise CheckpointError(
            f"{path} holds Python objects that a safe load refuses ({str(exc).splitlines()[0]}). "
            "If you trust where the file comes from, pass trust_pickle=True (CLI: --trust-pickle)."
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc or type(exc).__name__} (truncated, or not a "
                              "PyTorch file)") from exc
    except (KeyError, ValueError, IndexError, TypeError, AttributeError) as exc:  # pickle on arbitrary bytes
        raise CheckpointError(f"cannot read checkpoint {path}: not a PyTorch checkpoint (the unpickler stopped "
                              f"with {type(exc).__name__}: {exc})") from exc


class _ScriptObject:
    """Stands in for a TorchScript class while its pickled state is read: it only keeps its attributes."""

    def __setstate__(self, state):
        self.__dict__["_state"] = state


def _storage_reader(zf: zipfile.ZipFile, prefix: str):
    def load(pid):
        typename, storage_type, key, _location, numel = pid
        if typename != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {typename!r}")
        dtype = storage_type.dtype if hasattr(storage_type, "dtype") else storage_type(0).dtype
        raw = bytearray(zf.read(f"{prefix}/data/{key}"))
        untyped = torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
        return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)

    return load


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The parameters and buffers of a TorchScript archive (e.g. OpenAI's ``ViT-B-32.pt``) **without running
    its code**: ``data.pkl`` is unpickled with only tensor rebuilding allowed, script classes become plain
    attribute holders, and the tensors are collected by attribute path (the names ``state_dict()`` gives)."""
    import collections

    allowed = {("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
               ("collections", "OrderedDict"): collections.OrderedDict}

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if module.startswith("__torch__."):
                return type(name, (_ScriptObject,), {})
            if (module, name) in allowed:
                return allowed[(module, name)]
            if module == "torch" and name.endswith("Storage") and hasattr(torch, name):
                return getattr(torch, name)
            raise pickle.UnpicklingError(f"refusing {module}.{name}: not a tensor in a TorchScript archive")

    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointError(f"{path}: TorchScript archive without data.pkl")
        prefix = pkl[0].split("/")[0]
        reader = Reader(io.BytesIO(zf.read(pkl[0])))
        reader.persistent_load = _storage_reader(zf, prefix)
        try:
            root = reader.load()
        except (pickle.UnpicklingError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"cannot read TorchScript archive {path}: {exc}") from exc
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj, prefix: str) -> None:
        for key, value in (obj.__dict__.get("_state") or {}).items():
            if isinstance(value, torch.Tensor):
                tensors[prefix + key] = value
            elif isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{key}.")

    walk(root, "")
    return tensors


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in zf.namelist())


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> Checkpoint:
    """Load any supported weight file into a :class:`Checkpoint` (state dict on CPU, prefixes stripped)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read safetensors file {path}: {exc}") from exc
        return Checkpoint(path, "state_dict", strip_prefix(sd))
    if _is_torchscript(path):  # read as data: the archive's code is never run
        sd = {k: v for k, v in read_torchscript_tensors(path).items() if k not in OPENAI_EXTRA_KEYS}
        return Checkpoint(path, "openai_jit", sd)

    obj = torch_load(path, trust_pickle=trust_pickle)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    if "model_state_dict" in obj:
        fmt = "genemi" if "genemi" in obj else "genemi_snapshot"
        return Checkpoint(path, fmt, strip_prefix(obj["model_state_dict"]), _epoch(obj), dict(obj))
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return Checkpoint(path, "open_clip_train", strip_prefix(obj["state_dict"]), _epoch(obj), dict(obj))
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{path}: no tensors found (keys: {_preview(list(obj))})")
    has_openai_keys = any(k in obj for k in OPENAI_EXTRA_KEYS)
    has_fp16 = any(v.dtype == torch.float16 for v in sd.values())
    fmt = "openai_state_dict" if has_openai_keys or has_fp16 else "state_dict"
    markers = {k: obj[k] for k in OPENAI_EXTRA_KEYS if k in obj}  # OpenAI's clip package writes these
    sd = {k: v for k, v in sd.items() if k not in OPENAI_EXTRA_KEYS}
    return Checkpoint(path, fmt, strip_prefix(sd), raw=markers)


def _epoch(obj: Mapping) -> int | None:
    epoch = obj.get("epoch")
    return int(epoch) if isinstance(epoch, (int, float)) else None


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefixes: tuple[str, ...] = ("module.", "_orig_mod.")):
    """Remove DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) prefixes from every key."""
    out = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        out[key] = value
    return out


def _preview(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_KEYS_SHOWN])
    return shown + (f", … (+{len(keys) - MAX_KEYS_SHOWN} more)" if len(keys) > MAX_KEYS_SHOWN else "")


def load_weights_strict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str, hint: str = ""
) -> None:
    """Copy ``state_dict`` into ``model`` (casting dtypes), or raise naming every incompatible key."""
    expected = model.state_dict()
    # Non-persistent buffers (e.g. open_clip's ``attn_mask``) appear in TorchScript archives: not weights.
    transient = {name for name, _ in model.named_buffers()} - set(expected)
    state_dict = {k: v for k, v in state_dict.items() if k not in transient}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        lines = [f"{source} does not fit the model architecture."]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {_preview(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {_preview(unexpected)}")
        if mismatched:
            lines.append(f"  shape mismatches ({len(mismatched)}): {_preview(mismatched)}")
        if hint:
            lines.append(f"  {hint}")
        raise CheckpointError("\n".join(lines))
    with torch.no_grad():
        model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()}, strict=True)
