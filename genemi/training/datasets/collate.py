"""Batches: loaded groups flattened into image and token tensors (with padded, masked hard negatives)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from genemi.training.datasets.base import LoadedGroup


@dataclass
class Batch:
    """A training batch: ``images [N,3,H,W]``, ``texts [N,L]``, optional ``neg_texts [N,K,L]`` + ``neg_valid [N,K]``."""

    images: torch.Tensor
    texts: torch.Tensor
    neg_texts: torch.Tensor | None
    neg_valid: torch.Tensor | None
    skipped: int

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device, non_blocking: bool = True) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch(move(self.images), move(self.texts), move(self.neg_texts), move(self.neg_valid), self.skipped)


class PairCollator:
    """Flatten loaded groups into a :class:`Batch` and tokenize captions (and ``num_negatives`` negatives)."""

    def __init__(self, tokenizer: Callable[[list[str]], torch.Tensor], num_negatives: int = 0):
        self.tokenizer, self.num_negatives = tokenizer, num_negatives

    def __call__(self, groups: Sequence[LoadedGroup]) -> Batch:
        pairs = [p for g in groups for p in g.pairs]
        skipped = sum(len(g.skipped) for g in groups)
        if not pairs:
            return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), None, None, skipped)
        images = torch.stack([p.image for p in pairs])
        texts = self.tokenizer([p.caption for p in pairs])
        neg_texts = neg_valid = None
        k = self.num_negatives
        if k:
            flat, valid = [], []
            for p in pairs:
                negs = list(p.negatives[:k]) + [""] * (k - len(p.negatives[:k]))
                ok = list(p.neg_valid[:k]) + [False] * (k - len(p.neg_valid[:k]))
                ok = [v and bool(t.strip()) for v, t in zip(ok, negs)]
                flat.extend(negs)
                valid.append(ok)
            neg_texts = self.tokenizer(flat).view(len(pairs), k, -1)
            neg_valid = torch.tensor(valid, dtype=torch.bool)
        return Batch(images, texts, neg_texts, neg_valid, skipped)
