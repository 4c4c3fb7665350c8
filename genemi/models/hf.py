"""Hugging Face ``transformers`` models from local folders only (no hub downloads).

Every loader takes a folder written by ``save_pretrained`` (or a downloaded hub snapshot). A string that
is not an existing folder fails at once with a clear message instead of trying the network.
"""

from __future__ import annotations

import json
import shlex
from contextlib import contextmanager

from pathlib import Path
from typing import Sequence

import torch

from genemi.errors import CheckpointError


def load_errors() -> tuple[type[Exception], ...]:
    """What ``from_pretrained`` raises for files it cannot use (safetensors has its own error type)."""
    from safetensors import SafetensorError

    return OSError, ValueError, KeyError, SafetensorError


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type when it has none), for one-line errors."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:limit]


def hub_id_hint(text: str | Path) -> str:
    """`` (looks like a hub id: ...)`` with the command that downloads exactly ``text``, when ``text`` has the
    shape of a Hugging Face hub id (``owner/name``) and is not a path on this machine; otherwise ``""``."""
    text = str(text)
    owner, sep, name = text.partition("/")
    if (not sep or "/" in name or not owner or not name or owner.startswith((".", "~"))
            or Path(owner).expanduser().exists() or Path(text).expanduser().exists()):
        return ""
    return (f" (looks like a hub id: download it once, e.g. `hf download {shlex.quote(text)} "
            f"--local-dir {shlex.quote('models/' + name)}`, and pass that folder)")


def require_local_dir(path: str | Path, what: str) -> Path:
    """``path`` as an existing model folder with a ``config.json``; hub ids are refused."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise CheckpointError(f"{what}: {path!s} is not a local folder{hub_id_hint(path)}; genemi never downloads models")
    if not (p / "config.json").is_file():
        raise CheckpointError(f"{what}: {p} has no config.json (expected a save_pretrained / hub snapshot folder)")
    return p


@contextmanager
def quiet_loading():
    """No transformers / diffusers progress bars while loading or saving weights (genemi reports its own
    progress); the previous settings are restored."""
    from transformers.utils import logging as tlog

    try:
        from diffusers.utils import logging as dlog
    except ImportError:  # pragma: no cover - diffusers is a dependency
        dlog = None
    modules = [m for m in (tlog, dlog) if m is not None]
    was = [m.is_progress_bar_enabled() for m in modules]
    for m in modules:
        m.disable_progress_bar()
    try:
        yield
    finally:
        for m, on in zip(modules, was):
            if on:
                m.enable_progress_bar()


def require_model_type(path: str | Path, model_cls, what: str) -> Path:
    """The local folder, checked (without loading weights) to hold the architecture ``model_cls`` loads: its
    ``config.json`` ``model_type`` must match, else a CheckpointError naming both."""
    folder = require_local_dir(path, what)
    expected = getattr(getattr(model_cls, "config_class", None), "model_type", None)
    if expected:
        try:
            found = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError):
            found = None
        if found and found != expected:
            raise CheckpointError(f"{what}: {folder} holds a {found!r} model, not {expected!r}")
    return folder


def check_pretrained(path: str | Path, what: str, model_type: str | None = None, architectures: Sequence[str] = (),
                     prefixes: Sequence[str] = (), processor: bool = False, kind: str = ""):
    """What :func:`load_pretrained` would refuse, found without loading a weight (nor importing a model class):
    a local folder whose ``config.json`` names ``model_type`` (and an architecture containing one of
    ``architectures`` when given; ``kind`` names them in messages), whose weights are all there
    (:func:`genemi.models.files.inspect_model_folder`: single or sharded, read as structure) with a weight under
    each of ``prefixes``, and whose tokenizer files (and with ``processor``, processor config) exist. Returns
    the :class:`~genemi.models.files.ModelFolder`."""
    from genemi.models import files

    folder = require_local_dir(path, what)
    found = files.inspect_model_folder(folder, what)
    files.expect_model(found, what, model_type, architectures, prefixes, kind)
    files.require_any(folder, files.TOKENIZER_FILES, what, "tokenizer files")
    if processor:
        files.read_json(files.require_any(folder, files.PROCESSOR_FILES, what, "processor config"), what)
    return found


def load_pretrained(model_cls, path: str | Path, what: str, device: str = "cpu", processor_cls=None):
    """``(model in eval mode on device, tokenizer or processor)`` from a local folder; every failure is a
    CheckpointError naming ``what`` and the folder. ``processor_cls`` defaults to ``AutoTokenizer``."""
    if processor_cls is None:
        from transformers import AutoTokenizer as processor_cls

    folder = require_model_type(path, model_cls, what)
    try:
        with quiet_loading():
            processor = processor_cls.from_pretrained(folder, local_files_only=True)
            model = model_cls.from_pretrained(folder, local_files_only=True)
    except load_errors() as exc:
        raise CheckpointError(f"{what}: cannot load {folder}: {first_line(exc)}") from exc
    return model.to(device).eval(), processor


def load_masked_lm(path: str | Path, device: str = "cpu"):
    """``(AutoModelForMaskedLM, tokenizer)`` from a local folder, in eval mode on ``device``."""
    from transformers import AutoModelForMaskedLM

    model, tok = load_pretrained(AutoModelForMaskedLM, path, "masked LM", device)
    if tok.mask_token is None:
        raise CheckpointError(f"masked LM {path}: its tokenizer has no mask token")
    return model, tok


def load_causal_lm(path: str | Path, device: str = "cpu"):
    """``(AutoModelForCausalLM, tokenizer)`` from a local folder, in eval mode on ``device``."""
    from transformers import AutoModelForCausalLM

    return load_pretrained(AutoModelForCausalLM, path, "causal LM", device)


def model_kind(path: str | Path) -> str:
    """``"masked"`` or ``"causal"`` from the folder's ``config.json`` architectures."""
    import json

    folder = require_local_dir(path, "language model")
    archs = json.loads((folder / "config.json").read_text()).get("architectures") or []
    if any("MaskedLM" in a for a in archs):
        return "masked"
    if any("CausalLM" in a or "LMHead" in a for a in archs):
        return "causal"
    raise CheckpointError(f"{folder}: config.json architectures {archs} are neither a masked nor a causal LM")


def _whole_word(token: str, byte_level: bool, at_start: bool) -> str | None:
    """The word a vocabulary entry spells if it starts a word, else None (sub-word pieces, punctuation)."""
    if byte_level:
        if token.startswith("Ġ"):
            token = token[1:]
        elif not at_start:
            return None
    elif token.startswith("##"):
        return None
    return token if token.isalpha() else None


@torch.no_grad()
def fill_mask(model, tokenizer, texts: Sequence[str], top_k: int, device: str, batch_size: int = 64) -> list[list[str]]:
    """For each text with one mask token: the ``top_k`` most likely whole-word fills, best first."""
    byte_level = any(k.startswith("Ġ") for k in tokenizer.get_vocab())  # GPT-2/RoBERTa byte-level BPE
    out: list[list[str]] = []
    for i in range(0, len(texts), batch_size):
        chunk = list(texts[i : i + batch_size])
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True).to(device)
        logits = model(**enc).logits
        rows, cols = (enc["input_ids"] == tokenizer.mask_token_id).nonzero(as_tuple=True)
        first_mask = {}
        for r, c in zip(rows.tolist(), cols.tolist()):
            first_mask.setdefault(r, c)
        for r in range(len(chunk)):
            if r not in first_mask:
                out.append([])
                continue
            ranked = logits[r, first_mask[r]].float().topk(min(logits.shape[-1], top_k * 20)).indices.tolist()
            at_start = first_mask[r] <= 1
            words: list[str] = []
            for tok in tokenizer.convert_ids_to_tokens(ranked):
                word = _whole_word(tok, byte_level, at_start) if tok else None
                if word and word not in words:
                    words.append(word)
                if len(words) == top_k:
                    break
            out.append(words)
    return out
