"""Tiny Grounding DINO (HF folder), SAM (Meta's original ``.pth`` state dict) and BLIP captioning (HF folder)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from genemi.models.tiny.building import save_folder, seeded


def _words() -> list[str]:
    from genemi.text import vocabulary as vocab

    words = list(vocab.all_nouns()) + [a for c in vocab.ADJECTIVE_CATEGORIES.values() for a in c]
    words += ["a", "an", "the", "of", "on", "in", "with", "and", "is", "picture", "photo", "square", "circle",
              "triangle", "shape", "left", "right", "next", "to"]
    return list(dict.fromkeys(words))


def bert_vocab() -> dict[str, int]:
    """A WordPiece vocabulary with bert-base-uncased's special ids ([CLS] 101, [SEP] 102, '.' 1012, '?' 1029),
    which transformers' Grounding DINO hard-codes."""
    fixed = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}
    tokens = [fixed.get(i, f"[unused{i}]") for i in range(1030)]
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    extra = _words() + list(letters) + [f"##{c}" for c in letters] + [",", "!", "'", "-"]
    tokens += [t for t in dict.fromkeys(extra) if t not in tokens]  # unique: ids must not collide
    return {t: i for i, t in enumerate(tokens)}


def save_tiny_grounding_dino(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """``GroundingDinoForObjectDetection`` + processor, like a downloaded ``IDEA-Research/grounding-dino-tiny``."""
    from transformers import (BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor, SwinConfig)

    out = Path(out_dir) / "grounding_dino"
    backbone = SwinConfig(window_size=7, embed_dim=8, depths=[1] * 4, num_heads=[1] * 4, image_size=98,
                          out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4])
    cfg = GroundingDinoConfig(
        backbone_config=backbone,
        text_config={"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "intermediate_size": 8, "max_position_embeddings": 32, "vocab_size": len(bert_vocab())},
        d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10, encoder_n_points=2, decoder_n_points=2,
        max_text_len=32, num_feature_levels=4,
    )
    with seeded(seed):
        model = GroundingDinoForObjectDetection(cfg).eval()
    tok = BertTokenizer(vocab=bert_vocab(), do_lower_case=True, model_max_length=32)
    proc = GroundingDinoProcessor(GroundingDinoImageProcessor(size={"shortest_edge": 98, "longest_edge": 98}), tok)
    save_folder(out, model, proc)
    return {"grounding_dino": out}


def tiny_sam_modules():
    """A tiny ``segment_anything.Sam`` (64 px input, 2 encoder blocks) with the real module layout."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    return Sam(
        image_encoder=ImageEncoderViT(depth=2, embed_dim=32, img_size=64, mlp_ratio=2, num_heads=2, patch_size=8,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), qkv_bias=True,
                                      use_rel_pos=True, global_attn_indexes=[1], window_size=4, out_chans=32),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(8, 8), input_image_size=(64, 64),
                                     mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=32, iou_head_depth=3, iou_head_hidden_dim=32,
                                 transformer=TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=8)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()


def save_tiny_sam(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Meta's checkpoint format: ``torch.save(sam.state_dict())`` (like ``sam_vit_b_01ec64.pth``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with seeded(seed):
        sam = tiny_sam_modules()
    path = out / "sam_tiny.pth"
    torch.save(sam.state_dict(), path)
    return {"sam": path}


def save_tiny_blip(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """``BlipForConditionalGeneration`` + processor, like ``Salesforce/blip-image-captioning-base``."""
    from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,
                              BlipProcessor)

    out = Path(out_dir) / "blip"
    vocab = bert_vocab()
    vocab["[DEC]"] = len(vocab)
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, bos_token="[DEC]", model_max_length=32)
    cfg = BlipConfig(
        text_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
                     "vocab_size": len(vocab), "bos_token_id": vocab["[DEC]"], "sep_token_id": vocab["[SEP]"],
                     "eos_token_id": vocab["[SEP]"], "pad_token_id": vocab["[PAD]"], "max_position_embeddings": 32,
                     "encoder_hidden_size": 32},
        vision_config={"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 37,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    with seeded(seed):
        model = BlipForConditionalGeneration(cfg).eval()
    proc = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tok)
    save_folder(out, model, proc)
    return {"blip": out}


def save_tiny_grounding_dino_original(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """A tiny Grounding DINO in the ORIGINAL release layout: ``{'model': state_dict}`` with ``module.`` prefixes
    and the extra keys released files carry, a ``.py`` config (original fields; Swin sizes in the genemi
    ``swin_sizes`` extension) and a ``text_encoder_type`` BERT folder next to it (config + vocab). Made by
    inverting the converter's mapping on a random transformers model, so loading it exercises the converter.
    (d_model 32: transformers accepts it; the original code hard-codes 256.)"""
    from transformers import BertConfig, BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection, SwinConfig

    from genemi.models.grounding_dino_original import to_original_state_dict

    out = Path(out_dir) / "grounding_dino_original"
    bert = out / "tiny_bert"
    vocab = bert_vocab()
    text = BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=8,
                      max_position_embeddings=32, vocab_size=len(vocab))
    swin = dict(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=7)
    cfg = GroundingDinoConfig(
        backbone_config=SwinConfig(**swin, image_size=224, out_features=["stage2", "stage3", "stage4"],
                                   out_indices=[2, 3, 4]),
        text_config=text.to_dict(), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32, num_feature_levels=4,
    )
    with seeded(seed):
        model = GroundingDinoForObjectDetection(cfg).eval()
        sd = to_original_state_dict(model.state_dict())
        sd["label_enc.weight"] = torch.randn(11, 32)
        sd["bert.pooler.dense.weight"], sd["bert.pooler.dense.bias"] = torch.randn(8, 8), torch.zeros(8)
    sd["bert.embeddings.position_ids"] = torch.arange(32)[None]
    for name, buf in model.named_buffers():
        m = name.split("encoder.layers.")[-1].split(".")
        if name.endswith("relative_position_index"):
            w = swin["window_size"] ** 2
            sd[f"backbone.0.layers.{m[0]}.blocks.{m[2]}.attn.relative_position_index"] = buf.reshape(w, w).clone()
    bert.mkdir(parents=True, exist_ok=True)
    text.save_pretrained(bert)
    BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=32).save_pretrained(bert)
    ckpt = out / "groundingdino_tiny.pth"
    torch.save({"model": {"module." + k: v.contiguous() for k, v in sd.items()}}, ckpt)
    config = out / "GroundingDINO_tiny_cfg.py"
    config.write_text("\n".join([
        "# tiny random Grounding DINO in the original config format (genemi test factory)",
        'modelname = "groundingdino"', 'backbone = "swin_T_224_1k"', f"swin_sizes = {swin!r}",
        'position_embedding = "sine"', "pe_temperatureH = 20", "pe_temperatureW = 20",
        "return_interm_indices = [1, 2, 3]", "enc_layers = 2", "dec_layers = 2", "pre_norm = False",
        "dim_feedforward = 32", "hidden_dim = 32", "dropout = 0.0", "nheads = 4", "num_queries = 10",
        "query_dim = 4", "num_patterns = 0", "num_feature_levels = 4", "enc_n_points = 2", "dec_n_points = 2",
        'two_stage_type = "standard"', "two_stage_bbox_embed_share = False", "two_stage_class_embed_share = False",
        'transformer_activation = "relu"', "dec_pred_bbox_embed_share = True", "embed_init_tgt = True",
        "dn_labelbook_size = 10", "max_text_len = 32", 'text_encoder_type = "tiny_bert"', "use_text_enhancer = True",
        "use_fusion_layer = True", "use_text_cross_attention = True", "text_dropout = 0.0", "fusion_dropout = 0.0",
        "fusion_droppath = 0.1", "sub_sentence_present = True", ""]))
    return {"gd_config": config, "gd_checkpoint": ckpt, "gd_text_encoder": bert}
