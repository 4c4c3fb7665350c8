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

:func:`inspect_checkpoint` gives the same :class:`Checkpoint` from the file's structure alone
(:mod:`genemi.models.files`, every tensor on the ``meta`` device), for checks that must not load weights;
:func:`state_dict_problems` compares names and shapes with a model (a ``meta`` one too).
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
from genemi.models.files import code_refusal, runs_code

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


def refused_global(message: str) -> str | None:
    """The ``module.name`` a safe unpickler refused, from its message (``GLOBAL posix.system``); None if none."""
    import re

    match = re.search(r"GLOBAL ([\w.]+)", message)
    return match.group(1) if match else None


def torch_load(path: str | Path, trust_pickle: bool = False) -> Any:
    """``torch.load`` on CPU with ``weights_only=True`` unless the caller explicitly trusts the file.

    A file that fails is one line: a pickle that asks to run code (``os.system``, ``eval``, ...) is refused as
    such; one that holds other Python objects can be loaded with ``trust_pickle``; a truncated or damaged archive
    says so (never torch's own advice to turn the safe load off)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:  # noqa: BLE001 - every failure to read the file becomes one line
        raise load_error(path, exc, f"checkpoint {path}", "trust_pickle=True (CLI: --trust-pickle)") from None


def load_error(path: Path, exc: Exception, what: str, trust: str | None = None) -> CheckpointError:
    """One line for a failed ``torch.load`` of ``what``: a pickle that asks to run code is refused as such; one
    holding other Python objects names them (and ``trust``, the way to allow them, if there is one); a truncated
    or damaged archive says so. Never torch's advice to turn the safe load off."""
    if isinstance(exc, pickle.UnpicklingError):
        name = refused_global(str(exc))
        if name and runs_code([name]):
            return CheckpointError(f"refused {what}: {code_refusal(name)}")
        if name:
            allow = f". If you trust where the file comes from, pass {trust}" if trust else ""
            return CheckpointError(f"{what} holds Python objects that a safe load refuses ({name}){allow}")
        return CheckpointError(f"cannot read {what}: not a PyTorch checkpoint (the safe unpickler stopped: "
                               f"{_torch_reason(exc)})")
    if isinstance(exc, (RuntimeError, EOFError, zipfile.BadZipFile, OSError)):
        return CheckpointError(f"cannot read {what}: {_torch_reason(exc)} (truncated, or not a PyTorch file; copy it "
                               "again)")
    return CheckpointError(f"cannot read {what}: not a PyTorch checkpoint (the unpickler stopped with "
                           f"{type(exc).__name__}: {exc})")


def _torch_reason(exc: BaseException) -> str:
    """The reason in one of torch's load errors, without its advice (miniz's internals, ``weights_only=False``)."""
    import re

    text = str(exc) or type(exc).__name__
    stream = re.search(r"PytorchStreamReader failed ([^.]*)", text)
    if stream:
        return stream.group(1).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Weights only load failed", "Please file an issue", "Check the documentation")):
            return line.removeprefix("WeightsUnpickler error:").strip() or line
    return type(exc).__name__


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The parameters and buffers of a TorchScript archive (e.g. OpenAI's ``ViT-B-32.pt``) **without running
    its code**: ``data.pkl`` is unpickled by :class:`genemi.models.files.RecordUnpickler` with only tensor
    rebuilding allowed, script classes become plain attribute holders, and the tensors are collected by
    attribute path (the names ``state_dict()`` gives)."""
    from genemi.models.files import RecordUnpickler, script_tensors

    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointError(f"{path}: TorchScript archive without data.pkl")
        prefix = pkl[0].split("/")[0]

        def storage(ref):
            raw = bytearray(zf.read(f"{prefix}/data/{ref.key}"))
            untyped = torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8) if raw else torch.UntypedStorage(0)
            return torch.storage.TypedStorage(wrap_storage=untyped, dtype=getattr(torch, ref.dtype), _internal=True)

        reader = RecordUnpickler(io.BytesIO(zf.read(pkl[0])), materialize=storage)
        try:
            root = reader.load()
        except (pickle.UnpicklingError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"cannot read TorchScript archive {path}: {exc}") from exc
    return script_tensors(root, torch.Tensor)


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
    return _classify(path, torch_load(path, trust_pickle=trust_pickle))


def inspect_checkpoint(path: str | Path, what: str = "", trust_pickle: bool = False) -> Checkpoint:
    """What :func:`read_checkpoint` would return, from the file's structure only (:mod:`genemi.models.files`):
    the same format and keys, every tensor an empty one on the ``meta`` device. Whatever would stop the load
    (a damaged or truncated file, Python objects a safe load refuses) is a one-line CheckpointError naming
    ``what`` (the flag) and the file."""
    from genemi.models import files

    path = Path(path)
    found = files.inspect_weights(path, what)
    if found.format == "safetensors":
        return Checkpoint(path, "state_dict", strip_prefix(files.as_meta(found.tensors())))
    if found.format == "torchscript":
        if found.classes:
            raise files.fail(what, path, f"is a TorchScript archive that pickles {', '.join(found.classes[:3])} "
                                         "besides tensors, which genemi refuses to read")
        return Checkpoint(path, "openai_jit", {k: v.meta() for k, v in found.tensors().items()
                                               if k not in OPENAI_EXTRA_KEYS})
    files.require_weights_only(found, what, hint="if you trust where it comes from, pass --trust-pickle",
                               any_class=trust_pickle)
    return _classify(path, files.as_meta(found.content), what)


def _classify(path: Path, obj: Any, what: str = "") -> Checkpoint:
    """The :class:`Checkpoint` of a loaded torch object, by its layout (see the module docstring)."""
    where = f"{what} {path}" if what else str(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where}: expected a dict of tensors, found {type(obj).__name__}")
    if "model_state_dict" in obj:
        fmt = "genemi" if "genemi" in obj else "genemi_snapshot"
        return Checkpoint(path, fmt, strip_prefix(obj["model_state_dict"]), _epoch(obj), dict(obj))
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return Checkpoint(path, "open_clip_train", strip_prefix(obj["state_dict"]), _epoch(obj), dict(obj))
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{where}: no tensors found (keys: {_preview(list(obj))})")
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


def _preview(keys: list[str], limit: int = MAX_KEYS_SHOWN) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … (+{len(keys) - limit} more)" if len(keys) > limit else "")


def state_dict_problems(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                        shown: int = MAX_KEYS_SHOWN) -> list[str]:
    """What keeps ``state_dict`` from loading into ``model`` strictly: missing keys, unexpected keys, shape
    mismatches (one entry each, at most ``shown`` keys named). ``model`` may live on the ``meta`` device and
    the tensors too: only names and shapes are compared."""
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
    return [f"{label} ({len(keys)}): {_preview(keys, shown)}" for label, keys in
            (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)) if keys]


def load_weights_strict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str, hint: str = ""
) -> None:
    """Copy ``state_dict`` into ``model`` (casting dtypes), or raise naming every incompatible key."""
    problems = state_dict_problems(model, state_dict)
    if problems:
        lines = [f"{source} does not fit the model architecture."] + [f"  {p}" for p in problems]
        if hint:
            lines.append(f"  {hint}")
        raise CheckpointError("\n".join(lines))
    expected = model.state_dict()
    with torch.no_grad():
        model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items() if k in expected},
                              strict=True)
