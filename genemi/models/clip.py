"""Create open_clip CLIP models by name and load every checkpoint format users have.

Architecture and weights are two inputs (as in open_clip):

* ``model_name``: an open_clip name (``ViT-B-32``, ``ViT-B-32-quickgelu``), an OpenAI ``clip`` name
  (``ViT-B/32``), ``local-dir:<dir>`` (``open_clip_config.json`` + weights) or a path to a model-config
  ``.json`` file.
* ``pretrained``: ``None`` (random init), a local file (open_clip, OpenAI, GeNeMi snapshot, CE-CLIP
  training checkpoint, genemi checkpoint), a local folder, or an open_clip tag (``openai``, ``laion2b_…``)
  whose file is already in the local cache. Nothing is ever downloaded.

QuickGELU is decided once, in :func:`decide_quick_gelu`: OpenAI-derived weights are always run with
QuickGELU, because evaluating them with GELU silently costs accuracy.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from genemi.errors import CheckpointError
from genemi.models.checkpoints import (Checkpoint, inspect_checkpoint, load_weights_strict, read_checkpoint,
                                      state_dict_problems)

logger = logging.getLogger(__name__)

#: OpenAI ``clip`` package names -> open_clip architecture names.
OPENAI_MODEL_NAMES = {
    "RN50": "RN50",
    "RN101": "RN101",
    "RN50x4": "RN50x4",
    "RN50x16": "RN50x16",
    "RN50x64": "RN50x64",
    "ViT-B/32": "ViT-B-32",
    "ViT-B/16": "ViT-B-16",
    "ViT-L/14": "ViT-L-14",
    "ViT-L/14@336px": "ViT-L-14-336",
}
#: Architectures OpenAI released weights for: fine-tunes of them (CE-CLIP, NegCLIP) start from QuickGELU weights.
OPENAI_ARCHITECTURES = frozenset(OPENAI_MODEL_NAMES.values())
QUICKGELU_SUFFIX = "-quickgelu"
OPEN_CLIP_CONFIG_FILE = "open_clip_config.json"
OPEN_CLIP_WEIGHTS_FILE = "open_clip_model.safetensors"
_WEIGHT_FILE_PREFERENCE = (
    OPEN_CLIP_WEIGHTS_FILE,
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
)


@dataclass
class ModelSpec:
    """A resolved architecture: display name, open_clip model config and preprocessing overlay."""

    name: str
    model_cfg: dict[str, Any]
    preprocess_cfg: dict[str, Any]
    bundled_weights: Path | None = None  # weights that came with a local-dir model


@dataclass
class ClipBundle:
    """A ready model with everything needed to feed it."""

    model: torch.nn.Module
    name: str
    model_cfg: dict[str, Any]  # includes the final ``quick_gelu``
    preprocess_cfg: dict[str, Any]
    tokenizer: Callable[..., torch.Tensor]
    checkpoint: Checkpoint | None
    quick_gelu_reason: str

    @property
    def quick_gelu(self) -> bool:
        return bool(self.model_cfg.get("quick_gelu", False))

    def transform(self, is_train: bool = False) -> Callable:
        """The image preprocessing (open_clip's train transform adds random resized crops)."""
        from open_clip.transform import PreprocessCfg, image_transform_v2

        return image_transform_v2(PreprocessCfg(**self.preprocess_cfg), is_train=is_train)


def resolve_model_spec(model_name: str) -> ModelSpec:
    """Turn a user's model name into an architecture config, without touching any weights."""
    import open_clip

    name = OPENAI_MODEL_NAMES.get(model_name, model_name)
    if name.startswith("hf-hub:"):
        raise CheckpointError(
            f"{model_name!r} is a Hugging Face hub id; genemi never downloads. Download the repository "
            "on a machine with internet and pass 'local-dir:<folder>' instead."
        )
    if name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:"):])
        config_path = folder / OPEN_CLIP_CONFIG_FILE
        if not config_path.is_file():
            raise CheckpointError(f"{folder}: no {OPEN_CLIP_CONFIG_FILE} (an open_clip local-dir model folder)")
        data = _read_json(config_path)
        if "model_cfg" not in data:
            raise CheckpointError(f"{config_path}: missing 'model_cfg'")
        return ModelSpec(name, data["model_cfg"], data.get("preprocess_cfg", {}), find_weights_in_dir(folder))
    if name.endswith(".json"):
        path = Path(name)
        if not path.is_file():
            raise CheckpointError(f"model config file not found: {path}")
        data = _read_json(path)
        cfg = data.get("model_cfg", data)
        return ModelSpec(path.stem, cfg, data.get("preprocess_cfg", {}))
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        base = name[: -len(QUICKGELU_SUFFIX)] if name.endswith(QUICKGELU_SUFFIX) else None
        cfg = open_clip.get_model_config(base) if base else None
        if cfg is None:
            raise CheckpointError(
                f"unknown CLIP architecture {model_name!r}: use an open_clip model name "
                "(see open_clip.list_models()), an OpenAI name such as 'ViT-B/32', 'local-dir:<folder>', "
                "or a model config .json file"
            )
        cfg["quick_gelu"] = True
    return ModelSpec(name, copy.deepcopy(cfg), {})


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def find_weights_in_dir(folder: Path) -> Path | None:
    """The weights file of a model folder, by open_clip's preference order."""
    for name in _WEIGHT_FILE_PREFERENCE:
        if (folder / name).is_file():
            return folder / name
    return None


def resolve_pretrained(spec: ModelSpec, pretrained: str | Path | None, cache_dir: str | None = None):
    """Map ``pretrained`` to ``(local file or None, open_clip tag config or {})``; never downloads."""
    import open_clip

    if pretrained is None or str(pretrained) == "":
        return spec.bundled_weights, {}
    path = Path(pretrained)
    if path.is_file():
        return path, {}
    if path.is_dir():
        found = find_weights_in_dir(path)
        if found is None:
            raise CheckpointError(f"{path}: folder has none of {', '.join(_WEIGHT_FILE_PREFERENCE)}")
        return found, {}
    if "/" in str(pretrained) or path.suffix in (".pt", ".pth", ".bin", ".safetensors"):
        from genemi.models.hf import hub_id_hint

        hint = hub_id_hint(str(pretrained))
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(spec.name)[:3])
        also = f"; or name an open_clip tag of {spec.name} ({tags}) whose weights are in the local cache" if tags else ""
        raise CheckpointError(f"checkpoint not found: {path}{hint}{also}")
    arch = spec.name[: -len(QUICKGELU_SUFFIX)] if spec.name.endswith(QUICKGELU_SUFFIX) else spec.name
    tag_cfg = open_clip.get_pretrained_cfg(spec.name, str(pretrained)) or open_clip.get_pretrained_cfg(
        arch, str(pretrained)
    )
    if not tag_cfg:
        tags = open_clip.list_pretrained_tags_by_model(spec.name) or open_clip.list_pretrained_tags_by_model(arch)
        raise CheckpointError(
            f"pretrained={str(pretrained)!r} is neither an existing file/folder nor an open_clip tag of "
            f"{spec.name} (known tags: {', '.join(tags) or 'none'})"
        )
    cached = _cached_tag_file(tag_cfg, cache_dir)
    if cached is None:
        source = tag_cfg.get("hf_hub") or tag_cfg.get("url") or "?"
        raise CheckpointError(
            f"open_clip weights {spec.name}/{pretrained} are not in the local cache ({source}); genemi never "
            "downloads. Fetch them on a machine with internet (open_clip.create_model(..., pretrained=tag) "
            "fills the cache) or pass the checkpoint file path."
        )
    return cached, tag_cfg


def _cached_tag_file(tag_cfg: dict[str, Any], cache_dir: str | None) -> Path | None:
    if tag_cfg.get("file") and Path(tag_cfg["file"]).is_file():
        return Path(tag_cfg["file"])
    hub = tag_cfg.get("hf_hub")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = hub.rstrip("/").rsplit("/", 1) if not hub.endswith("/") else (hub.rstrip("/"), "")
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith(".bin"):
            names.insert(0, filename[: -len(".bin")] + ".safetensors")
        for candidate in names:
            hit = try_to_load_from_cache(repo_id, candidate, cache_dir=cache_dir)
            if isinstance(hit, str):
                return Path(hit)
    url = tag_cfg.get("url")
    if url:
        folder = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "clip"
        candidate = folder / Path(url).name
        if candidate.is_file():
            return candidate
    return None


def decide_quick_gelu(
    spec: ModelSpec, checkpoint: Checkpoint | None, tag_cfg: dict[str, Any], explicit: bool | None
) -> tuple[bool, str]:
    """Pick the activation that matches how the weights were trained, and say why."""
    if explicit is not None:
        return explicit, "set explicitly"
    if checkpoint is not None and checkpoint.format == "genemi":
        recorded = checkpoint.raw.get("genemi", {}).get("model_cfg", {}).get("quick_gelu")
        if recorded is not None:
            return bool(recorded), "recorded in the genemi checkpoint"
    if tag_cfg:
        return bool(tag_cfg.get("quick_gelu", False)), "open_clip pretrained tag"
    if checkpoint is not None and checkpoint.is_openai_derived:
        if checkpoint.format == "openai_state_dict" and not checkpoint.raw:
            return True, ("a guess: fp16 tensors without OpenAI's input_resolution/context_length keys are taken for "
                          "OpenAI-derived weights; pass --quick-gelu off if they were trained with GELU")
        return True, f"OpenAI-derived weights ({checkpoint.format})"
    if spec.model_cfg.get("quick_gelu"):
        return True, "model config"
    base = spec.name[: -len(QUICKGELU_SUFFIX)] if spec.name.endswith(QUICKGELU_SUFFIX) else spec.name
    if checkpoint is not None and checkpoint.format == "open_clip_train" and base in OPENAI_ARCHITECTURES:
        return True, (
            "open_clip training checkpoint of an OpenAI architecture (CE-CLIP/NegCLIP fine-tune from OpenAI "
            "weights); pass quick_gelu=False / --no-quick-gelu if it was trained from GELU weights"
        )
    if checkpoint is not None and base in OPENAI_ARCHITECTURES:
        return False, (f"a guess: {base} is an OpenAI architecture but nothing in these fp32 weights says they come "
                       "from OpenAI; GELU is used (open_clip's own trainings); pass --quick-gelu on for OpenAI weights")
    return False, "model config"


def build_clip(model_cfg: dict[str, Any]) -> torch.nn.Module:
    """Instantiate an open_clip ``CLIP`` (or ``CustomTextCLIP``) from a model config, randomly initialised."""
    from open_clip.model import CLIP, CustomTextCLIP

    cfg = copy.deepcopy(model_cfg)
    if "multimodal_cfg" in cfg:
        raise CheckpointError("CoCa models are not supported by genemi (contrastive CLIP models only)")
    custom = bool(cfg.pop("custom_text", False)) or "hf_model_name" in cfg.get("text_cfg", {})
    cfg.pop("hf_tokenizer_name", None)
    try:
        return CustomTextCLIP(**cfg) if custom else CLIP(**cfg)
    except TypeError as exc:
        raise CheckpointError(f"invalid open_clip model config: {exc}") from exc


def build_tokenizer(spec_name: str, model_cfg: dict[str, Any]) -> Callable[..., torch.Tensor]:
    """open_clip's BPE tokenizer with the model's context length (shipped with open_clip: works offline)."""
    import open_clip

    text_cfg = model_cfg.get("text_cfg", {})
    if "hf_tokenizer_name" in text_cfg:
        return open_clip.get_tokenizer(spec_name)
    return open_clip.SimpleTokenizer(context_length=text_cfg.get("context_length", 77))


def default_preprocess_cfg(model_cfg: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    from open_clip.transform import PreprocessCfg

    cfg = {k: v for k, v in vars(PreprocessCfg()).items()}
    cfg["size"] = model_cfg.get("vision_cfg", {}).get("image_size", 224)
    cfg.update({k: v for k, v in overlay.items() if k in cfg})
    for key in ("mean", "std"):
        cfg[key] = tuple(cfg[key])
    return cfg


def create_clip(
    model_name: str,
    pretrained: str | Path | None = None,
    *,
    quick_gelu: bool | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | None = None,
    trust_pickle: bool = False,
) -> ClipBundle:
    """Build ``model_name`` and load ``pretrained`` into it (float32 weights, eval mode)."""
    # 1. Architecture, 2. weights file, 3. activation, 4. model, 5. weights, 6. tokenizer and transforms.
    spec = resolve_model_spec(model_name)
    weights_path, tag_cfg = resolve_pretrained(spec, pretrained, cache_dir)
    checkpoint = read_checkpoint(weights_path, trust_pickle=trust_pickle) if weights_path else None
    use_quick_gelu, reason = decide_quick_gelu(spec, checkpoint, tag_cfg, quick_gelu)
    detected = quick_gelu is None and not reason.startswith("recorded")
    if checkpoint is not None and reason.startswith("a guess"):
        logger.warning("%s: %s (%s)", weights_path, "QuickGELU" if use_quick_gelu else "GELU", reason)
    elif checkpoint is not None and use_quick_gelu and not spec.model_cfg.get("quick_gelu") and detected:
        logger.warning(
            "%s: using QuickGELU although %s names a GELU architecture (%s)", weights_path, model_name, reason
        )
    model_cfg = copy.deepcopy(spec.model_cfg)
    model_cfg["quick_gelu"] = use_quick_gelu
    model = build_clip(model_cfg)
    if checkpoint is not None:
        load_weights_strict(
            model,
            _fit_logit_scale(model, checkpoint.state_dict),
            source=f"checkpoint {checkpoint.path} ({checkpoint.format})",
            hint=describe_clip_state_dict(checkpoint.state_dict),
        )
    model = model.float().to(device).eval()
    preprocess = default_preprocess_cfg(model_cfg, {**spec.preprocess_cfg, **_tag_preprocess(tag_cfg)})
    return ClipBundle(
        model=model,
        name=spec.name,
        model_cfg=model_cfg,
        preprocess_cfg=preprocess,
        tokenizer=build_tokenizer(spec.name, model_cfg),
        checkpoint=checkpoint,
        quick_gelu_reason=reason,
    )


def check_clip(model_name: str, pretrained: str | Path | None, what: str = "", cache_dir: str | None = None,
               trust_pickle: bool = False) -> Path | None:
    """What :func:`create_clip` would refuse, found without loading weights: the architecture is resolved, the
    weights file read as structure (:func:`~genemi.models.checkpoints.inspect_checkpoint`) and its every key
    and shape compared with the model built on the ``meta`` device. Returns the weights file (None: the model
    would have no weights); problems are one-line CheckpointErrors naming ``what`` (the flag) and the file."""
    from genemi.models.files import fail

    spec = resolve_model_spec(model_name)
    weights_path, _ = resolve_pretrained(spec, pretrained, cache_dir)
    if weights_path is None:
        return None
    checkpoint = inspect_checkpoint(weights_path, what, trust_pickle)
    with torch.device("meta"):
        model = build_clip(spec.model_cfg)
    problems = state_dict_problems(model, _fit_logit_scale(model, checkpoint.state_dict), shown=3)
    if problems:
        hint = describe_clip_state_dict(checkpoint.state_dict)
        raise fail(what, weights_path, f"does not fit the {spec.name} architecture ({checkpoint.format}): "
                                       + "; ".join(problems) + (f". {hint}" if hint else ""))
    return weights_path


def _tag_preprocess(tag_cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}


def _fit_logit_scale(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenAI stores ``logit_scale`` as a 0-d tensor, some open_clip versions as shape ``[1]``."""
    target = getattr(model, "logit_scale", None)
    if target is not None and "logit_scale" in sd and sd["logit_scale"].shape != target.shape:
        sd = dict(sd)
        sd["logit_scale"] = sd["logit_scale"].reshape(target.shape)
    return sd


def describe_clip_state_dict(sd: dict[str, torch.Tensor]) -> str:
    """A one-line guess of the architecture that produced a ViT CLIP state dict (for error messages)."""
    conv = sd.get("visual.conv1.weight")
    if conv is None or conv.ndim != 4:
        return ""
    width, patch = conv.shape[0], conv.shape[-1]
    layers = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
    pos = sd.get("visual.positional_embedding")
    grid = int(round((pos.shape[0] - 1) ** 0.5)) if pos is not None else 0
    text_width = sd["ln_final.weight"].shape[0] if "ln_final.weight" in sd else "?"
    return (
        f"The checkpoint looks like a ViT with patch {patch}, width {width}, {layers} layers, "
        f"image {grid * patch}px, text width {text_width}."
    )


def save_open_clip_dir(bundle_or_model, model_cfg: dict[str, Any], preprocess_cfg: dict[str, Any], folder) -> Path:
    """Write ``open_clip_config.json`` + ``open_clip_model.safetensors``: loadable as ``local-dir:<folder>``."""
    from safetensors.torch import save_file

    from genemi.manifest import write_atomic

    model = getattr(bundle_or_model, "model", bundle_or_model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": _jsonable(preprocess_cfg)}
    write_atomic(folder / OPEN_CLIP_CONFIG_FILE, json.dumps(config, indent=2).encode("utf-8"))
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    weights = folder / OPEN_CLIP_WEIGHTS_FILE
    tmp = weights.with_name(f".{weights.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp))
        # safetensors writes through its own private (0600) temporary file: give the export the permissions
        # every other file genemi writes gets (0666 minus the umask)
        os.chmod(tmp, 0o666 & ~_current_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, weights)
    finally:
        tmp.unlink(missing_ok=True)
    return folder


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _jsonable(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


def trimmable_text_length(model: torch.nn.Module, text: torch.Tensor, pad_id: int = 0) -> int | None:
    """Tokens needed to encode ``text`` exactly, or ``None`` if this model cannot skip padding.

    With a causal text mask and EOT ("argmax"/"eos") pooling, positions after the longest caption of the
    batch never influence the pooled feature, so they can be dropped: a COCO caption is ~15 of 77 tokens.
    """
    if getattr(model, "text_pool_type", None) not in ("argmax", "eos") or getattr(model, "attn_mask", None) is None:
        return None
    return int((text != pad_id).sum(dim=1).max().item()) if text.numel() else None


def encode_text_trimmed(model: torch.nn.Module, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """``model.encode_text`` on only the tokens that matter (identical result, less compute)."""
    import torch.nn.functional as F
    from open_clip.transformer import text_global_pool

    length = trimmable_text_length(model, text)
    if length is None or length >= text.shape[1]:
        return model.encode_text(text, normalize=normalize)
    text = text[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, text, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        x = model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection
    return F.normalize(x, dim=-1) if normalize else x


class ContrastiveForward(torch.nn.Module):
    """``(images, texts) -> (image_features, text_features, logit_scale)`` with padding-trimmed text.

    Wrap this (not the bare CLIP) in DistributedDataParallel so the trimmed path still syncs gradients.
    """

    def __init__(self, clip: torch.nn.Module):
        super().__init__()
        self.clip = clip

    def forward(self, images: torch.Tensor, texts: torch.Tensor):
        image_features = self.clip.encode_image(images, normalize=True)
        text_features = encode_text_trimmed(self.clip, texts, normalize=True)
        return image_features, text_features, self.clip.logit_scale.exp()
