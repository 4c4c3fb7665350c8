"""Tiny language models saved as Hugging Face folders: a RoBERTa masked LM (the distilroberta-base
layout CE-CLIP fills masks with), a GPT-2 causal LM and a Llama chat LM with a chat template, sharing one
byte-level BPE tokenizer trained offline on genemi's vocabulary."""

from __future__ import annotations

from pathlib import Path

from genemi.models.tiny.building import save_folder, seeded

_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_SIZE = {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64, "positions": 64}


def corpus() -> list[str]:
    from genemi.text import vocabulary as vocab

    words = list(vocab.all_nouns()) + [a for c in vocab.ADJECTIVE_CATEGORIES.values() for a in c]
    words += [v for g in vocab.VERB_GROUPS.values() for v in g] + [r for pair in vocab.RELATION_OPPOSITES for r in pair]
    return [f"a {w} on the table next to the man" for w in words] + [" ".join(words)]


def _bpe():
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer(add_prefix_space=True)
    bpe.train_from_iterator(corpus(), vocab_size=1200, min_frequency=1, special_tokens=_SPECIALS, show_progress=False)
    return bpe._tokenizer


def save_tiny_masked_lm(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """A tiny ``RobertaForMaskedLM`` + tokenizer folder (``AutoModelForMaskedLM`` loads it)."""
    from tokenizers import AddedToken
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaTokenizerFast

    out = Path(out_dir) / "masked_lm"
    tok = RobertaTokenizerFast(
        tokenizer_object=_bpe(), bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token=AddedToken("<mask>", lstrip=True), add_prefix_space=True,
    )
    cfg = RobertaConfig(
        vocab_size=len(tok), hidden_size=_SIZE["hidden"], num_hidden_layers=_SIZE["layers"],
        num_attention_heads=_SIZE["heads"], intermediate_size=_SIZE["intermediate"],
        max_position_embeddings=_SIZE["positions"] + 2, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, type_vocab_size=1,
    )
    with seeded(seed):
        model = RobertaForMaskedLM(cfg)
    save_folder(out, model, tok)
    return {"masked_lm": out}


def save_tiny_causal_lm(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """A tiny ``GPT2LMHeadModel`` + tokenizer folder (``AutoModelForCausalLM`` loads it)."""
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    out = Path(out_dir) / "causal_lm"
    tok = GPT2TokenizerFast(tokenizer_object=_bpe(), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                            pad_token="<pad>", add_prefix_space=True)
    cfg = GPT2Config(
        vocab_size=len(tok), n_embd=_SIZE["hidden"], n_layer=_SIZE["layers"], n_head=_SIZE["heads"],
        n_positions=_SIZE["positions"], bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with seeded(seed):
        model = GPT2LMHeadModel(cfg)
    save_folder(out, model, tok)
    return {"causal_lm": out}


#: ChatML, the layout Qwen2 and many other instruction-tuned models use
_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save_tiny_chat_lm(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """A tiny ``LlamaForCausalLM`` (rotary positions, grouped-query attention) whose tokenizer carries a
    ChatML chat template and ends answers with ``<|im_end|>`` (``AutoModelForCausalLM`` loads it). Untied,
    widely initialised weights make its (garbage) greedy answers depend on the prompt."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir) / "chat_lm"
    tok = PreTrainedTokenizerFast(tokenizer_object=_bpe(), bos_token="<s>", eos_token="<|im_end|>",
                                  unk_token="<unk>", pad_token="<pad>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = _CHAT_TEMPLATE
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=_SIZE["hidden"], num_hidden_layers=_SIZE["layers"],
        num_attention_heads=_SIZE["heads"], num_key_value_heads=1, intermediate_size=_SIZE["intermediate"],
        max_position_embeddings=8192, tie_word_embeddings=False, initializer_range=0.2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    with seeded(seed):
        model = LlamaForCausalLM(cfg)
    save_folder(out, model, tok)
    return {"chat_lm": out}
