"""Grounding DINO through transformers (``GroundingDinoForObjectDetection`` from a local HF folder, or from the
original ``.pth`` + ``.py`` config converted on the fly, see :mod:`genemi.models.grounding_dino_original`).

Prompt = the items joined as the original does (``"item one . item two ."``, lower case). Boxes whose best
token score exceeds ``box_threshold`` are kept; each is assigned to the item whose tokens score highest
(only tokens above ``text_threshold`` count), which replaces the original's string matching of phrases;
then class-agnostic NMS. Images of equal size are batched, prompts padded to the model's fixed text
length, so outputs never depend on batch composition. Items with no box are recorded as such.
``--gd-prompt original`` instead reproduces the original GeNeMi grounding (:meth:`GroundingDino._detect_original`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from genemi.errors import ConfigError
from genemi.generation_pipeline.grounding.base import Detections
from genemi.generation_pipeline.grounding.config import GroundConfig
from genemi.generation_pipeline.stage import StageContext, release_to_cpu
from genemi.records import Box


def build_prompt(items: Sequence[str]) -> str:
    return " . ".join(i.lower().strip() for i in items) + " ."


#: file written next to a converted model by `genemi convert groundingdino`: use the original preprocessing
ORIGINAL_MARKER = "genemi_original_grounding_dino.json"


def load_grounding_model(model_dir: str | Path | None = None, gd_config: str | None = None,
                         gd_checkpoint: str | None = None, text_encoder: str | None = None, swin=None,
                         check_only: bool = False):
    """The one entry point for grounding weights: ``(model, processor)`` from a transformers folder, or from
    the original ``.pth`` + ``.py`` config (``--gd-config/--gd-checkpoint``), converted on the fly
    (:mod:`genemi.models.grounding_dino_original`). Original checkpoints (and folders converted from them)
    get :class:`~.original.OriginalProcessor`, the original image preprocessing. ``check_only``: validate
    the files without reading weights (:mod:`genemi.models.files`: the folder's config, weights structure and
    processor files; or the original config, text encoder folder and every checkpoint key and shape) and
    return None."""
    from genemi.generation_pipeline.grounding.original import OriginalProcessor

    if gd_config or gd_checkpoint:
        if model_dir:
            raise ConfigError("give either --gd-model (transformers folder) or --gd-config/--gd-checkpoint, not both")
        if not (gd_config and gd_checkpoint):
            raise ConfigError("an original Grounding DINO needs both --gd-config (.py) and --gd-checkpoint (.pth)")
        from genemi.models import grounding_dino_original as gdo

        files = gdo.convert_original(gd_config, gd_checkpoint, text_encoder, swin, structure_only=check_only)
        if check_only:
            return None
        return gdo.build_model(files), OriginalProcessor(gdo.build_processor(files.text_encoder))
    if text_encoder:
        raise ConfigError("--gd-text-encoder applies only to --gd-config/--gd-checkpoint")
    if not model_dir:
        raise ConfigError("grounding needs --gd-model (a local transformers Grounding DINO folder) or "
                          "--gd-config + --gd-checkpoint (the original files)")
    from genemi.models.hf import check_pretrained, load_pretrained

    if check_only:
        check_pretrained(model_dir, "--gd-model", "grounding-dino", processor=True)
        return None
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    model, processor = load_pretrained(GroundingDinoForObjectDetection, model_dir, "Grounding DINO",
                                       processor_cls=AutoProcessor)
    if (Path(model_dir).expanduser() / ORIGINAL_MARKER).is_file():
        processor = OriginalProcessor(processor)
    return model, processor


class GroundingDino:
    """Batched detection of item phrases (``model``/``processor`` given: use them instead of loading)."""

    name = "grounding_dino"

    def __init__(self, config: GroundConfig, context: StageContext, model=None, processor=None):
        self.config, self.model, self.processor = config, model, processor
        self.device, self.dtype = context.device, context.dtype
        self.box_threshold, self.text_threshold, self.nms_iou = config.box_threshold, config.text_threshold, config.nms_iou

    def check(self) -> None:
        """The weights are all there and fit, read as structure without loading (see
        :func:`load_grounding_model`'s ``check_only``)."""
        c = self.config
        load_grounding_model(c.gd_model, c.gd_config, c.gd_checkpoint, c.gd_text_encoder, self._swin(),
                             check_only=True)

    def _swin(self) -> dict | None:
        from genemi.models.grounding_dino_original import parse_swin_sizes

        return parse_swin_sizes(getattr(self.config, "swin_sizes", None))

    def load(self) -> None:
        if self.model is None:
            c = self.config
            self.model, self.processor = load_grounding_model(c.gd_model, c.gd_config, c.gd_checkpoint,
                                                              c.gd_text_encoder, self._swin())
        self.model.to(self.device, dtype=self.dtype or torch.float32)

    def offload(self) -> None:
        if self.model is not None:
            release_to_cpu(self.model)

    def _spans(self, items: Sequence[str], input_ids: list[int]) -> list[tuple[int, int] | None]:
        """Token positions of each item in the tokenised prompt (None if truncated away)."""
        tok = self.processor.tokenizer
        spans, pos = [], 1  # after [CLS]
        for item in items:
            ids = tok(item.lower(), add_special_tokens=False)["input_ids"]
            end = pos + len(ids)
            spans.append((pos, end) if input_ids[pos:end] == ids else None)
            pos = end + 1  # the "." separator
        return spans

    def detect(self, images: Sequence, items: Sequence[Sequence[str]]) -> list[Detections]:
        """Boxes per image. Images are batched only with images of the same size and prompts are padded to
        the model's fixed text length, so no padding ever differs: results do not depend on which images
        share a batch (shards, resumed runs and batch sizes give identical outputs)."""
        if getattr(self.config, "gd_prompt", "dots") == "original":
            return [self._detect_original(img, its) for img, its in zip(images, items)]
        groups: dict[tuple[int, int], list[int]] = {}
        for k, img in enumerate(images):
            groups.setdefault(img.size, []).append(k)
        results: list = [None] * len(images)
        for idx in groups.values():
            for k, res in zip(idx, self._detect([images[k] for k in idx], [items[k] for k in idx])):
                results[k] = res
        return results

    @torch.no_grad()
    def _detect(self, images: Sequence, items: Sequence[Sequence[str]]) -> list[Detections]:
        from torchvision.ops import box_convert

        prompts = [build_prompt(i) for i in items]
        max_len = getattr(self.model.config, "max_text_len", 256)
        inputs = self.processor(images=list(images), text=prompts, return_tensors="pt", padding="max_length",
                                max_length=max_len, truncation=True).to(self.device)
        if self.dtype is not None:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.model(**inputs)
        probs = out.logits.float().sigmoid().cpu()  # [B, Q, T]
        boxes = out.pred_boxes.float().cpu()  # [B, Q, 4] cxcywh in [0, 1]
        results = []
        for b, (img, its) in enumerate(zip(images, items)):
            spans = self._spans(its, inputs["input_ids"][b].tolist())
            p = probs[b]
            keep = p.max(dim=1).values > self.box_threshold
            xyxy = box_convert(boxes[b], "cxcywh", "xyxy") * torch.tensor([img.width, img.height] * 2)
            found: list[tuple[float, int, torch.Tensor]] = []
            for q in keep.nonzero().flatten().tolist():
                best, best_item = -1.0, None
                for k, span in enumerate(spans):
                    if span is None:
                        continue
                    token_scores = p[q, span[0] : span[1]]
                    if (token_scores > self.text_threshold).any() and token_scores.max().item() > best:
                        best, best_item = token_scores.max().item(), k
                if best_item is not None:
                    found.append((p[q].max().item(), best_item, xyxy[q]))
            results.append(self._finish(found, its))
        return results

    def _finish(self, found: list, its: Sequence[str]) -> Detections:
        """Class-agnostic NMS over ``(score, item index, xyxy pixels)`` -> the boxes and the ungrounded items."""
        from torchvision.ops import nms

        if found:
            scores = torch.tensor([f[0] for f in found])
            kept = nms(torch.stack([f[2] for f in found]), scores, self.nms_iou).tolist()
            found = [found[i] for i in kept]
        dets = [Box(item=its[k], box=[round(float(v), 2) for v in box.clamp(min=0).tolist()], score=round(s, 5))
                for s, k, box in found]
        grounded = {d.item for d in dets}
        return Detections(dets, [i for i in its if i not in grounded])

    def predict(self, image, caption: str):
        """The original ``predict()`` on one image: ``(boxes cxcywh normalised, scores, phrases, query indices)``."""
        from genemi.generation_pipeline.grounding.original import original_predict

        return original_predict(self.model, self.processor, image, caption, self.box_threshold, self.text_threshold,
                                self.device, self.dtype)

    def surviving_phrases(self, image, items: Sequence[str]) -> list[str]:
        """The original's items: ground ``"tag, tag."`` (every tag), class-agnostic NMS at ``--nms-iou`` over
        all boxes, the phrases of the boxes that survive (``[CLS]``/``[SEP]``, dots and outer commas stripped; a
        phrase spanning several tags stays one item, "red square, circle", as in the original; in box order; a
        phrase repeated is kept once, where the original kept it twice and repainted the same first box)."""
        from torchvision.ops import box_convert, nms

        boxes, scores, phrases, _ = self.predict(image, ", ".join(items))
        if not len(phrases):
            return []
        xyxy = box_convert(boxes, "cxcywh", "xyxy") * torch.tensor([image.width, image.height] * 2)
        kept = nms(xyxy.float(), scores.float(), self.nms_iou).tolist()
        out = []
        for q in kept:
            text = phrases[q].replace("[CLS]", " ").replace("[SEP]", " ").replace(".", " ")
            text = " ".join(text.split()).strip(", ")
            if text and text not in out:
                out.append(text)
        return out

    @torch.no_grad()
    def _detect_original(self, image, items: Sequence[str]) -> Detections:
        """``--gd-prompt original``: the items are the phrases of the boxes surviving NMS on ``"tag, tag."``
        (:meth:`surviving_phrases`); each is then detected alone (prompt = the phrase), every box above the
        thresholds kept; NMS. The tags no phrase came from are listed as ungrounded."""
        from torchvision.ops import box_convert

        picked = self.surviving_phrases(image, items)
        found: list[tuple[float, int, torch.Tensor]] = []
        scale = torch.tensor([image.width, image.height] * 2)
        for k, phrase in enumerate(picked):
            boxes, scores, _, _ = self.predict(image, phrase)
            xyxy = box_convert(boxes, "cxcywh", "xyxy") * scale
            found += [(float(s), k, box) for s, box in zip(scores.tolist(), xyxy)]
        dets = self._finish(found, picked).boxes
        grounded = {d.item for d in dets}
        return Detections(dets, [t for t in dict.fromkeys([*items, *picked]) if t not in grounded])
