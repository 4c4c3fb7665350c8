"""Tiny Tag2Text in the original on-disk layout (``{'model': state_dict}`` with the buffers and both names of
tied weights), with its size configs, a tag list and a WordPiece vocab, all generated here."""

from __future__ import annotations

from pathlib import Path

import torch

from genemi.models.tiny.building import seeded


def tiny_tag2text_sizes(num_classes: int, vocab_size: int):
    from genemi.models.tag2text import BertSizes, SwinSizes, Tag2TextSizes

    text = BertSizes(hidden_size=16, num_layers=2, num_heads=4, intermediate_size=32, vocab_size=vocab_size,
                     max_positions=64, encoder_width=16)
    return Tag2TextSizes(swin=SwinSizes(image_size=64, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4),
                                        window_size=4),
                         text=text, tagging=BertSizes(hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                                                      vocab_size=vocab_size, max_positions=64, encoder_width=32),
                         num_classes=num_classes)


def save_tiny_tag2text(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """``tag2text/tag2text_tiny.pth`` + ``configs/`` (the original's three config files) + ``tag_list.txt`` +
    ``vocab.txt`` (bert-base-uncased's special ids). 64 px images, 40 tags; the first three tags are biased to
    pass the 0.68 threshold on any image."""
    from genemi.models.tag2text import Tag2Text, write_config_dir
    from genemi.models.tiny.detection import _words, bert_vocab

    out = Path(out_dir) / "tag2text"
    out.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab()
    tokens = sorted(vocab, key=vocab.get)
    (out / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    tags = [w for w in _words() if w.isalpha()][:40]
    (out / "tag_list.txt").write_text("\n".join(tags), encoding="utf-8")
    sizes = tiny_tag2text_sizes(len(tags), len(tokens) + 2)  # + [DEC], [ENC]
    with seeded(seed):
        model = Tag2Text(sizes).eval()
        with torch.no_grad():
            model.fc.b.normal_(-3.0, 1.0)
            model.fc.b[0, :3] = 6.0
            for p in model.visual_encoder.parameters():
                if p.dim() > 1:
                    p.mul_(2.0)
    torch.save({"model": model.state_dict()}, out / "tag2text_tiny.pth")
    write_config_dir(sizes, out / "configs")
    return {"tag2text": out, "checkpoint": out / "tag2text_tiny.pth", "configs": out / "configs",
            "tag_list": out / "tag_list.txt", "vocab": out / "vocab.txt"}
