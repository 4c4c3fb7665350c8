"""The BERT pieces of Tag2Text (post-LN, exact GELU), laid out like the original's ``med`` BERT so the
checkpoint keys load as they are: tag encoder, tagging head (cross-attention only) and text decoder."""

from __future__ import annotations

import math

import torch
from torch import nn

from genemi.models.tag2text.config import BertSizes

#: additive mask value of BERT (padding and causal masks)
MASK_VALUE = -10000.0


class BertEmbeddings(nn.Module):
    """Word + absolute position embeddings (no token types), LayerNorm."""

    def __init__(self, s: BertSizes):
        super().__init__()
        self.word_embeddings = nn.Embedding(s.vocab_size, s.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(s.max_positions, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.register_buffer("position_ids", torch.arange(s.max_positions).unsqueeze(0))

    def forward(self, input_ids: torch.Tensor, past_length: int = 0) -> torch.Tensor:
        pos = self.position_ids[:, past_length:past_length + input_ids.shape[1]]
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(pos))


class BertSelfAttention(nn.Module):
    def __init__(self, s: BertSizes, kv_width: int):
        super().__init__()
        self.heads, self.head_dim = s.num_heads, s.hidden_size // s.num_heads
        self.query = nn.Linear(s.hidden_size, s.hidden_size)
        self.key = nn.Linear(kv_width, s.hidden_size)
        self.value = nn.Linear(kv_width, s.hidden_size)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split(self.key(source)), self.split(self.value(source))

    def forward(self, hidden, source=None, mask=None, kv=None, past=None):
        """``source``: what keys/values come from (None: ``hidden``); ``kv``: precomputed keys/values
        (cross-attention cache); ``past``: earlier keys/values to prepend (self-attention cache).
        Returns (context, (keys, values))."""
        q = self.split(self.query(hidden))
        if kv is None:
            kv = self.keys_values(hidden if source is None else source)
        k, v = kv
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        ctx = scores.softmax(dim=-1) @ v
        return ctx.transpose(1, 2).reshape(hidden.shape[0], hidden.shape[1], -1), (k, v)


class BertSelfOutput(nn.Module):
    def __init__(self, s: BertSizes):
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, s: BertSizes, kv_width: int):
        super().__init__()
        self.self = BertSelfAttention(s, kv_width)
        self.output = BertSelfOutput(s)

    def forward(self, hidden, **kw):
        ctx, kv = self.self(hidden, **kw)
        return self.output(ctx, hidden), kv


class BertIntermediate(nn.Module):
    def __init__(self, s: BertSizes):
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.intermediate_size)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, s: BertSizes):
        super().__init__()
        self.dense = nn.Linear(s.intermediate_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertLayer(nn.Module):
    """Self-attention (unless ``self_attention=False``: the tagging head), cross-attention, FFN."""

    def __init__(self, s: BertSizes, self_attention: bool = True):
        super().__init__()
        if self_attention:
            self.attention = BertAttention(s, s.hidden_size)
        self.crossattention = BertAttention(s, s.encoder_width)
        self.intermediate = BertIntermediate(s)
        self.output = BertOutput(s)

    def forward(self, hidden, encoder_hidden=None, self_mask=None, cross_kv=None, past=None, cross_mask=None):
        present = None
        if hasattr(self, "attention"):
            hidden, present = self.attention(hidden, mask=self_mask, past=past)
        hidden, cross = self.crossattention(hidden, source=encoder_hidden, kv=cross_kv, mask=cross_mask)
        return self.output(self.intermediate(hidden), hidden), present, cross


class BertEncoder(nn.Module):
    def __init__(self, s: BertSizes, self_attention: bool = True):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(s, self_attention) for _ in range(s.num_layers)])


def padding_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) 1/0 -> additive (B, 1, 1, T)."""
    return ((1.0 - attention_mask[:, None, None, :].to(dtype)) * MASK_VALUE)


class TagEncoder(nn.Module):
    """BERT over the tag string with cross-attention to the image tokens (``tag_encoder.*``)."""

    def __init__(self, s: BertSizes):
        super().__init__()
        self.embeddings = BertEmbeddings(s)
        self.encoder = BertEncoder(s)

    def forward(self, input_ids, attention_mask, image_embeds):
        h = self.embeddings(input_ids)
        mask = padding_mask(attention_mask, h.dtype)
        for layer in self.encoder.layer:
            h = layer(h, encoder_hidden=image_embeds, self_mask=mask)[0]
        return h


class TaggingHead(nn.Module):
    """Query2Label head (``tagging_head.*``): the label embeddings cross-attend to the image tokens; no
    embeddings, no self-attention."""

    def __init__(self, s: BertSizes):
        super().__init__()
        self.encoder = BertEncoder(s, self_attention=False)

    def forward(self, label_embeds, image_embeds):
        h = label_embeds
        for layer in self.encoder.layer:
            h = layer(h, encoder_hidden=image_embeds)[0]
        return h


class LMPredictionHead(nn.Module):
    def __init__(self, s: BertSizes):
        super().__init__()
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(s.hidden_size, s.hidden_size)
        self.transform.act = nn.GELU()
        self.transform.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.decoder = nn.Linear(s.hidden_size, s.vocab_size)
        self.bias = self.decoder.bias  # tied: cls.predictions.bias is cls.predictions.decoder.bias

    def forward(self, h):
        t = self.transform
        return self.decoder(t.LayerNorm(t.act(t.dense(h))))


class TextDecoder(nn.Module):
    """Causal BERT with cross-attention to the tag encoder's output and a tied LM head (``text_decoder.*``)."""

    def __init__(self, s: BertSizes):
        super().__init__()
        self.bert = nn.Module()
        self.bert.embeddings = BertEmbeddings(s)
        self.bert.encoder = BertEncoder(s)
        self.cls = nn.Module()
        self.cls.predictions = LMPredictionHead(s)
        self.tie_weights()

    def tie_weights(self) -> None:
        """LM head decoder = word embeddings; ``cls.predictions.bias`` = the decoder's bias (again after
        ``to_empty``/``_apply``, which replace shared parameters one module at a time)."""
        head = self.cls.predictions
        head.decoder.weight = self.bert.embeddings.word_embeddings.weight
        head.bias = head.decoder.bias

    def cross_cache(self, encoder_hidden: torch.Tensor) -> list:
        return [layer.crossattention.self.keys_values(encoder_hidden) for layer in self.bert.encoder.layer]

    def forward(self, input_ids, cross_kv: list, past: list | None = None):
        """Logits of every position of ``input_ids`` (appended after ``past``) and the new self-attention cache."""
        past_len = 0 if past is None else past[0][0].shape[2]
        h = self.bert.embeddings(input_ids, past_len)
        t = input_ids.shape[1]
        total = past_len + t
        q_pos = torch.arange(past_len, total, device=h.device)[:, None]
        causal = (torch.arange(total, device=h.device)[None, :] <= q_pos).to(h.dtype)
        mask = ((1.0 - causal) * MASK_VALUE)[None, None]
        presents = []
        for i, layer in enumerate(self.bert.encoder.layer):
            h, present, _ = layer(h, self_mask=mask, cross_kv=cross_kv[i], past=None if past is None else past[i])
            presents.append(present)
        return self.cls.predictions(h), presents
