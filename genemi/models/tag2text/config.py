"""Size configs of Tag2Text (the original's three JSON files) and the real Swin-B / BERT-base sizes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from genemi.errors import CheckpointError


@dataclass(frozen=True)
class SwinSizes:
    image_size: int = 384
    patch_size: int = 4
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 12
    mlp_ratio: float = 4.0

    @property
    def width(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


@dataclass(frozen=True)
class BertSizes:
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    vocab_size: int = 30524
    max_positions: int = 512
    layer_norm_eps: float = 1e-12
    encoder_width: int = 768


@dataclass(frozen=True)
class Tag2TextSizes:
    """Everything that sizes the model. Defaults: the released ``tag2text_swin_14m.pth`` (Swin-B 384 px)."""

    swin: SwinSizes = field(default_factory=SwinSizes)
    text: BertSizes = field(default_factory=BertSizes)  # tag encoder and text decoder (med_config.json)
    tagging: BertSizes = field(default_factory=lambda: BertSizes(num_layers=2, num_heads=4))  # q2l_config.json
    num_classes: int = 3429


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"Tag2Text config {path}: cannot read ({e})") from e


def _bert(d: dict, path: Path) -> BertSizes:
    try:
        return BertSizes(hidden_size=d["hidden_size"], num_layers=d["num_hidden_layers"],
                         num_heads=d["num_attention_heads"], intermediate_size=d["intermediate_size"],
                         vocab_size=d.get("vocab_size", 30524), max_positions=d.get("max_position_embeddings", 512),
                         layer_norm_eps=d.get("layer_norm_eps", 1e-12),
                         encoder_width=d.get("encoder_width", d["hidden_size"]))
    except KeyError as e:
        raise CheckpointError(f"Tag2Text config {path}: missing {e}") from e


def _find(folder: Path, patterns: tuple[str, ...], what: str) -> Path:
    for pattern in patterns:
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    raise CheckpointError(f"Tag2Text configs in {folder}: no {what} file ({' or '.join(patterns)})")


def sizes_from_config_dir(folder: str | Path, num_classes: int = 3429) -> Tag2TextSizes:
    """Sizes from a folder holding the original's three config files (``config_swinB_384.json`` or any
    ``*swin*.json``, ``med_config*.json``, ``q2l_config*.json``), as the original code reads them."""
    folder = Path(folder)
    swin_path = _find(folder, ("config_swinB_384.json", "*swin*.json"), "Swin config")
    med_path = _find(folder, ("med_config.json", "med_config*.json"), "med_config")
    q2l_path = _find(folder, ("q2l_config.json", "q2l_config*.json"), "q2l_config")
    s = _read(swin_path)
    try:
        swin = SwinSizes(image_size=s["image_res"], embed_dim=s["embed_dim"], depths=tuple(s["depths"]),
                         num_heads=tuple(s["num_heads"]), window_size=s["window_size"])
    except KeyError as e:
        raise CheckpointError(f"Tag2Text config {swin_path}: missing {e}") from e
    if s.get("vision_width", swin.width) != swin.width:
        raise CheckpointError(f"Tag2Text config {swin_path}: vision_width {s['vision_width']} != "
                              f"embed_dim * 2**(stages-1) = {swin.width}")
    text = _bert(_read(med_path), med_path)
    tagging = _bert(_read(q2l_path), q2l_path)
    # as in the original: the tag encoder and tagging head attend to the image (width from Swin), the text
    # decoder to the tag encoder (its json encoder_width), and the tagging head shares the tag encoder's vocab
    return Tag2TextSizes(swin=swin, text=text, tagging=replace(tagging, encoder_width=swin.width,
                                                              vocab_size=text.vocab_size), num_classes=num_classes)


def write_config_dir(sizes: Tag2TextSizes, folder: str | Path) -> Path:
    """The three config files in the original's format (what :func:`sizes_from_config_dir` reads)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    s = sizes.swin
    (folder / "config_swinB_384.json").write_text(json.dumps({
        "vision_width": s.width, "image_res": s.image_size, "window_size": s.window_size,
        "embed_dim": s.embed_dim, "depths": list(s.depths), "num_heads": list(s.num_heads)}, indent=1))
    for name, b, width in (("med_config.json", sizes.text, sizes.text.encoder_width),
                           ("q2l_config.json", sizes.tagging, s.width)):
        (folder / name).write_text(json.dumps({
            "architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": b.hidden_size,
            "intermediate_size": b.intermediate_size, "layer_norm_eps": b.layer_norm_eps,
            "max_position_embeddings": b.max_positions, "model_type": "bert",
            "num_attention_heads": b.num_heads, "num_hidden_layers": b.num_layers, "pad_token_id": 0,
            "type_vocab_size": 2, "vocab_size": b.vocab_size, "encoder_width": width,
            "add_cross_attention": True}, indent=1))
    return folder
