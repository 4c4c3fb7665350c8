"""Tiny BLIP image-text matching model (HF folder), like a downloaded ``Salesforce/blip-itm-large-coco``."""

from __future__ import annotations

from pathlib import Path

from genemi.models.tiny.building import save_folder, seeded
from genemi.models.tiny.detection import bert_vocab

#: the special token BLIP/LAVIS put first when the text encoder attends to the image (image-grounded text)
ENC_TOKEN = "[ENC]"


def save_tiny_blip_itm(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """``BlipForImageTextRetrieval`` + ``BlipProcessor`` (hidden 32, 2 layers, 32 px images), saved with
    ``save_pretrained``. The vocabulary is bert-base-uncased's layout plus ``[DEC]`` and ``[ENC]``, as BLIP's.
    Weights are drawn 10x wider than transformers' default (std 0.2), so that scores visibly depend on the
    image and the caption (with std 0.02 a tiny random model gives nearly the same logit to everything)."""
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor, BlipProcessor

    out = Path(out_dir) / "blip_itm"
    vocab = bert_vocab()
    vocab["[DEC]"] = len(vocab)
    vocab[ENC_TOKEN] = len(vocab)
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, bos_token="[DEC]", model_max_length=512,
                        additional_special_tokens=[ENC_TOKEN])
    cfg = BlipConfig(
        text_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
                     "vocab_size": len(vocab), "bos_token_id": vocab["[DEC]"], "sep_token_id": vocab["[SEP]"],
                     "eos_token_id": vocab["[SEP]"], "pad_token_id": vocab["[PAD]"], "max_position_embeddings": 40,
                     "encoder_hidden_size": 32, "initializer_range": 0.2},
        vision_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
                       "image_size": 32, "patch_size": 8, "initializer_range": 0.2},
        projection_dim=16, image_text_hidden_size=16, initializer_range=0.2,
    )
    with seeded(seed):
        model = BlipForImageTextRetrieval(cfg).eval()
    proc = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok)
    save_folder(out, model, proc)
    return {"blip_itm": out}
