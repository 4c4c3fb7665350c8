"""Tag2Text inference as the original ``inference_tag2text`` did it: preprocessing, class thresholds, deleted
tags, tag order, user tags, beam-search captions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from genemi.errors import CheckpointError, ConfigError
from genemi.models.tag2text.beam import LENGTH_RULES, beam_search
from genemi.models.tag2text.model import Tag2Text
from genemi.models.tag2text.tokenizer import Tag2TextTokenizer

#: the original's default tag threshold (its constructor argument); what GeNeMi's published runs used
DEFAULT_THRESHOLD = 0.68
#: classes with their own threshold in the original, whatever the base threshold: person, man, woman
CLASS_THRESHOLDS = {2701: 0.70, 2828: 0.70, 1167: 0.70}
#: tag-list indices the original deletes from the predictions ("disturb captioning"): quarter, back, two,
#: three, four, five, one
DELETED_TAG_INDEX = (127, 2961, 3351, 3265, 3338, 3355, 3359)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PROMPT = "a picture of "
TAG_MAX_LENGTH = 40
TAG_LIST_NAMES = ("tag2text_ori_tag_list.txt", "tag_list.txt")


def read_tag_list(path: str | Path, num_classes: int | None = None) -> list[str]:
    """One tag per line, in class-index order (the original's ``tag2text_ori_tag_list.txt``)."""
    p = Path(path).expanduser()
    try:
        tags = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise CheckpointError(f"Tag2Text tag list {p}: cannot read ({e})") from e
    if num_classes is not None and len(tags) != num_classes:
        raise CheckpointError(f"Tag2Text tag list {p} has {len(tags)} tags, the checkpoint {num_classes} classes")
    return tags


def class_thresholds(num_classes: int, threshold: float = DEFAULT_THRESHOLD) -> torch.Tensor:
    t = torch.full((num_classes,), float(threshold))
    for i, v in CLASS_THRESHOLDS.items():
        if i < num_classes:
            t[i] = v
    return t


def select_tags(probs: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> list[list[int]]:
    """Per row of (B, classes) probabilities: indices kept by the original rule (prob strictly greater than
    the class threshold, deleted indices removed), in index order."""
    probs = torch.as_tensor(probs).float()
    probs = probs.reshape(-1, probs.shape[-1])
    keep = probs > class_thresholds(probs.shape[-1], threshold).to(probs.device)
    keep[:, [i for i in DELETED_TAG_INDEX if i < probs.shape[-1]]] = False
    return [torch.nonzero(row).flatten().tolist() for row in keep]


def preprocess(images: Sequence[Image.Image], size: int = 384) -> torch.Tensor:
    """PIL bilinear resize to size x size (aspect not kept), /255, ImageNet normalisation -> (B, 3, S, S)."""
    mean = torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(-1, 1, 1)
    out = []
    for img in images:
        img = img.convert("RGB").resize((size, size), Image.BILINEAR)
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3)
        out.append(t.permute(2, 0, 1).float().div(255).sub_(mean).div_(std))
    return torch.stack(out)


@dataclass
class Tag2TextOutput:
    tag_indices: list[int]
    tags: list[str]
    tag_scores: list[float]
    caption: str
    caption_ids: list[int]
    user_tags: str | None = None

    @property
    def tag_string(self) -> str:
        return " | ".join(self.tags)


def check_vocabularies(sizes, num_tags: int, num_tokens: int) -> None:
    """The tag list and the tokenizer (with [DEC] and [ENC]) have the sizes the checkpoint was trained with."""
    if num_tags != sizes.num_classes:
        raise CheckpointError(f"Tag2Text tag list has {num_tags} tags, the model {sizes.num_classes}")
    if num_tokens != sizes.text.vocab_size:
        raise CheckpointError(f"Tag2Text vocab: {num_tokens} tokens with [DEC] and [ENC], the checkpoint "
                              f"{sizes.text.vocab_size} (expected bert-base-uncased's vocab.txt)")


class Tag2TextPredictor:
    """Tags + caption per image with the original settings (3 beams, min 10 / max 50 tokens incl. the prompt)."""

    def __init__(self, model: Tag2Text, tokenizer: Tag2TextTokenizer, tag_list: Sequence[str],
                 threshold: float = DEFAULT_THRESHOLD, image_size: int | None = None, num_beams: int = 3,
                 max_length: int = 50, min_length: int = 10, length_rule: str = "prompt"):
        check_vocabularies(model.sizes, len(tag_list), len(tokenizer))
        if length_rule not in LENGTH_RULES:
            raise ConfigError(f"length_rule must be one of {LENGTH_RULES}")
        self.model, self.tokenizer, self.tag_list = model, tokenizer, list(tag_list)
        self.threshold, self.image_size = threshold, image_size or model.sizes.swin.image_size
        self.num_beams, self.max_length, self.min_length, self.length_rule = num_beams, max_length, min_length, length_rule

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def prompt_ids(self) -> list[int]:
        ids = self.tokenizer.encode(PROMPT)[0]
        return [self.tokenizer.bos_token_id] + ids[1:-1]

    def tag_inputs(self, tag_strings: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = [self.tokenizer.encode(s, max_length=TAG_MAX_LENGTH, pad=True) for s in tag_strings]
        ids = torch.tensor([e[0] for e in enc], device=self.device)
        ids[:, 0] = self.tokenizer.enc_token_id
        return ids, torch.tensor([e[1] for e in enc], device=self.device)

    @torch.no_grad()
    def caption_ids(self, image_embeds: torch.Tensor, tag_strings: Sequence[str]) -> list[list[int]]:
        ids, mask = self.tag_inputs(tag_strings)
        hidden = self.model.encode_tags(ids, mask, image_embeds)
        decoder = self.model.text_decoder
        cross = decoder.cross_cache(hidden.repeat_interleave(self.num_beams, dim=0))
        cache: list = []

        def step(seq, beam_index):
            if beam_index is None:
                logits, past = decoder(seq, cross)
            else:
                past = [(k[beam_index], v[beam_index]) for k, v in cache[0]]
                logits, past = decoder(seq[:, -1:], cross, past)
            cache[:] = [past]
            return logits[:, -1]

        prompt = torch.tensor([self.prompt_ids()] * len(tag_strings), device=self.device)
        out = beam_search(step, prompt, num_beams=self.num_beams, max_length=self.max_length,
                          min_length=self.min_length, eos_token_id=self.tokenizer.sep_token_id,
                          pad_token_id=self.tokenizer.pad_token_id, length_rule=self.length_rule)
        return [o.tolist() for o in out]

    @torch.no_grad()
    def predict_tensor(self, pixel_values: torch.Tensor, user_tags: Sequence[str | None] | None = None
                       ) -> list[Tag2TextOutput]:
        """From preprocessed images; ``user_tags`` (per image, comma-separated, or None) replace the predicted
        tags as the caption's input, as in the original."""
        pixel_values = pixel_values.to(self.device, self.dtype)
        embeds = self.model.image_embeds(pixel_values)
        probs = torch.sigmoid(self.model.tag_logits(embeds).float())
        kept = select_tags(probs, self.threshold)
        users = list(user_tags) if user_tags is not None else [None] * len(kept)
        users = [u.replace(",", " | ") if u is not None else None for u in users]
        strings = [u if u is not None else " | ".join(self.tag_list[i] for i in idx) for u, idx in zip(users, kept)]
        ids = self.caption_ids(embeds, strings)
        out = []
        for b, (idx, seq) in enumerate(zip(kept, ids)):
            text = self.tokenizer.decode(seq)[len(PROMPT):]
            out.append(Tag2TextOutput(idx, [self.tag_list[i] for i in idx], [round(float(probs[b, i]), 4) for i in idx],
                                      text, seq, users[b]))
        return out

    def predict(self, images: Sequence[Image.Image], user_tags: Sequence[str | None] | None = None) -> list[Tag2TextOutput]:
        return self.predict_tensor(preprocess(images, self.image_size), user_tags)
