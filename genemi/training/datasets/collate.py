"""Batches: loaded groups flattened into image and token tensors (with padded, masked hard negatives and,
for losses that use them, the negative images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from genemi.training.datasets.base import LoadedGroup


@dataclass
class Batch:
    """A training batch: ``images [N,3,H,W]``, ``texts [N,L]``, optional ``neg_texts [N,K,L]`` + ``neg_valid [N,K]``,
    and optional negative images: ``neg_image_valid [N]`` bool says which rows have one, ``neg_images [M,3,H,W]``
    holds those ``M`` in row order (the picture of ``neg_texts[i, 0]`` for each such row ``i``; rows without one
    take no room and no encoder time)."""

    images: torch.Tensor
    texts: torch.Tensor
    neg_texts: torch.Tensor | None
    neg_valid: torch.Tensor | None
    skipped: int
    neg_images: torch.Tensor | None = None
    neg_image_valid: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device, non_blocking: bool = True) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return Batch(move(self.images), move(self.texts), move(self.neg_texts), move(self.neg_valid), self.skipped,
                     move(self.neg_images), move(self.neg_image_valid))  # fmt: skip


class PairCollator:
    """Flatten loaded groups into a :class:`Batch` and tokenize captions (and ``num_negatives`` negatives); with
    ``negative_images``, stack the pairs' negative images too."""

    def __init__(self, tokenizer: Callable[[list[str]], torch.Tensor], num_negatives: int = 0,
                 negative_images: bool = False):  # fmt: skip
        self.tokenizer, self.num_negatives, self.negative_images = tokenizer, num_negatives, negative_images

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
        neg_images = neg_image_valid = None
        if self.negative_images:
            present = [p.neg_image for p in pairs if p.neg_image is not None]
            neg_image_valid = torch.tensor([p.neg_image is not None for p in pairs], dtype=torch.bool)
            neg_images = torch.stack(present) if present else images.new_empty((0, *images.shape[1:]))
        return Batch(images, texts, neg_texts, neg_valid, skipped, neg_images, neg_image_valid)
