"""Fluency scores from a local language model, to drop negatives much less fluent than their caption.

SugarCrepe showed that negatives which read worse than the positive let a blind text model pick the
positive; a guard keeps only negatives whose mean per-token log-likelihood is within ``margin`` nats of
the caption's. Two scorers: a causal LM (exact log-likelihood) and a masked LM (pseudo-log-likelihood:
each token masked in turn, Salazar et al. 2020).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import torch

from genemi.models.hf import load_causal_lm, load_masked_lm, model_kind


class FluencyScorer(Protocol):
    def score(self, texts: Sequence[str]) -> list[float]:
        """Mean log-likelihood per token, in nats (higher is more fluent)."""


class CausalLMFluency:
    """Mean of log p(x_t | x_<t) over the text's tokens (a BOS token is prepended when the tokenizer has one)."""

    def __init__(self, path: str | Path, device: str = "cpu", batch_size: int = 64):
        self.model, self.tokenizer = load_causal_lm(path, device)
        self.device, self.batch_size = device, batch_size

    @torch.no_grad()
    def score(self, texts: Sequence[str]) -> list[float]:
        tok = self.tokenizer
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        out: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            ids = [bos + tok(t, add_special_tokens=False)["input_ids"] for t in texts[i : i + self.batch_size]]
            width = max(len(x) for x in ids)
            input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for r, x in enumerate(ids):
                input_ids[r, : len(x)] = torch.tensor(x)
                mask[r, : len(x)] = 1
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            logp = self.model(input_ids=input_ids, attention_mask=mask).logits.float().log_softmax(-1)
            token_logp = logp[:, :-1].gather(-1, input_ids[:, 1:, None])[..., 0] * mask[:, 1:]
            counts = mask[:, 1:].sum(1).clamp(min=1)
            out += (token_logp.sum(1) / counts).tolist()
        return out


class MaskedLMFluency:
    """Pseudo-log-likelihood: the mean over tokens of log p(x_t | all other tokens), x_t masked."""

    def __init__(self, path: str | Path, device: str = "cpu", batch_size: int = 64):
        self.model, self.tokenizer = load_masked_lm(path, device)
        self.device, self.batch_size = device, batch_size

    @torch.no_grad()
    def score(self, texts: Sequence[str]) -> list[float]:
        tok = self.tokenizer
        enc = [tok(t, truncation=True)["input_ids"] for t in texts]
        special = set(tok.all_special_ids)
        # one row per (text, position): the text with that position masked
        rows = [(k, pos) for k, ids in enumerate(enc) for pos, t in enumerate(ids) if t not in special]
        total = [0.0] * len(texts)
        count = [0] * len(texts)
        for i in range(0, len(rows), self.batch_size):
            chunk = rows[i : i + self.batch_size]
            width = max(len(enc[k]) for k, _ in chunk)
            input_ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (k, pos) in enumerate(chunk):
                ids = enc[k]
                input_ids[r, : len(ids)] = torch.tensor(ids)
                mask[r, : len(ids)] = 1
                input_ids[r, pos] = tok.mask_token_id
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logp = logits.float().log_softmax(-1)
            for r, (k, pos) in enumerate(chunk):
                total[k] += float(logp[r, pos, enc[k][pos]])
                count[k] += 1
        return [t / c if c else 0.0 for t, c in zip(total, count)]


def load_fluency_scorer(path: str | Path, device: str = "cpu", batch_size: int = 64) -> FluencyScorer:
    """A causal or masked LM scorer, chosen from the folder's ``config.json``."""
    cls = MaskedLMFluency if model_kind(path) == "masked" else CausalLMFluency
    return cls(path, device, batch_size)
