"""Tag2Text (Swin-B image encoder, Query2Label tagging head, tag encoder, caption decoder), sized by
:class:`Tag2TextSizes`; parameter names follow the original checkpoint (``tagging_head`` is the newer name of
``vision_multi``)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from genemi.errors import ConfigError
from genemi.models.tag2text.bert import TagEncoder, TaggingHead, TextDecoder
from genemi.models.tag2text.config import Tag2TextSizes
from genemi.models.tag2text.swin import SwinEncoder


class GroupWiseLinear(nn.Module):
    """One linear classifier per class: ``logit[c] = W[0, c] . h[c] + b[0, c]``."""

    def __init__(self, num_classes: int, hidden: int):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(1, num_classes, hidden))
        self.b = nn.Parameter(torch.zeros(1, num_classes))

    def forward(self, x):
        return (self.W * x).sum(-1) + self.b


#: sub-modules of tagging-head layer i that are the tag encoder's layer i (the original ties them)
TIED_TAGGING_PARTS = ("crossattention.self.query", "crossattention.self.key", "crossattention.self.value",
                      "crossattention.output", "intermediate", "output")


class Tag2Text(nn.Module):
    def __init__(self, sizes: Tag2TextSizes = Tag2TextSizes()):
        super().__init__()
        if sizes.tagging.hidden_size != sizes.text.hidden_size:
            raise ConfigError("Tag2Text: the tagging head and the tag encoder must have the same hidden size "
                              f"(they share layers), got {sizes.tagging.hidden_size} and {sizes.text.hidden_size}")
        self.sizes = sizes
        width = sizes.swin.width
        self.visual_encoder = SwinEncoder(sizes.swin)
        self.tag_encoder = TagEncoder(replace(sizes.text, encoder_width=width))
        self.text_decoder = TextDecoder(sizes.text)
        self.tagging_head = TaggingHead(replace(sizes.tagging, encoder_width=width))
        self.label_embed = nn.Embedding(sizes.num_classes, sizes.tagging.hidden_size)
        self.fc = GroupWiseLinear(sizes.num_classes, sizes.tagging.hidden_size)
        for head_layer, enc_layer in zip(self.tagging_head.encoder.layer, self.tag_encoder.encoder.layer):
            for part in TIED_TAGGING_PARTS:
                parent, _, leaf = part.rpartition(".")
                holder = head_layer.get_submodule(parent) if parent else head_layer
                setattr(holder, leaf, enc_layer.get_submodule(part))

    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised images -> (B, 1 + tokens, width)."""
        return self.visual_encoder(images)

    def tag_logits(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(B, classes) logits before the sigmoid."""
        labels = self.label_embed.weight.unsqueeze(0).expand(image_embeds.shape[0], -1, -1)
        return self.fc(self.tagging_head(labels, image_embeds))

    def encode_tags(self, input_ids, attention_mask, image_embeds) -> torch.Tensor:
        return self.tag_encoder(input_ids, attention_mask, image_embeds)
