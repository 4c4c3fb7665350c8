"""Model files inspected without loading weights.

Before the first image, every stage reads the *structure* of its model files: enough to know that the weights
are all there, in the format and layout their loader expects, while the tensor bytes themselves stay on disk.

=====================  ================================================================================
format                 what is read
=====================  ================================================================================
safetensors            the 8-byte little-endian header length and the JSON header: every tensor's dtype,
                       shape and ``data_offsets`` (contiguous, sized dtype x shape); the data section must
                       end exactly at the end of the file
torch zip              (``torch.save`` since torch 1.6, ``.pt``/``.pth``/``.bin``/``.ckpt``; TorchScript
                       archives too) the zip central directory, the local header of every entry (its data
                       must lie inside the file) and ``<archive>/data.pkl`` through :class:`RecordUnpickler`,
                       which builds no tensor and runs no code; every ``data/<key>`` a tensor refers to must
                       hold the bytes its tensors need
torch legacy           (before torch 1.6) the magic number, protocol and system-info pickles, the object
                       pickle (:class:`RecordUnpickler`), the storage-key list, then per storage its 8-byte
                       element count, whose bytes are skipped with ``seek``, never read
transformers folder    ``config.json`` and the weights file(s): ``model.safetensors`` or
                       ``pytorch_model.bin``, or a sharded ``*.index.json`` whose every shard is checked and
                       holds the tensors its ``weight_map`` places there
diffusers folder       ``model_index.json``, then per component its folder: config and weights (models),
                       ``scheduler_config.json`` (schedulers), vocabulary files (tokenizers),
                       ``preprocessor_config.json`` (image processors)
=====================  ================================================================================

Not read: the pre-0.4 torch tar format (refused, with the fix), GGUF and TensorFlow/Flax weights (no genemi
loader reads them). A pickle's Python objects other than tensors (an ``argparse.Namespace``, a Lightning
callback) are never built: :class:`RecordUnpickler` keeps their class name and state, and
:attr:`WeightsFile.classes` lists them so that a check can refuse what a ``weights_only`` load will refuse.

Every problem is a :class:`~genemi.errors.CheckpointError` of one line: the flag (``what``), the file and what
is wrong. :func:`counting_reads` counts the bytes the readers take from disk.
"""

from __future__ import annotations

import codecs
import collections
import io
import json
import pickle
import struct
import zipfile
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from genemi.errors import CheckpointError

#: safetensors dtype -> (bits per element, torch dtype name)
SAFETENSORS_DTYPES = {
    "BOOL": (8, "bool"), "U8": (8, "uint8"), "I8": (8, "int8"), "F8_E5M2": (8, "float8_e5m2"),
    "F8_E4M3": (8, "float8_e4m3fn"), "F8_E8M0": (8, "float8_e8m0fnu"), "I16": (16, "int16"), "U16": (16, "uint16"),
    "F16": (16, "float16"), "BF16": (16, "bfloat16"), "I32": (32, "int32"), "U32": (32, "uint32"),
    "F32": (32, "float32"), "I64": (64, "int64"), "U64": (64, "uint64"), "F64": (64, "float64"),
    "C64": (64, "complex64"), "F4": (4, "float4_e2m1fn_x2"), "F6_E2M3": (6, "F6_E2M3"), "F6_E3M2": (6, "F6_E3M2"),
}
#: safetensors refuses larger headers
MAX_SAFETENSORS_HEADER = 100_000_000
#: weight file names (single file; ``<name>.index.json`` when sharded), in the order the loaders prefer them
TRANSFORMERS_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
#: a tokenizer folder holds one of these
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")
#: an image processor / processor folder holds one of these
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a legacy torch.save file
_ZIP_LOCAL = struct.Struct("<4s22xHH")  # local file header: signature ... file name length, extra length


#: modules a pickle asks for only to run code (a command, a process, an import, a file operation), and the
#: builtins that do (other builtins, such as ``set`` or ``slice``, only build values)
CODE_MODULES = ("os", "posix", "nt", "subprocess", "sys", "importlib", "runpy", "shutil", "socket", "pty", "code",
                "pickle", "marshal", "ctypes", "webbrowser", "multiprocessing")
CODE_BUILTINS = ("eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals", "vars",
                 "breakpoint", "input", "exit", "quit")


def runs_code(names: Sequence[str]) -> str | None:
    """The first ``module.name`` of ``names`` that a pickle can only want in order to run code; None if none."""
    for name in names:
        module, _, attr = name.partition(".")
        if module in CODE_MODULES or (module in ("builtins", "__builtin__") and attr in CODE_BUILTINS):
            return name
    return None


def code_refusal(name: str) -> str:
    """Why a file whose pickle asks for ``name`` is refused (never how to turn the guard off)."""
    return (f"its pickle asks to run code when loaded ({name}); a weight file never needs that, so it is not "
            "loaded. Get the file from its source again")


def fail(what: str, path: Path | str, problem: str) -> CheckpointError:
    """The one-line error of a model file: ``<flag> <file>: <problem>``."""
    return CheckpointError(f"{what} {path}: {problem}" if what else f"{path}: {problem}")


# --- counting what is read --------------------------------------------------------------------------------

@dataclass
class ReadLog:
    """Bytes the readers took from each file while the log was active: ``files[path] = [read, file size]``."""

    files: dict[str, list[int]] = field(default_factory=dict)

    def add(self, path: Path, count: int, size: int) -> None:
        entry = self.files.setdefault(str(path), [0, size])
        entry[0] += count
        entry[1] = size

    @property
    def bytes_read(self) -> int:
        return sum(read for read, _ in self.files.values())

    @property
    def total_size(self) -> int:
        return sum(size for _, size in self.files.values())


_LOGS: ContextVar[tuple[ReadLog, ...]] = ContextVar("genemi_model_file_logs", default=())


@contextmanager
def counting_reads() -> Iterator[ReadLog]:
    """Count, in the yielded :class:`ReadLog`, every byte this module reads from model files in the block."""
    log = ReadLog()
    token = _LOGS.set(_LOGS.get() + (log,))
    try:
        yield log
    finally:
        _LOGS.reset(token)


class CountedFile(io.RawIOBase):
    """An unbuffered binary file that counts the bytes it returns (seeking is free) and reports them, when
    closed, to the active :func:`counting_reads` logs."""

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.count = path, 0
        self._raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self.size = self._raw.seek(0, io.SEEK_END)
        self._raw.seek(0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer) or 0
        self.count += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
            for log in _LOGS.get():
                log.add(self.path, self.count, self.size)
        super().close()


def open_file(path: str | Path, what: str = "", kind: str = "file") -> CountedFile:
    """``path`` opened for counted reading; missing, a folder, unreadable or empty is a CheckpointError."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise fail(what, path, f"is a folder, expected a {kind}")
    if not path.is_file():
        raise fail(what, path, "file not found")
    try:
        f = CountedFile(path)
    except OSError as exc:
        raise fail(what, path, f"cannot be read ({exc.strerror or exc})") from exc
    if f.size == 0:
        f.close()
        raise fail(what, path, "is empty")
    return f


def read_json(path: str | Path, what: str = "") -> dict[str, Any]:
    """A JSON object file (``config.json`` and friends), read and counted; anything else is one clear line."""
    with open_file(path, what, "JSON file") as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise fail(what, path, "is not a JSON file (binary content)") from None
    except ValueError as exc:
        start = _text_start(raw)
        hint = f" (starts with {start!r})" if start and not raw.lstrip().startswith((b"{", b"[")) else \
            f" (truncated? {str(exc).splitlines()[0]})"
        raise fail(what, path, f"is not valid JSON{hint}") from None
    if not isinstance(data, dict):
        raise fail(what, path, f"holds a JSON {type(data).__name__}, expected an object")
    return data


def _text_start(head: bytes) -> str | None:
    """The first line of ``head`` when it is text (UTF-8, no NUL byte), else None."""
    if b"\x00" in head:
        return None
    try:
        text = head[:200].decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < 196:  # not just a character cut at the end of the sample
            return None
        text = head[: exc.start].decode("utf-8")
    lines = text.strip().splitlines()
    return lines[0][:60] if lines else None


def describe_start(head: bytes) -> str | None:
    """What a file that is no weights file is, from its first bytes (a Git LFS pointer, an HTML page, text)."""
    if head.startswith(b"version https://git-lfs"):
        return "is a Git LFS pointer, not the weights (run `git lfs pull` in the clone it comes from)"
    start = _text_start(head)
    if start is None:
        return None
    if start.lower().startswith(("<!doctype html", "<html")):
        return "is an HTML page (a failed download?), not weights"
    return f"is a text file (starts with {start!r}), not weights"


# --- tensors as records -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorInfo:
    """A tensor as its file describes it: shape and dtype (a torch dtype name), no data."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def meta(self) -> torch.Tensor:
        """An empty tensor of this shape and dtype on the ``meta`` device (shape checks run on it as on weights)."""
        dtype = getattr(torch, self.dtype, None)
        return torch.empty(self.shape, dtype=dtype if isinstance(dtype, torch.dtype) else torch.uint8, device="meta")


def as_meta(obj: Any) -> Any:
    """``obj`` with every :class:`TensorInfo` inside dicts, lists and tuples turned into a ``meta`` tensor."""
    if isinstance(obj, TensorInfo):
        return obj.meta()
    if isinstance(obj, dict):
        return {k: as_meta(v) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(as_meta(v) for v in obj)
    return obj


@dataclass(frozen=True)
class StorageRef:
    """A storage a pickle refers to: ``data/<key>`` in a zip archive, or the key'th storage of a legacy file."""

    key: str
    dtype: str
    itemsize: int
    numel: int

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


@dataclass(frozen=True)
class _StorageType:
    dtype: str
    itemsize: int


class Opaque:
    """A Python object a weights file pickles (a TorchScript module, an ``argparse.Namespace``, ...), kept as
    its state: no code of its class runs. Subclasses are made per class name (``_origin``)."""

    _origin = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state) -> None:
        self.__dict__["_state"] = state

    def __setitem__(self, key, value) -> None:
        self.__dict__.setdefault("_items", {})[key] = value

    def append(self, value) -> None:
        self.__dict__.setdefault("_list", []).append(value)

    def extend(self, values) -> None:
        self.__dict__.setdefault("_list", []).extend(values)

    @property
    def state(self) -> dict:
        state = self.__dict__.get("_state")
        return state if isinstance(state, dict) else {}


def script_tensors(root: Any, kind: type = TensorInfo) -> dict[str, Any]:
    """Tensors (instances of ``kind``) of a TorchScript module tree by attribute path (``state_dict()`` names)."""
    found: dict[str, Any] = {}

    def walk(obj: Opaque, prefix: str) -> None:
        for key, value in obj.state.items():
            if isinstance(value, kind):
                found[prefix + key] = value
            elif isinstance(value, Opaque):
                walk(value, f"{prefix}{key}.")

    if isinstance(root, Opaque):
        walk(root, "")
    return found


class Damaged(Exception):
    """A file's structure contradicts itself (raised while unpickling, reported by the readers)."""


def _extent(offset: int, size: Sequence[int], stride: Sequence[int]) -> int:
    """Elements of a storage a strided view needs (0 for an empty view)."""
    if any(s == 0 for s in size):
        return 0
    return offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1


#: ``torch.<name>Storage`` -> dtype name (read without touching the deprecated TypedStorage classes)
STORAGE_DTYPES = {"Float": "float32", "Double": "float64", "Half": "float16", "BFloat16": "bfloat16", "Long": "int64",
                  "Int": "int32", "Short": "int16", "Char": "int8", "Byte": "uint8", "Bool": "bool",
                  "ComplexFloat": "complex64", "ComplexDouble": "complex128", "QInt8": "qint8", "QUInt8": "quint8",
                  "QInt32": "qint32", "QUInt4x2": "quint4x2", "QUInt2x4": "quint2x4", "Untyped": "uint8"}


def _storage_type(name: str) -> _StorageType | None:
    dtype = getattr(torch, STORAGE_DTYPES.get(name.removesuffix("Storage"), "-"), None) \
        if name.endswith("Storage") else None
    if not isinstance(dtype, torch.dtype):
        return None
    return _StorageType(str(dtype).removeprefix("torch."), dtype.itemsize)


class RecordUnpickler(pickle.Unpickler):
    """The unpickler of a ``torch.save`` pickle that builds no tensor and runs no foreign code.

    Persistent ids become :class:`StorageRef` (collected in ``storages``); torch's tensor and parameter
    rebuilding functions become :class:`TensorInfo` records (each view checked against its storage); plain
    containers, dtypes and storage types are built; any other class becomes an :class:`Opaque` holder (its name
    collected in ``classes``; TorchScript's ``__torch__.*`` classes are not listed). With ``materialize``
    (``StorageRef -> torch storage``) tensors are rebuilt by torch's own functions instead and any class but
    TorchScript's is refused (how :func:`genemi.models.checkpoints.read_torchscript_tensors` reads weights).
    """

    SAFE = {("collections", "OrderedDict"): collections.OrderedDict, ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset, ("builtins", "complex"): complex, ("builtins", "slice"): slice,
            ("builtins", "bytearray"): bytearray, ("_codecs", "encode"): codecs.encode, ("torch", "Size"): tuple}
    #: ``torch._utils`` / ``torch._tensor`` functions that rebuild tensors and parameters
    REBUILDERS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_qtensor",
                  "_rebuild_parameter", "_rebuild_parameter_with_state", "_rebuild_device_tensor_from_cpu_tensor",
                  "_rebuild_meta_tensor_no_storage", "_rebuild_from_type_v2")
    _MATERIALIZED = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state")

    def __init__(self, file, materialize=None):
        super().__init__(file)
        self.storages: dict[str, StorageRef] = {}
        self.classes: set[str] = set()
        self.materialize = materialize
        self._opaque: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in self.SAFE:
            return self.SAFE[(module, name)]
        if module == "torch":
            value = getattr(torch, name, None)
            if isinstance(value, torch.dtype):
                return value
            storage = _storage_type(name)
            if storage is not None:
                return storage
        if module in ("torch._utils", "torch._tensor") and name in self.REBUILDERS:
            if self.materialize and name in self._MATERIALIZED:
                return getattr(torch._utils, name)
            return getattr(self, name)
        origin = f"{module}.{name}"
        if not module.startswith("__torch__."):
            if self.materialize:
                raise pickle.UnpicklingError(f"refusing {origin}: not a tensor in a TorchScript archive")
            self.classes.add(origin)
        if origin not in self._opaque:
            self._opaque[origin] = type(name, (Opaque,), {"_origin": origin})
        return self._opaque[origin]

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise Damaged(f"unexpected persistent id {str(pid)[:80]}")
        kind, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(kind, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise Damaged(f"storage {key} has no valid type and size")
        ref = StorageRef(key, kind.dtype, kind.itemsize, numel)
        known = self.storages.get(key)
        if known is not None and known.nbytes != ref.nbytes:
            raise Damaged(f"storage {key} is described with {known.nbytes:,} and {ref.nbytes:,} bytes")
        self.storages[key] = ref
        if self.materialize:
            return self.materialize(ref)
        view = pid[5] if len(pid) > 5 else None  # legacy files: (view key, offset, size) of a root storage
        if isinstance(view, tuple) and len(view) == 3 and isinstance(view[2], int):
            return StorageRef(f"{key}/{view[0]}", kind.dtype, kind.itemsize, view[2])
        return ref

    # -- the records (methods named as the torch functions they stand for)
    def _record(self, storage, offset, size, stride, dtype=None) -> TensorInfo:
        if not isinstance(storage, StorageRef):
            raise Damaged("a tensor without a storage")
        need = _extent(offset, size, stride)
        if need > storage.numel:
            raise Damaged(f"a tensor of shape {list(size)} needs {need:,} elements of storage {storage.key}, "
                          f"which holds {storage.numel:,}")
        name = str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else storage.dtype
        return TensorInfo(tuple(int(s) for s in size), name)

    def _rebuild_tensor(self, storage, offset, size, stride):
        return self._record(storage, offset, size, stride)

    def _rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        return self._record(storage, offset, size, stride)

    def _rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        return self._record(storage, offset, size, stride, dtype)

    def _rebuild_qtensor(self, storage, offset, size, stride, *rest):
        return self._record(storage, offset, size, stride)

    def _rebuild_parameter(self, data, *rest):
        return data

    def _rebuild_parameter_with_state(self, data, *rest):
        return data

    def _rebuild_device_tensor_from_cpu_tensor(self, data, *rest):
        return data

    def _rebuild_meta_tensor_no_storage(self, dtype, size, stride, requires_grad=False):
        return TensorInfo(tuple(size), str(dtype).removeprefix("torch."))

    def _rebuild_from_type_v2(self, func, new_type, args, state):
        return func(*args)


class _Plain(pickle.Unpickler):
    """The header pickles of a legacy file hold no class at all."""

    def find_class(self, module, name):
        raise Damaged(f"unexpected {module}.{name} in a torch file header")


# --- weights files ----------------------------------------------------------------------------------------

@dataclass
class WeightsFile:
    """One weights file as its structure describes it."""

    path: Path
    format: str  # "safetensors", "torch_zip", "torchscript" or "torch_legacy"
    size: int
    bytes_read: int
    content: Any  # safetensors: {name: TensorInfo}; torch: the unpickled object with TensorInfo for tensors
    metadata: dict[str, Any] = field(default_factory=dict)  # safetensors' __metadata__
    classes: tuple[str, ...] = ()  # Python classes the pickle names besides tensors (never built)

    def tensors(self, key: str | None = None) -> dict[str, TensorInfo]:
        """The tensors of a state dict: the whole content, or ``content[key]`` when ``key`` names a dict in it
        (``'model'``, ``'state_dict'``); TorchScript archives by attribute path. Non-tensor entries are left out."""
        obj = self.content
        if self.format == "torchscript":
            return script_tensors(obj)
        if key is not None and isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
        return {k: v for k, v in obj.items() if isinstance(v, TensorInfo)} if isinstance(obj, dict) else {}

    def refused_classes(self, allowed: Sequence[str] = ()) -> list[str]:
        """The classes a ``torch.load(weights_only=True)`` refuses (besides ``allowed``)."""
        safe = weights_only_globals() | set(allowed)
        return sorted(c for c in self.classes if c not in safe)


def weights_only_globals() -> set[str]:
    """The ``module.name`` globals ``torch.load(weights_only=True)`` accepts."""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        names = set(_get_allowed_globals())
    except (ImportError, AttributeError):  # pragma: no cover - torch moved it: only what genemi itself allows
        names = {"collections.OrderedDict", "torch.Size", "_codecs.encode", "builtins.set"}
    for obj in torch.serialization.get_safe_globals():
        obj = obj[0] if isinstance(obj, tuple) else obj
        names.add(f"{obj.__module__}.{obj.__qualname__}")
    return names


def require_weights_only(found: WeightsFile, what: str = "", allowed: Sequence[str] = (), hint: str = "",
                         any_class: bool = False) -> WeightsFile:
    """``found`` unless ``torch.load(weights_only=True)`` (what genemi, transformers and diffusers load torch
    files with) would refuse it: a TorchScript archive, or Python objects besides tensors other than
    ``allowed`` (``any_class``: a loader that falls back to a full unpickling accepts them all)."""
    if found.format == "torchscript":
        raise fail(what, found.path, "is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
    code = runs_code(found.classes)
    if code:
        raise fail(what, found.path, "refused: " + code_refusal(code))
    refused = [] if any_class else found.refused_classes(allowed)
    if refused:
        raise fail(what, found.path, f"holds Python objects that a safe load refuses ({', '.join(refused[:3])})"
                                     + (f"; {hint}" if hint else ""))
    return found


def inspect_weights(path: str | Path, what: str = "") -> WeightsFile:
    """A weights file by its name, as the loaders decide: ``.safetensors`` is a safetensors file, anything else
    a torch file."""
    if Path(path).suffix.lower() == ".safetensors":
        return inspect_safetensors(path, what)
    return inspect_torch_file(path, what)


def inspect_safetensors(path: str | Path, what: str = "") -> WeightsFile:
    """The header of a safetensors file, checked against the file (see the module docstring)."""
    path = Path(path).expanduser()
    with open_file(path, what, "safetensors file") as f:
        head = f.read(8)
        if len(head) < 8:
            raise fail(what, path, f"holds {len(head)} bytes, too few for a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length == 0 or length > MAX_SAFETENSORS_HEADER:
            raise fail(what, path, describe_start(head + f.read(192)) or
                       "is not a safetensors file (its first 8 bytes are no header length)")
        if 8 + length > f.size:
            start = f.read(1)
            if start != b"{":
                raise fail(what, path, describe_start(head + start + f.read(191)) or
                           "is not a safetensors file (no JSON header after the length field)")
            raise fail(what, path, f"truncated: its header alone is {length:,} bytes long, the file holds "
                                   f"{f.size - 8:,} after the length field")
        raw = f.read(length)
        count = f.count
    if not raw.startswith(b"{"):
        raise fail(what, path, describe_start(head + raw[:192]) or "is not a safetensors file (no JSON header)")
    try:
        header = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise fail(what, path, f"damaged: its {length:,}-byte JSON header does not parse (the header length "
                               "field does not match the header?)") from None
    if not isinstance(header, dict):
        raise fail(what, path, "damaged: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    tensors: dict[str, TensorInfo] = {}
    spans = []
    for name, entry in header.items():
        tensors[name], begin, end = _safetensors_entry(name, entry, what, path)
        spans.append((begin, end, name))
    expected = 0
    for begin, end, name in sorted(spans):
        if begin != expected:
            raise fail(what, path, f"damaged header: tensor {name!r} starts at byte {begin:,} of the data, "
                                   f"expected {expected:,} (overlapping or missing tensor data)")
        expected = end
    data = f.size - 8 - length
    if expected > data:
        raise fail(what, path, f"truncated: the header says {expected:,} bytes of tensor data, the file holds "
                               f"{data:,}")
    if expected < data:
        raise fail(what, path, f"damaged: {data - expected:,} bytes follow the last tensor's data (the header "
                               f"describes {expected:,} bytes)")
    return WeightsFile(path, "safetensors", f.size, count, tensors, metadata if isinstance(metadata, dict) else {})


def _safetensors_entry(name: str, entry: Any, what: str, path: Path) -> tuple[TensorInfo, int, int]:
    ok = isinstance(entry, dict)
    dtype, shape, offsets = (entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")) if ok else (None,) * 3
    ok = ok and isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)
    ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
    if not ok or not 0 <= offsets[0] <= offsets[1]:
        raise fail(what, path, f"damaged header: tensor {name!r} has no valid dtype, shape and data_offsets")
    if dtype not in SAFETENSORS_DTYPES:
        raise fail(what, path, f"tensor {name!r} has dtype {dtype!r}, which safetensors does not know")
    bits, torch_name = SAFETENSORS_DTYPES[dtype]
    info = TensorInfo(tuple(shape), torch_name)
    need_bits, span = info.numel * bits, offsets[1] - offsets[0]
    if need_bits != 8 * span:
        raise fail(what, path, f"damaged header: tensor {name!r} ({dtype} {list(shape)}) needs {need_bits / 8:,.0f} "
                               f"bytes, its data_offsets span {span:,}")
    return info, offsets[0], offsets[1]


def inspect_torch_file(path: str | Path, what: str = "") -> WeightsFile:
    """A ``torch.save`` file (zip or legacy) or a TorchScript archive, read as structure (module docstring)."""
    path = Path(path).expanduser()
    with open_file(path, what, "PyTorch file") as f:
        head = f.read(512)
        f.seek(0)
        if head.startswith(b"PK\x03\x04"):
            result = _inspect_zip(f, path, what)
        elif head[:1] == b"\x80":
            result = _inspect_legacy(f, path, what)
        elif len(head) > 8 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] <= MAX_SAFETENSORS_HEADER:
            raise fail(what, path, "is a safetensors file, expected a PyTorch file (torch.save)")
        elif head[257:262] == b"ustar":
            raise fail(what, path, "is a tar archive (the torch < 0.4 format), which genemi does not read: load "
                                   "and torch.save it again with a recent torch")
        else:
            raise fail(what, path, describe_start(head) or
                       "is not a PyTorch file (neither a torch.save zip archive nor a pickle)")
    result.bytes_read = f.count
    return result


def _unpickle(unpickler: pickle.Unpickler, what: str, path: Path, part: str) -> Any:
    try:
        return unpickler.load()
    except Damaged as exc:
        raise fail(what, path, f"damaged: {exc}") from None
    except (EOFError, pickle.UnpicklingError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise fail(what, path, f"truncated or damaged: {part} stops early ({detail})") from None
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle bytes is a damaged file
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise fail(what, path, f"damaged: {part} does not unpickle ({type(exc).__name__} {detail})".rstrip()
                   ) from None


def _inspect_zip(f: CountedFile, path: Path, what: str) -> WeightsFile:
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        detail = "" if str(exc) == "File is not a zip file" else f"; {exc}"
        raise fail(what, path, f"truncated: it starts as a zip archive (the torch.save format) but the zip "
                               f"directory at its end is missing or damaged ({f.size:,} bytes on disk{detail})"
                   ) from None
    infos = {info.filename: info for info in zf.infolist()}
    pkl = next((n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1), None)
    if pkl is None:
        raise fail(what, path, "is a zip archive without <name>/data.pkl: not written by torch.save")
    prefix = pkl[: -len("data.pkl")]
    for info in sorted(infos.values(), key=lambda i: i.header_offset):
        f.seek(info.header_offset)
        local = f.read(_ZIP_LOCAL.size)
        if len(local) < _ZIP_LOCAL.size or _ZIP_LOCAL.unpack(local)[0] != b"PK\x03\x04":
            raise fail(what, path, f"damaged: entry {info.filename} has no local header where the zip directory "
                                   "says")
        _, name_len, extra_len = _ZIP_LOCAL.unpack(local)
        end = info.header_offset + _ZIP_LOCAL.size + name_len + extra_len + info.compress_size
        if end > zf.start_dir:
            raise fail(what, path, f"damaged: entry {info.filename} runs past the data ({end:,} > {zf.start_dir:,})")
    try:
        raw = zf.read(pkl)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise fail(what, path, f"damaged: {pkl} cannot be read ({exc})") from None
    unpickler = RecordUnpickler(io.BytesIO(raw))
    content = _unpickle(unpickler, what, path, pkl)
    for key, ref in unpickler.storages.items():
        entry = infos.get(f"{prefix}data/{key}")
        if entry is None:
            raise fail(what, path, f"damaged: storage data/{key} that its tensors use is not in the archive")
        if entry.file_size < ref.nbytes:
            raise fail(what, path, f"damaged: storage data/{key} holds {entry.file_size:,} bytes, its tensors need "
                                   f"{ref.nbytes:,}")
    script = any(n.startswith(prefix + "code/") or n == prefix + "constants.pkl" for n in infos)
    return WeightsFile(path, "torchscript" if script else "torch_zip", f.size, 0, content,
                       classes=tuple(sorted(unpickler.classes)))


def _inspect_legacy(f: CountedFile, path: Path, what: str) -> WeightsFile:
    magic = _unpickle(_Plain(f), what, path, "the first pickle")
    if magic != _TORCH_MAGIC:
        raise fail(what, path, "is a pickle, not a torch.save file (no torch magic number)")
    protocol = _unpickle(_Plain(f), what, path, "the protocol pickle")
    _unpickle(_Plain(f), what, path, "the system-info pickle")
    if protocol != 1001:
        raise fail(what, path, f"is a torch file of protocol {protocol!r}, which genemi does not read")
    unpickler = RecordUnpickler(f)
    content = _unpickle(unpickler, what, path, "the object pickle")
    keys = _unpickle(_Plain(f), what, path, "the storage list")
    if not isinstance(keys, list) or set(map(str, keys)) != set(unpickler.storages):
        raise fail(what, path, "damaged: its storage list does not match the storages its tensors use")
    for n, key in enumerate(keys, 1):
        ref = unpickler.storages[str(key)]
        raw = f.read(8)
        if len(raw) < 8:
            raise fail(what, path, f"truncated: storage {n} of {len(keys)} starts past the end of the file "
                                   f"({f.size:,} bytes)")
        (numel,) = struct.unpack("<q", raw)
        if numel != ref.numel:
            raise fail(what, path, f"damaged: storage {n} of {len(keys)} says {numel:,} elements, its tensors "
                                   f"{ref.numel:,}")
        end = f.tell() + ref.nbytes
        if end > f.size:
            raise fail(what, path, f"truncated: storage {n} of {len(keys)} ends at byte {end:,}, the file holds "
                                   f"{f.size:,}")
        f.seek(end)
    return WeightsFile(path, "torch_legacy", f.size, 0, content, classes=tuple(sorted(unpickler.classes)))


# --- model folders ----------------------------------------------------------------------------------------

@dataclass
class ModelFolder:
    """A ``save_pretrained`` folder: its config and its weights' tensors (every shard)."""

    path: Path
    config: dict[str, Any]
    weights: list[WeightsFile]
    tensors: dict[str, TensorInfo]


def require_folder(path: str | Path, what: str, kind: str = "model folder") -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise fail(what, folder, f"is not a folder, expected a {kind}" if folder.exists() else "not found")
    return folder


def require_any(folder: Path, names: Sequence[str], what: str, kind: str) -> Path:
    """The first of ``names`` in ``folder`` (it must not be empty), or a CheckpointError naming them all."""
    for name in names:
        if (folder / name).is_file():
            if (folder / name).stat().st_size == 0:
                raise fail(what, folder / name, "is empty")
            return folder / name
    raise fail(what, folder, f"has no {kind} ({', '.join(names)})")


def inspect_model_folder(path: str | Path, what: str = "", weights_names: Sequence[str] = TRANSFORMERS_WEIGHTS,
                         config_name: str = "config.json", weights: bool = True) -> ModelFolder:
    """``config_name`` parsed and (with ``weights``) every weights file read as structure: a single file or a
    sharded ``<name>.index.json`` (each shard present and holding the tensors its ``weight_map`` lists)."""
    folder = require_folder(path, what)
    if not (folder / config_name).is_file():
        raise fail(what, folder, f"has no {config_name} (expected a save_pretrained / hub snapshot folder)")
    config = read_json(folder / config_name, what)
    if not weights:
        return ModelFolder(folder, config, [], {})
    for name in weights_names:
        if (folder / name).is_file():
            file = inspect_weights(folder / name, what)
            return ModelFolder(folder, config, [file], file.tensors())
        if (folder / f"{name}.index.json").is_file():
            files, tensors = _inspect_shards(folder / f"{name}.index.json", what)
            return ModelFolder(folder, config, files, tensors)
    names = ", ".join(f"{n} or {n}.index.json" for n in weights_names)
    raise fail(what, folder, f"has no weights ({names})")


def _inspect_shards(index_path: Path, what: str) -> tuple[list[WeightsFile], dict[str, TensorInfo]]:
    index = read_json(index_path, what)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise fail(what, index_path, "has no weight_map (not a sharded-weights index)")
    files, tensors = [], {}
    for shard in sorted(set(map(str, weight_map.values()))):
        shard_path = index_path.parent / shard
        if not shard_path.is_file():
            raise fail(what, index_path, f"lists shard {shard}, which is missing")
        file = inspect_weights(shard_path, what)
        held = file.tensors()
        wanted = [t for t, s in weight_map.items() if s == shard]
        absent = [t for t in wanted if t not in held]
        if absent:
            raise fail(what, shard_path, f"does not hold {absent[0]}" + (f" (and {len(absent) - 1} more)" if
                       len(absent) > 1 else "") + f", which {index_path.name} places there")
        files.append(file)
        tensors.update({t: held[t] for t in wanted})
    return files, tensors


def expect_model(folder: ModelFolder, what: str, model_type: str | None = None, architectures: Sequence[str] = (),
                 prefixes: Sequence[str] = (), kind: str = "") -> None:
    """The folder holds the expected model: ``config.json`` ``model_type``, an architecture containing one of
    ``architectures`` (when the config lists any; ``kind`` names them in the message) and at least one weight
    under each of ``prefixes``."""
    found = folder.config.get("model_type")
    if model_type and found != model_type:
        raise fail(what, folder.path, f"holds a {found!r} model, not {model_type!r}" if found else
                   f"config.json has no model_type (expected {model_type!r})")
    archs = [str(a) for a in folder.config.get("architectures") or []]
    kind = kind or f"a {' or '.join(architectures)}"
    if architectures and archs and not any(want in arch for arch in archs for want in architectures):
        raise fail(what, folder.path, f"holds a {', '.join(archs)}, not {kind}")
    if folder.weights:
        for prefix in prefixes:
            if not any(k.startswith(prefix) for k in folder.tensors):
                raise fail(what, folder.weights[0].path, f"holds no {prefix}* weights, which {kind or model_type} "
                                                         "has")


@dataclass
class PipelineFolder:
    """A diffusers pipeline folder: ``model_index.json`` and its components (models as :class:`ModelFolder`,
    schedulers / tokenizers / processors as the path of their main file)."""

    path: Path
    index: dict[str, Any]
    components: dict[str, ModelFolder | Path] = field(default_factory=dict)


def inspect_pipeline_folder(path: str | Path, what: str = "", weights: bool = True) -> PipelineFolder:
    """``model_index.json`` and every component it lists (see the module docstring); ``weights=False`` reads
    the configs only (a ``--sd-config`` folder lends its configs, not its weights)."""
    folder = require_folder(path, what, "diffusers pipeline folder")
    if not (folder / "model_index.json").is_file():
        other = f" (it holds a {_folder_model(folder)})" if _folder_model(folder) else ""
        raise fail(what, folder, f"has no model_index.json: not a diffusers pipeline folder{other}")
    index = read_json(folder / "model_index.json", what)
    name = index.get("_class_name")
    if not (isinstance(name, str) and name.endswith("Pipeline")):
        raise fail(what, folder / "model_index.json", f"names no diffusers pipeline (_class_name {name!r})")
    pipeline = PipelineFolder(folder, index)
    for part, spec in index.items():
        if part.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or None in spec:
            continue
        library, cls = map(str, spec)
        sub = folder / part
        if not sub.is_dir():
            raise fail(what, folder, f"has no {part}/ folder, which model_index.json lists ({cls})")
        if cls.endswith("Scheduler"):
            pipeline.components[part] = require_any(sub, ("scheduler_config.json",), what, "scheduler config")
            read_json(pipeline.components[part], what)
        elif "Tokenizer" in cls:
            pipeline.components[part] = require_any(sub, TOKENIZER_FILES, what, "tokenizer vocabulary")
        elif cls.endswith(("ImageProcessor", "FeatureExtractor", "Processor")):
            pipeline.components[part] = require_any(sub, PROCESSOR_FILES, what, "processor config")
            read_json(pipeline.components[part], what)
        else:
            names = DIFFUSERS_WEIGHTS if library == "diffusers" else TRANSFORMERS_WEIGHTS
            model = inspect_model_folder(sub, what, names, weights=weights)
            declared = model.config.get("_class_name") or (model.config.get("architectures") or [None])[0]
            if declared and declared != cls:
                raise fail(what, sub / "config.json", f"holds a {declared}, model_index.json says {cls}")
            pipeline.components[part] = model
    return pipeline


def _folder_model(folder: Path) -> str | None:
    """``'blip' transformers model`` for a transformers folder (for messages), else None."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = config.get("model_type") if isinstance(config, dict) else None
    return f"{kind!r} transformers model" if kind else None
