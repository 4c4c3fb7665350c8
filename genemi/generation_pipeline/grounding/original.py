"""What the original Grounding DINO code does around the model, reproduced exactly.

* :func:`original_size` / :func:`original_pixel_values`: ``load_image``'s resize (shorter side 800, longer side
  at most 1333 with the original rounding: ``round(1333 * short / long)``, then the other side truncated),
  PIL bilinear, ``/255``, ImageNet mean/std; no padding for a batch of one. transformers' processors round
  differently when the 1333 cap applies, which moves logits by more than 1 on such images.
* :func:`preprocess_caption`: lower-case, strip, trailing ``"."``.
* :func:`phrases_from_posmap`: the original phrase of a box: every token above the text threshold (``[CLS]`` and
  ``[SEP]`` included), decoded together, ``"."`` removed.
* :class:`OriginalProcessor`: a drop-in for ``GroundingDinoProcessor`` (same call, same ``tokenizer``) that uses
  the original image preprocessing; :func:`original_predict`: ``groundingdino.util.inference.predict``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SHORT, LONG_MAX = 800, 1333


def original_size(width: int, height: int, size: int = SHORT, max_size: int | None = LONG_MAX) -> tuple[int, int]:
    """``(new_width, new_height)`` as the original resize computes it."""
    short, long_ = float(min(width, height)), float(max(width, height))
    if max_size is not None and long_ / short * size > max_size:
        size = int(round(max_size * short / long_))
    if (width <= height and width == size) or (height <= width and height == size):
        return width, height
    if width < height:
        return size, int(size * height / width)
    return int(size * width / height), size


def original_pixel_values(image) -> torch.Tensor:
    """``[3, H, W]`` float32 exactly as the original ``load_image`` makes it from a PIL image."""
    from PIL import Image

    image = image.convert("RGB")
    w, h = original_size(*image.size)
    if (w, h) != image.size:
        image = image.resize((w, h), Image.BILINEAR)
    t = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    return t.sub(torch.tensor(MEAN)[:, None, None]).div(torch.tensor(STD)[:, None, None])


def preprocess_caption(caption: str) -> str:
    result = caption.lower().strip()
    return result if result.endswith(".") else result + "."


def phrases_from_posmap(posmap: torch.Tensor, input_ids: Sequence[int], tokenizer) -> str:
    """The tokens where ``posmap`` is true, decoded as one string, dots removed (the original's phrase)."""
    ids = [int(input_ids[i]) for i in posmap.nonzero(as_tuple=True)[0].tolist() if i < len(input_ids)]
    return tokenizer.decode(ids, clean_up_tokenization_spaces=True).replace(".", "")


class OriginalProcessor:
    """``GroundingDinoProcessor``'s call with the original image preprocessing (``tokenizer`` shared)."""

    def __init__(self, processor):
        self.processor = processor.processor if isinstance(processor, OriginalProcessor) else processor
        self.tokenizer = processor.tokenizer

    def __call__(self, images=None, text=None, return_tensors="pt", **text_kwargs):
        from transformers import BatchFeature

        data = {}
        if images is not None:
            images = list(images) if isinstance(images, (list, tuple)) else [images]
            pix = [original_pixel_values(im) for im in images]
            if len({tuple(p.shape) for p in pix}) != 1:
                raise ValueError("OriginalProcessor batches only images of one size (the original pads nothing)")
            data["pixel_values"] = torch.stack(pix)
            data["pixel_mask"] = torch.ones(len(pix), *pix[0].shape[1:], dtype=torch.long)
        if text is not None:
            data.update(self.tokenizer(text, return_tensors="pt", **text_kwargs))
        return BatchFeature(data, tensor_type=None)


@torch.no_grad()
def original_predict(model, processor, image, caption: str, box_threshold: float, text_threshold: float,
                     device: str = "cpu", dtype=None):
    """``groundingdino.util.inference.predict``: ``(boxes cxcywh normalised [N, 4], scores [N], phrases,
    query indices)`` for one image and one caption (the caption goes through :func:`preprocess_caption`)."""
    tokenizer = processor.tokenizer
    caption = preprocess_caption(caption)
    inputs = OriginalProcessor(processor)(images=[image], text=[caption]).to(device)
    if dtype is not None:
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    out = model(**inputs)
    probs = out.logits.float().sigmoid().cpu()[0]
    boxes = out.pred_boxes.float().cpu()[0]
    mask = probs.max(dim=1).values > box_threshold
    queries = mask.nonzero(as_tuple=True)[0].tolist()
    ids = inputs["input_ids"][0].tolist()
    phrases = [phrases_from_posmap(probs[q] > text_threshold, ids, tokenizer) for q in queries]
    return boxes[mask], probs[mask].max(dim=1).values, phrases, queries
