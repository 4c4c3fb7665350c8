"""Grounding DINO through transformers (``GroundingDinoForObjectDetection`` from a local HF folder).

Prompt = the items joined as the original does (``"item one . item two ."``, lower case). Boxes whose best
token score exceeds ``box_threshold`` are kept; each is assigned to the item whose tokens score highest
(only tokens above ``text_threshold`` count), which replaces the original's string matching of phrases;
then class-agnostic NMS. Images of equal size are batched, prompts padded to the model's fixed text
length, so outputs never depend on batch composition. Items with no box are recorded as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from genemi.errors import BackendUnavailable, ConfigError
from genemi.generation_pipeline.grounding.config import GroundConfig
from genemi.generation_pipeline.stage import StageContext, release_to_cpu
from genemi.records import Box


def build_prompt(items: Sequence[str]) -> str:
    return " . ".join(i.lower().strip() for i in items) + " ."


def load_grounding_model(model_dir: str | Path | None = None, gd_config: str | None = None,
                         gd_checkpoint: str | None = None):
    """The one entry point for grounding weights: a transformers folder now; the original ``.pth`` +
    ``.py`` config (``--gd-config/--gd-checkpoint``) plugs in here later."""
    if gd_config or gd_checkpoint:
        if model_dir:
            raise ConfigError("give either --gd-model (transformers folder) or --gd-config/--gd-checkpoint, not both")
        raise BackendUnavailable(
            "original Grounding DINO checkpoints (--gd-config/--gd-checkpoint) are not supported yet; pass a "
            "transformers folder such as a downloaded IDEA-Research/grounding-dino-tiny with --gd-model"
        )
    if not model_dir:
        raise ConfigError("grounding needs --gd-model (a local transformers Grounding DINO folder)")
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    from genemi.models.hf import load_pretrained

    return load_pretrained(GroundingDinoForObjectDetection, model_dir, "Grounding DINO", processor_cls=AutoProcessor)


class GroundingDino:
    """Batched detection of item phrases (``model``/``processor`` given: use them instead of loading)."""

    name = "grounding_dino"

    def __init__(self, config: GroundConfig, context: StageContext, model=None, processor=None):
        self.config, self.model, self.processor = config, model, processor
        self.device, self.dtype = context.device, context.dtype
        self.box_threshold, self.text_threshold, self.nms_iou = config.box_threshold, config.text_threshold, config.nms_iou

    def check(self) -> None:
        """The weights' location is valid (a local folder, or later the original files), without loading."""
        c = self.config
        if c.gd_config or c.gd_checkpoint:
            load_grounding_model(c.gd_model, c.gd_config, c.gd_checkpoint)
        if not c.gd_model:
            raise ConfigError("grounding needs --gd-model (a local transformers Grounding DINO folder)")
        from genemi.models.hf import require_local_dir

        require_local_dir(c.gd_model, "Grounding DINO (--gd-model)")

    def load(self) -> None:
        if self.model is None:
            self.model, self.processor = load_grounding_model(self.config.gd_model, self.config.gd_config,
                                                              self.config.gd_checkpoint)
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

    def detect(self, images: Sequence, items: Sequence[Sequence[str]]) -> list[tuple[list[Box], list[str]]]:
        """Boxes per image. Images are batched only with images of the same size and prompts are padded to
        the model's fixed text length, so no padding ever differs: results do not depend on which images
        share a batch (shards, resumed runs and batch sizes give identical outputs)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for k, img in enumerate(images):
            groups.setdefault(img.size, []).append(k)
        results: list = [None] * len(images)
        for idx in groups.values():
            for k, res in zip(idx, self._detect([images[k] for k in idx], [items[k] for k in idx])):
                results[k] = res
        return results

    @torch.no_grad()
    def _detect(self, images: Sequence, items: Sequence[Sequence[str]]) -> list[tuple[list[Box], list[str]]]:
        from torchvision.ops import box_convert, nms

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
            if found:
                scores = torch.tensor([f[0] for f in found])
                kept = nms(torch.stack([f[2] for f in found]), scores, self.nms_iou).tolist()
                found = [found[i] for i in kept]
            dets = [Box(item=its[k], box=[round(float(v), 2) for v in box.clamp(min=0).tolist()], score=round(s, 5))
                    for s, k, box in found]
            grounded = {d.item for d in dets}
            results.append((dets, [i for i in its if i not in grounded]))
        return results
