"""Original Grounding DINO checkpoints (IDEA-Research ``groundingdino_swint_ogc.pth`` /
``groundingdino_swinb_cogcoor.pth`` + their ``.py`` config) -> transformers ``GroundingDinoForObjectDetection``.

* The ``.py`` config is **parsed with ``ast``, never executed** (it is plain ``name = literal`` lines).
* Swin sizes come from the backbone name (the original's size table, :data:`SWIN_SIZES`) or are given
  explicitly (``swin=``); they are checked against the checkpoint's shapes, so a config for another
  backbone fails with a message naming both.
* The BERT text encoder's weights come from the checkpoint (``bert.*``); its config and vocabulary come from a
  local folder (the config's ``text_encoder_type``, relative to the config file or the working directory, or an
  explicit ``text_encoder=`` folder). genemi never downloads it.
* The conversion is exhaustive: every original key is renamed (:data:`RENAMES`), split (fused Swin ``qkv`` and
  ``nn.MultiheadAttention`` ``in_proj``) or listed in :data:`DROPPED`; any other key is an error naming it.
  The only model entries left at their initial value are :data:`UNFILLED` (Swin's final LayerNorm, which the
  backbone outputs never use).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from genemi.errors import CheckpointError, ConfigError

#: the original ``build_swin_transformer`` size table (embed_dim, depths, num_heads, window, pretrain size)
SWIN_SIZES: dict[str, dict[str, Any]] = {
    "swin_T_224_1k": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7, image_size=224),
    "swin_B_224_22k": dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=7,
                           image_size=224),
    "swin_B_384_22k": dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12,
                           image_size=384),
    "swin_L_224_22k": dict(embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=7,
                           image_size=224),
    "swin_L_384_22k": dict(embed_dim=192, depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=12,
                           image_size=384),
}

#: original keys with no counterpart, and why
DROPPED: dict[str, str] = {
    r"label_enc\.weight": "denoising label embedding, used only in training",
    r"bert\.embeddings\.position_ids": "buffer of older transformers; recomputed",
    r"bert\.pooler\.dense\.(weight|bias)": "BERT pooler, unused by Grounding DINO",
    r"backbone\.0\.layers\.\d+\.blocks\.\d+\.attn\.relative_position_index": "Swin buffer; recomputed from the window",
}

#: transformers model entries the original has no weights for (not used by the outputs)
UNFILLED = (r"model\.backbone\.conv_encoder\.model\.swin\.layernorm\.(weight|bias)",)

_SWIN = "model.backbone.conv_encoder.model.swin."
#: (original regex, transformers template) applied to keys without the ``module.`` prefix; first match wins
RENAMES: list[tuple[str, str]] = [
    # Swin backbone
    (r"backbone\.0\.patch_embed\.proj\.(.+)", _SWIN + r"embeddings.patch_embeddings.projection.\1"),
    (r"backbone\.0\.patch_embed\.norm\.(.+)", _SWIN + r"embeddings.norm.\1"),
    (r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.norm1\.(.+)", _SWIN + r"encoder.layers.\1.blocks.\2.layernorm_before.\3"),
    (r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.norm2\.(.+)", _SWIN + r"encoder.layers.\1.blocks.\2.layernorm_after.\3"),
    (r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table",
     _SWIN + r"encoder.layers.\1.blocks.\2.attention.relative_position_bias.relative_position_bias_table"),
    (r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.proj\.(.+)", _SWIN + r"encoder.layers.\1.blocks.\2.attention.o_proj.\3"),
    (r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.(fc[12])\.(.+)", _SWIN + r"encoder.layers.\1.blocks.\2.mlp.\3.\4"),
    (r"backbone\.0\.layers\.(\d+)\.downsample\.(.+)", _SWIN + r"encoder.layers.\1.downsample.\2"),
    (r"backbone\.0\.norm(\d)\.(.+)", None),  # output norms: stage index shifts by one, see _rename
    # text encoder and projections
    (r"bert\.(embeddings|encoder)\.(.+)", r"model.text_backbone.\1.\2"),
    (r"feat_map\.(.+)", r"model.text_projection.\1"),
    (r"input_proj\.(\d+)\.([01])\.(.+)", r"model.input_proj_vision.\1.\2.\3"),
    # encoder: deformable image layers, text enhancer, fusion
    (r"transformer\.level_embed", r"model.level_embed"),
    (r"transformer\.encoder\.layers\.(\d+)\.self_attn\.(.+)", r"model.encoder.layers.\1.deformable_layer.self_attn.\2"),
    (r"transformer\.encoder\.layers\.(\d+)\.norm1\.(.+)", r"model.encoder.layers.\1.deformable_layer.self_attn_layer_norm.\2"),
    (r"transformer\.encoder\.layers\.(\d+)\.norm2\.(.+)", r"model.encoder.layers.\1.deformable_layer.final_layer_norm.\2"),
    (r"transformer\.encoder\.layers\.(\d+)\.linear([12])\.(.+)", r"model.encoder.layers.\1.deformable_layer.fc\2.\3"),
    (r"transformer\.encoder\.text_layers\.(\d+)\.self_attn\.out_proj\.(.+)",
     r"model.encoder.layers.\1.text_enhancer_layer.self_attn.out_proj.\2"),
    (r"transformer\.encoder\.text_layers\.(\d+)\.linear([12])\.(.+)", r"model.encoder.layers.\1.text_enhancer_layer.fc\2.\3"),
    (r"transformer\.encoder\.text_layers\.(\d+)\.norm1\.(.+)", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_before.\2"),
    (r"transformer\.encoder\.text_layers\.(\d+)\.norm2\.(.+)", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_after.\2"),
    (r"transformer\.encoder\.fusion_layers\.(\d+)\.gamma_v", r"model.encoder.layers.\1.fusion_layer.vision_param"),
    (r"transformer\.encoder\.fusion_layers\.(\d+)\.gamma_l", r"model.encoder.layers.\1.fusion_layer.text_param"),
    (r"transformer\.encoder\.fusion_layers\.(\d+)\.layer_norm_v\.(.+)", r"model.encoder.layers.\1.fusion_layer.layer_norm_vision.\2"),
    (r"transformer\.encoder\.fusion_layers\.(\d+)\.layer_norm_l\.(.+)", r"model.encoder.layers.\1.fusion_layer.layer_norm_text.\2"),
    (r"transformer\.encoder\.fusion_layers\.(\d+)\.attn\.(out_|values_|)v_proj\.(.+)",
     r"model.encoder.layers.\1.fusion_layer.attn.\2vision_proj.\3"),
    (r"transformer\.encoder\.fusion_layers\.(\d+)\.attn\.(out_|values_|)l_proj\.(.+)",
     r"model.encoder.layers.\1.fusion_layer.attn.\2text_proj.\3"),
    # decoder
    (r"transformer\.decoder\.layers\.(\d+)\.cross_attn\.(.+)", r"model.decoder.layers.\1.encoder_attn.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.norm1\.(.+)", r"model.decoder.layers.\1.encoder_attn_layer_norm.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.ca_text\.out_proj\.(.+)", r"model.decoder.layers.\1.encoder_attn_text.out_proj.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.catext_norm\.(.+)", r"model.decoder.layers.\1.encoder_attn_text_layer_norm.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.self_attn\.out_proj\.(.+)", r"model.decoder.layers.\1.self_attn.out_proj.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.norm2\.(.+)", r"model.decoder.layers.\1.self_attn_layer_norm.\2"),
    (r"transformer\.decoder\.layers\.(\d+)\.linear([12])\.(.+)", r"model.decoder.layers.\1.fc\2.\3"),
    (r"transformer\.decoder\.layers\.(\d+)\.norm3\.(.+)", r"model.decoder.layers.\1.final_layer_norm.\2"),
    (r"transformer\.decoder\.norm\.(.+)", r"model.decoder.layer_norm.\1"),
    (r"transformer\.decoder\.ref_point_head\.(.+)", r"model.decoder.reference_points_head.\1"),
    (r"transformer\.decoder\.bbox_embed\.(.+)", r"model.decoder.bbox_embed.\1"),
    (r"transformer\.tgt_embed\.weight", r"model.query_position_embeddings.weight"),
    (r"transformer\.enc_output\.(.+)", r"model.enc_output.\1"),
    (r"transformer\.enc_output_norm\.(.+)", r"model.enc_output_norm.\1"),
    (r"transformer\.enc_out_bbox_embed\.(.+)", r"model.encoder_output_bbox_embed.\1"),
    (r"bbox_embed\.(.+)", r"bbox_embed.\1"),
]

#: fused projections split into thirds (q, k, v): original regex -> transformers prefix template
SPLITS: list[tuple[str, str, tuple[str, str, str]]] = [
    (r"backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)",
     _SWIN + r"encoder.layers.\1.blocks.\2.attention.{}.\3", ("q_proj", "k_proj", "v_proj")),
    (r"transformer\.encoder\.text_layers\.(\d+)\.self_attn\.in_proj_(weight|bias)",
     r"model.encoder.layers.\1.text_enhancer_layer.self_attn.{}.\2", ("query", "key", "value")),
    (r"transformer\.decoder\.layers\.(\d+)\.ca_text\.in_proj_(weight|bias)",
     r"model.decoder.layers.\1.encoder_attn_text.{}.\2", ("query", "key", "value")),
    (r"transformer\.decoder\.layers\.(\d+)\.self_attn\.in_proj_(weight|bias)",
     r"model.decoder.layers.\1.self_attn.{}.\2", ("query", "key", "value")),
]


# --- the .py config ------------------------------------------------------------------------------------

def parse_original_config(path: str | Path) -> dict[str, Any]:
    """``name = literal`` assignments of an original ``.py`` config, read with ``ast`` (never executed)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"Grounding DINO config (--gd-config): file not found: {p}")
    try:
        tree = ast.parse(p.read_text(), filename=str(p))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"Grounding DINO config (--gd-config) {p}: not a Python config file ({detail})") from exc
    values: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ConfigError(f"Grounding DINO config (--gd-config) {p}, line {node.lineno}: only `name = value` assignments are "
                              "read (the file is parsed, never executed)")
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ConfigError(f"Grounding DINO config (--gd-config) {p}, line {node.lineno}: {node.targets[0].id} is not a "
                              "literal value") from exc
    if values.get("modelname") != "groundingdino" or "backbone" not in values:
        raise ConfigError(f"Grounding DINO config (--gd-config) {p}: not an original Grounding DINO config "
                          f"(modelname={values.get('modelname')!r}, expected 'groundingdino' and a backbone)")
    missing = [k for k in REQUIRED_FIELDS if k not in values]
    if missing:
        raise ConfigError(f"Grounding DINO config (--gd-config) {p}: missing {', '.join(missing)} (an original config "
                          "such as GroundingDINO_SwinT_OGC.py sets them all; restore them from it)")
    return values


#: the settings of an original config that the conversion reads without a default
REQUIRED_FIELDS = ("num_queries", "enc_layers", "dec_layers", "dim_feedforward", "nheads", "hidden_dim")


_SUPPORTED = {"two_stage_type": "standard", "num_patterns": 0, "query_dim": 4, "use_text_enhancer": True,
              "use_fusion_layer": True, "use_text_cross_attention": True, "sub_sentence_present": True,
              "two_stage_class_embed_share": False, "pre_norm": False, "position_embedding": "sine"}


def swin_sizes(cfg: Mapping[str, Any], swin: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Swin sizes from the backbone name, overridden by the config's ``swin_sizes`` dict (a genemi extension),
    then by ``swin`` (keys embed_dim, depths, num_heads, window_size, image_size)."""
    name = cfg["backbone"]
    if cfg.get("swin_sizes") is not None:  # genemi extension of the config format (the original ignores it)
        if not isinstance(cfg["swin_sizes"], dict):
            raise ConfigError("Grounding DINO config: swin_sizes must be a {'embed_dim': ..., ...} dict literal")
        swin = {**cfg["swin_sizes"], **(swin or {})}
    if swin is None and name not in SWIN_SIZES:
        raise ConfigError(f"Grounding DINO config: backbone {name!r} is not supported (known: "
                          f"{', '.join(SWIN_SIZES)}; give the Swin sizes explicitly for another one)")
    sizes = dict(SWIN_SIZES.get(name, {"image_size": 224}))
    sizes.update(swin or {})
    missing = {"embed_dim", "depths", "num_heads", "window_size"} - set(sizes)
    if missing:
        raise ConfigError(f"Grounding DINO Swin sizes for {name!r}: missing {sorted(missing)}")
    return sizes


def hf_config(cfg: Mapping[str, Any], text_config: Mapping[str, Any], swin: Mapping[str, Any] | None = None):
    """The transformers ``GroundingDinoConfig`` equivalent to an original config (``text_config``: the BERT
    config as a dict)."""
    from transformers import GroundingDinoConfig, SwinConfig

    for k, v in _SUPPORTED.items():
        if k in cfg and cfg[k] != v:
            raise ConfigError(f"Grounding DINO config: {k}={cfg[k]!r} is not supported (transformers' model "
                              f"implements {k}={v!r})")
    if cfg.get("pe_temperatureH", 20) != cfg.get("pe_temperatureW", 20):
        raise ConfigError("Grounding DINO config: pe_temperatureH != pe_temperatureW is not supported")
    interm = list(cfg.get("return_interm_indices", [1, 2, 3]))
    sizes = swin_sizes(cfg, swin)
    if max(interm) >= len(sizes["depths"]) or cfg.get("num_feature_levels", 4) < len(interm):
        raise ConfigError(f"Grounding DINO config: return_interm_indices {interm} do not fit the backbone")
    out = [i + 1 for i in interm]
    backbone = SwinConfig(embed_dim=sizes["embed_dim"], depths=list(sizes["depths"]), num_heads=list(sizes["num_heads"]),
                          window_size=sizes["window_size"], image_size=sizes.get("image_size", 224), patch_size=4,
                          mlp_ratio=4.0, qkv_bias=True, out_indices=out, out_features=[f"stage{i}" for i in out])
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=dict(text_config),
        num_queries=cfg["num_queries"], encoder_layers=cfg["enc_layers"], decoder_layers=cfg["dec_layers"],
        encoder_ffn_dim=cfg["dim_feedforward"], decoder_ffn_dim=cfg["dim_feedforward"],
        encoder_attention_heads=cfg["nheads"], decoder_attention_heads=cfg["nheads"], d_model=cfg["hidden_dim"],
        num_feature_levels=cfg.get("num_feature_levels", 4), encoder_n_points=cfg.get("enc_n_points", 4),
        decoder_n_points=cfg.get("dec_n_points", 4), two_stage=True,
        two_stage_bbox_embed_share=cfg.get("two_stage_bbox_embed_share", False),
        decoder_bbox_embed_share=cfg.get("dec_pred_bbox_embed_share", True),
        embedding_init_target=cfg.get("embed_init_tgt", True),
        positional_embedding_temperature=cfg.get("pe_temperatureH", 20), max_text_len=cfg.get("max_text_len", 256),
        activation_function=cfg.get("transformer_activation", "relu"), layer_norm_eps=1e-5,
        query_dim=cfg.get("query_dim", 4), dropout=cfg.get("dropout", 0.0),
        text_enhancer_dropout=cfg.get("text_dropout", 0.0), fusion_dropout=cfg.get("fusion_dropout", 0.0),
        fusion_droppath=cfg.get("fusion_droppath", 0.1),
    )


# --- the state dict --------------------------------------------------------------------------------------

@dataclass
class Conversion:
    state_dict: dict[str, torch.Tensor]
    dropped: list[str] = field(default_factory=list)  # original keys intentionally not carried over
    renamed: dict[str, str] = field(default_factory=dict)  # original key -> transformers key
    split: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # fused original key -> q, k, v keys


def _rename(key: str) -> str | None:
    for pattern, template in RENAMES:
        m = re.fullmatch(pattern, key)
        if m:
            if template is None:  # backbone.0.normN (N = interm index) -> hidden_states_norms.stage{N+1}
                return f"model.backbone.conv_encoder.model.hidden_states_norms.stage{int(m.group(1)) + 1}.{m.group(2)}"
            return m.expand(template)
    return None


def strip_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Keys without the ``module.`` prefix that DistributedDataParallel training left (as the original loader)."""
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state_dict.items()}


def convert_state_dict(state_dict: Mapping[str, torch.Tensor]) -> Conversion:
    """Rename / split / drop every key; unknown keys are an error naming them (``module.`` prefixes allowed)."""
    out = Conversion({})
    unknown = []
    for key, value in strip_prefix(state_dict).items():
        if any(re.fullmatch(p, key) for p in DROPPED):
            out.dropped.append(key)
            continue
        for pattern, template, parts in SPLITS:
            m = re.fullmatch(pattern, key)
            if m:
                if value.shape[0] % 3:
                    raise CheckpointError(f"original Grounding DINO key {key}: fused shape {tuple(value.shape)} is "
                                          "not divisible into q, k, v")
                names = tuple(m.expand(template.replace("{}", part)) for part in parts)
                for name, chunk in zip(names, value.chunk(3, dim=0)):
                    out.state_dict[name] = chunk
                out.split[key] = names
                break
        else:
            new = _rename(key)
            if new is None:
                unknown.append(key)
            else:
                out.state_dict[new] = value
                out.renamed[key] = new
    if unknown:
        shown = ", ".join(unknown[:8]) + (f" ... ({len(unknown)} in all)" if len(unknown) > 8 else "")
        raise CheckpointError(f"original Grounding DINO checkpoint: keys with no known mapping: {shown}")
    return out


def check_against_model(conv: Conversion, target: Mapping[str, torch.Tensor], what: str = "checkpoint") -> None:
    """Every target entry filled (but :data:`UNFILLED`), no extra entry, shapes equal; else one clear error."""
    missing = [k for k in target if k not in conv.state_dict and not any(re.fullmatch(p, k) for p in UNFILLED)]
    extra = [k for k in conv.state_dict if k not in target]
    wrong = [f"{k} {tuple(v.shape)} vs model {tuple(target[k].shape)}" for k, v in conv.state_dict.items()
             if k in target and tuple(v.shape) != tuple(target[k].shape)]
    problems = []
    for label, keys in (("missing", missing), ("not in the model", extra), ("shape mismatch", wrong)):
        if keys:
            problems.append(f"{label}: {', '.join(keys[:4])}" + (f" ... ({len(keys)} in all)" if len(keys) > 4 else ""))
    if problems:
        raise CheckpointError(f"original Grounding DINO {what} does not fit its config: " + "; ".join(problems))


def _backbone_check(cfg: Mapping[str, Any], sizes: Mapping[str, Any], sd: Mapping[str, torch.Tensor]) -> None:
    """A config for another backbone is named as such (before the generic shape check)."""
    proj = sd.get("backbone.0.patch_embed.proj.weight")
    table = sd.get("backbone.0.layers.0.blocks.0.attn.relative_position_bias_table")
    if proj is None or table is None:
        return
    found = dict(embed_dim=int(proj.shape[0]), window_size=int(round((table.shape[0] ** 0.5 + 1) / 2)),
                 heads0=int(table.shape[1]),
                 depths=[len({k.split(".")[5] for k in sd if k.startswith(f"backbone.0.layers.{i}.blocks.")})
                         for i in range(len(sizes["depths"]))])
    want = dict(embed_dim=sizes["embed_dim"], window_size=sizes["window_size"], heads0=sizes["num_heads"][0],
                depths=list(sizes["depths"]))
    if found != want:
        raise CheckpointError(
            f"Grounding DINO --gd-config is for another backbone: backbone={cfg['backbone']!r} means Swin embed_dim "
            f"{want['embed_dim']}, depths {want['depths']}, window {want['window_size']}, but the checkpoint has "
            f"embed_dim {found['embed_dim']}, depths {found['depths']}, window {found['window_size']} "
            "(use the config that belongs to this checkpoint)")


# --- files -----------------------------------------------------------------------------------------------

#: what a safe load of an original checkpoint accepts besides tensors (the released files pickle their args)
ALLOWED_CLASSES = ("argparse.Namespace",)
CHECKPOINT_FLAG, TEXT_ENCODER_FLAG = "--gd-checkpoint", "--gd-text-encoder"


def read_checkpoint(path: str | Path, structure_only: bool = False) -> dict[str, torch.Tensor]:
    """The state dict of an original ``.pth`` (``{'model': state_dict}``); clear errors for other files.
    ``structure_only``: the file is read as structure (:mod:`genemi.models.files`, no weight read) and every
    tensor is an empty ``meta`` tensor of its shape (for checks)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"Grounding DINO checkpoint ({CHECKPOINT_FLAG}): file not found: {p}")
    if structure_only:
        from genemi.models.files import as_meta, inspect_torch_file, require_weights_only

        found = inspect_torch_file(p, CHECKPOINT_FLAG)
        obj = as_meta(require_weights_only(found, CHECKPOINT_FLAG, ALLOWED_CLASSES).content)
    else:
        obj = _torch_load(p)
    sd = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or not sd:
        keys = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"Grounding DINO checkpoint ({CHECKPOINT_FLAG}) {p}: not an original Grounding DINO "
                              f"checkpoint (expected {{'model': state_dict}}, found {keys})")
    stripped = strip_prefix(sd)
    if not any(k.startswith("transformer.") for k in stripped) or not any(k.startswith("bert.") for k in stripped):
        raise CheckpointError(f"Grounding DINO checkpoint ({CHECKPOINT_FLAG}) {p}: not an original Grounding DINO "
                              f"checkpoint (its 'model' has no transformer.*/bert.* keys; first keys: "
                              f"{list(stripped)[:3]})")
    return stripped


def _torch_load(p: Path) -> Any:
    import argparse
    import zipfile

    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:
                z.infolist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise CheckpointError(f"Grounding DINO checkpoint {p}: unreadable (truncated download?): {exc}") from exc
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means an unreadable file
        from genemi.models.checkpoints import load_error

        raise load_error(p, exc, f"Grounding DINO checkpoint {p}") from None


def find_text_encoder(cfg: Mapping[str, Any], config_path: str | Path, text_encoder: str | Path | None) -> Path:
    """The local BERT folder: ``text_encoder`` if given, else ``text_encoder_type`` (relative to the config
    file's folder, then the working directory). Needs a ``config.json`` of a BERT model and a vocabulary."""
    from genemi.models.files import TOKENIZER_FILES, require_any

    name = text_encoder or cfg.get("text_encoder_type")
    if not name:
        raise ConfigError(f"Grounding DINO config has no text_encoder_type; pass {TEXT_ENCODER_FLAG} DIR")
    tried = [Path(name).expanduser()] if text_encoder else [Path(config_path).expanduser().parent / name, Path(name)]
    for p in tried:
        if p.is_dir() and (p / "config.json").is_file():
            require_any(p, TOKENIZER_FILES[:2], TEXT_ENCODER_FLAG, "vocabulary")
            return p
    raise ConfigError(f"Grounding DINO text encoder {name!r} (text_encoder_type) is not a local folder with "
                      f"config.json (looked in {', '.join(str(t) for t in tried)}); download it once (e.g. "
                      f"bert-base-uncased: config.json + vocab.txt) and pass {TEXT_ENCODER_FLAG} DIR; genemi never "
                      "downloads models")


def text_encoder_config(folder: Path) -> dict[str, Any]:
    """The text encoder's ``config.json``: a BERT config (the original's text encoder), else one clear line."""
    from genemi.models.files import fail, read_json

    config = read_json(folder / "config.json", TEXT_ENCODER_FLAG)
    if config.get("model_type") != "bert":
        raise fail(TEXT_ENCODER_FLAG, folder, f"holds a {config.get('model_type')!r} model, not 'bert' (the "
                                              "original's text encoder is bert-base-uncased)")
    return config


@dataclass
class OriginalFiles:
    config: dict[str, Any]
    hf_config: Any
    text_encoder: Path
    conversion: Conversion


def convert_original(config_path: str | Path, checkpoint_path: str | Path, text_encoder: str | Path | None = None,
                     swin: Mapping[str, Any] | None = None, structure_only: bool = False) -> OriginalFiles:
    """Parse, read and convert; validate every key and shape against the transformers model (built on the
    ``meta`` device, so this costs no weight memory). ``structure_only`` reads no weight: the checkpoint's
    structure gives ``meta`` tensors (for checks; the conversion then holds ``meta`` tensors)."""
    from transformers import GroundingDinoForObjectDetection

    cfg = parse_original_config(config_path)
    sizes = swin_sizes(cfg, swin)
    folder = find_text_encoder(cfg, config_path, text_encoder)
    hf = hf_config(cfg, text_encoder_config(folder), sizes)
    sd = read_checkpoint(checkpoint_path, structure_only=structure_only)
    _backbone_check(cfg, sizes, sd)
    conv = convert_state_dict(sd)
    with torch.device("meta"):
        target = GroundingDinoForObjectDetection(hf).state_dict()
    check_against_model(conv, target, f"checkpoint ({CHECKPOINT_FLAG}) {checkpoint_path}")
    return OriginalFiles(cfg, hf, folder, conv)


def build_model(files: OriginalFiles):
    """``GroundingDinoForObjectDetection`` in eval mode with the converted weights."""
    from transformers import GroundingDinoForObjectDetection

    from genemi.models.hf import quiet_loading

    with quiet_loading(), torch.random.fork_rng(devices=[]):
        model = GroundingDinoForObjectDetection(files.hf_config)
    result = model.load_state_dict(files.conversion.state_dict, strict=False)
    missing = [k for k in result.missing_keys if not any(re.fullmatch(p, k) for p in UNFILLED)]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"Grounding DINO conversion: missing {missing[:4]}, unexpected "
                              f"{result.unexpected_keys[:4]}")
    return model.eval()


def build_processor(text_encoder: Path, max_text_len: int = 256):
    """transformers ``GroundingDinoProcessor`` (PIL image processor: 800 / 1333, the original's mean/std) with
    the text encoder folder's tokenizer."""
    from transformers import AutoTokenizer, GroundingDinoImageProcessorPil, GroundingDinoProcessor

    try:
        tok = AutoTokenizer.from_pretrained(text_encoder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Grounding DINO text encoder {text_encoder}: cannot load its tokenizer: {exc}") from exc
    image = GroundingDinoImageProcessorPil(size={"shortest_edge": 800, "longest_edge": 1333})
    return GroundingDinoProcessor(image, tok)


# --- the reverse direction (tiny original-layout checkpoints for tests, round-trip checks) ---------------

def _reverse_rule(pattern: str, template: str) -> tuple[str, str]:
    """(transformers regex, original template) for one forward rule."""
    groups = re.findall(r"\((?!\?)[^()]*\)", pattern)
    parts = re.split(r"\\(\d)", template)
    regex, order = "", []
    for i, part in enumerate(parts):
        if i % 2:
            order.append(int(part))
            regex += groups[int(part) - 1]
        else:
            regex += re.escape(part)
    pieces = re.split(r"\((?!\?)[^()]*\)", pattern)
    back = ""
    for i, piece in enumerate(pieces):
        back += piece.replace("\\.", ".")
        if i < len(groups):
            back += "\\" + str(order.index(i + 1) + 1)
    return regex, back


def to_original_state_dict(hf_state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original key layout (without ``module.`` and the dropped extras) of a transformers state dict:
    the inverse of :func:`convert_state_dict` (renames reversed, q/k/v fused again)."""
    renames = [_reverse_rule(p, t) for p, t in RENAMES if t is not None]
    splits = [(*_reverse_rule(p, t.replace("{}", "QKVPART")), parts) for p, t, parts in SPLITS]
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in hf_state_dict.items():
        if any(re.fullmatch(p, key) for p in UNFILLED):
            continue
        m = re.fullmatch(r"model\.backbone\.conv_encoder\.model\.hidden_states_norms\.stage(\d)\.(.+)", key)
        if m:
            out[f"backbone.0.norm{int(m.group(1)) - 1}.{m.group(2)}"] = value
            continue
        for regex, back, parts in splits:
            part = next((p for p in parts if f".{p}." in key), None)
            m = re.fullmatch(regex, key.replace(f".{part}.", ".QKVPART.")) if part else None
            if m:
                fused.setdefault(m.expand(back), {})[part] = value
                break
        else:
            for regex, back in renames:
                m = re.fullmatch(regex, key)
                if m:
                    out[m.expand(back)] = value
                    break
            else:
                raise CheckpointError(f"transformers key {key} has no original counterpart")
    for name, qkv in fused.items():
        parts = next(p for _, _, p in SPLITS if set(p) == set(qkv))
        out[name] = torch.cat([qkv[p] for p in parts], dim=0)
    return out


def parse_swin_sizes(text: str | None) -> dict | None:
    """``--swin-sizes JSON`` (``genemi convert``, ``genemi generate``): a JSON object of Swin sizes for a backbone
    outside the original table, or None; a ConfigError when it is not one."""
    import json

    if not text:
        return None
    try:
        sizes = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--swin-sizes is not JSON: {exc}") from exc
    if not isinstance(sizes, dict):
        raise ConfigError("--swin-sizes must be a JSON object such as {\"embed_dim\": 96, ...}")
    return sizes
