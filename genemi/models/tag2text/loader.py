"""Original Tag2Text checkpoints (``tag2text_swin_14m.pth``) into :class:`Tag2Text`.

Like the original loader: ``['model']`` is the state dict, the rebuilt buffers (``relative_position_index``,
``attn_mask``, ``position_ids``) are dropped, ``vision_multi`` is renamed ``tagging_head``, tied weights are
loaded once. Unlike it (``strict=False``), missing, unexpected and mis-shaped keys are errors naming them.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from genemi.errors import CheckpointError
from genemi.models.checkpoints import load_error, refused_global
from genemi.models.files import runs_code
from genemi.models.tag2text.config import Tag2TextSizes, sizes_from_config_dir
from genemi.models.tag2text.model import Tag2Text

REBUILT_BUFFERS = ("relative_position_index", "attn_mask", "position_ids")


def _names(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"Tag2Text checkpoint: {p} " + ("is a folder, expected a .pth file" if p.is_dir()
                                                              else "file not found"))
    try:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:  # training checkpoints may pickle other objects next to the weights
            name = refused_global(str(e))
            if name and runs_code([name]):  # but never one that asks to run code
                raise load_error(p, e, f"Tag2Text checkpoint {p}") from None
            obj = torch.load(p, map_location="cpu", weights_only=False)
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise load_error(p, e, f"Tag2Text checkpoint {p}") from None
    return model_state_dict(obj, f"Tag2Text checkpoint {p}")


def model_state_dict(obj, where: str) -> dict:
    """The state dict under ``'model'`` (the original's layout) of a loaded checkpoint."""
    sd = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        found = f"keys {', '.join(map(str, list(obj)[:4]))}" if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{where}: not a Tag2Text checkpoint: expected a dict with the state dict under "
                              f"'model' (the original's layout), found {found}")
    if not any(k.startswith("visual_encoder.") for k in sd):
        raise CheckpointError(f"{where}: not a Tag2Text checkpoint: its 'model' holds no visual_encoder.* weights "
                              f"(first keys: {', '.join(list(sd)[:3])})")
    return sd


def tied_groups(model: torch.nn.Module) -> list[list[str]]:
    """Names that share one tensor (the same parameter under several names)."""
    groups: dict[int, list[str]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(t), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def fit_state_dict(model: Tag2Text, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> dict:
    """``sd`` (original layout) as the full state dict of ``model`` (tied weights filled in), or a
    CheckpointError naming every key that does not fit. Works on ``meta`` tensors and a ``meta`` model (tied
    weights are then compared by shape only)."""
    sd = {k.replace("vision_multi", "tagging_head"): v for k, v in sd.items()
          if not any(b in k for b in REBUILT_BUFFERS)}
    own = {k: v for k, v in model.state_dict().items() if not any(b in k for b in REBUILT_BUFFERS)}
    alias = {}
    for group in tied_groups(model):
        present = [n for n in group if n in sd]
        for a, b in zip(present, present[1:]):
            if sd[a].shape == sd[b].shape and not sd[a].is_meta and not torch.equal(sd[a], sd[b]):
                raise CheckpointError(f"Tag2Text {source}: tied weights {a} and {b} differ (the model shares them)")
        for n in group:
            if present and n not in sd:
                alias[n] = present[0]
    missing = [k for k in own if k not in sd and k not in alias]
    unexpected = [k for k in sd if k not in own]
    if missing or unexpected:
        parts = ([f"missing keys: {_names(missing)}"] if missing else []) + \
                ([f"unexpected keys: {_names(unexpected)}"] if unexpected else [])
        raise CheckpointError(f"Tag2Text {source} does not fit the model ({'; '.join(parts)})")
    wrong = [f"{k} {tuple(sd[k].shape)} (model {tuple(v.shape)})" for k, v in own.items()
             if k in sd and sd[k].shape != v.shape]
    if wrong:
        hint = "; a 384-px Swin-B checkpoint needs no resizing: are the size configs right?" \
            if any("relative_position_bias_table" in w for w in wrong) else "; are the size configs right?"
        raise CheckpointError(f"Tag2Text {source}: shapes differ: {_names(wrong, 6)}{hint}")
    return {k: sd.get(k, sd.get(alias.get(k, k))) for k in own}


def load_state_dict_strictly(model: Tag2Text, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``sd`` (original layout) into ``model``; any key that does not fit is a CheckpointError."""
    model.load_state_dict(fit_state_dict(model, sd, source), strict=False)


def tag2text_sizes(checkpoint: str | Path, sd: dict, sizes: Tag2TextSizes | None = None,
                   config_dir: str | Path | None = None) -> Tag2TextSizes:
    """Sizes: ``sizes``, else the three original config files in ``config_dir``, else ``configs/`` next to the
    checkpoint if present, else the real Swin-B (the number of classes from the checkpoint's ``fc.b``)."""
    if sizes is not None:
        return sizes
    folder = Path(config_dir) if config_dir else Path(checkpoint).expanduser().parent / "configs"
    if config_dir and not folder.is_dir():
        raise CheckpointError(f"Tag2Text configs: {folder} is not a folder")
    if not folder.is_dir():
        return Tag2TextSizes()
    return sizes_from_config_dir(folder, num_classes=sd["fc.b"].shape[-1] if "fc.b" in sd else 3429)


def _empty_model(sizes: Tag2TextSizes) -> Tag2Text:
    with torch.device("meta"):
        model = Tag2Text(sizes)
    model.text_decoder.tie_weights()
    return model


def check_tag2text(checkpoint: str | Path, sizes: Tag2TextSizes | None = None, config_dir: str | Path | None = None,
                   what: str = "--tag2text-checkpoint") -> Tag2TextSizes:
    """What :func:`load_tag2text` would refuse, found from the checkpoint's structure (:mod:`genemi.models.files`)
    and a model on the ``meta`` device: a damaged or truncated file, another model's weights, a key or shape
    that does not fit. Returns the sizes; no weight is read."""
    from genemi.models.files import as_meta, fail, inspect_torch_file, require_weights_only

    found = require_weights_only(inspect_torch_file(checkpoint, what), what, any_class=True)
    try:
        sd = as_meta(model_state_dict(found.content, "its content"))
        sizes = tag2text_sizes(checkpoint, sd, sizes, config_dir)
        fit_state_dict(_empty_model(sizes), sd)
    except CheckpointError as exc:
        raise fail(what, found.path, str(exc).removeprefix("its content: ").removeprefix("Tag2Text ")) from None
    return sizes


def load_tag2text(checkpoint: str | Path, sizes: Tag2TextSizes | None = None, config_dir: str | Path | None = None,
                  device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> Tag2Text:
    """An eval-mode :class:`Tag2Text` from an original checkpoint, sized by :func:`tag2text_sizes`."""
    sd = read_state_dict(checkpoint)
    sizes = tag2text_sizes(checkpoint, sd, sizes, config_dir)
    model = _empty_model(sizes).to_empty(device="cpu")
    model.text_decoder.tie_weights()
    _rebuild_buffers(model, sizes)
    load_state_dict_strictly(model, sd, f"checkpoint {checkpoint}")
    model = model.to(device=device, dtype=dtype)
    model.text_decoder.tie_weights()
    return model.eval()


def _rebuild_buffers(model: Tag2Text, sizes: Tag2TextSizes) -> None:
    """Buffers of a model built on ``meta`` and moved with ``to_empty`` hold garbage: recompute them."""
    from genemi.models.tag2text.swin import relative_position_index, shift_mask

    for module in model.modules():
        if hasattr(module, "relative_position_bias_table"):
            window = int(round((module.relative_position_bias_table.shape[0]) ** 0.5) + 1) // 2
            module.relative_position_index.copy_(relative_position_index(window))
        if getattr(module, "attn_mask", None) is not None:
            module.attn_mask.copy_(shift_mask(module.resolution, module.resolution, module.window, module.shift))
        if hasattr(module, "position_ids"):
            module.position_ids.copy_(torch.arange(module.position_ids.shape[1]).unsqueeze(0))
