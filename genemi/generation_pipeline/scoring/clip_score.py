"""Optional CLIPScore of each variation image with each of its captions (``--clip-score-model``).

CLIPScore here is ``100 * max(cos(image, text), 0)``: torchmetrics' ``CLIPScore`` convention. Hessel et al.
(2021), who introduced it, report ``2.5 * max(cos, 0)``; multiply by 0.025 to compare with their numbers.

Any open_clip model genemi loads works (:func:`genemi.models.clip.create_clip`): an open_clip or OpenAI
name, ``local-dir:<folder>`` or a model-config ``.json``, with ``--clip-score-pretrained`` a checkpoint file,
a folder or a cached open_clip tag. A model without weights is refused: a random CLIP's score means nothing.
"""

from __future__ import annotations

from typing import Sequence

import torch

from genemi.errors import ConfigError, DataError, GenemiError
from genemi.generation_pipeline.stage import release_to_cpu

#: torchmetrics' scale; Hessel et al. use 2.5
CLIP_SCORE_SCALE = 100.0


def clip_score(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """``100 * max(cos, 0)`` of paired rows (``[N, D]`` each, any norm) -> ``[N]``."""
    cos = torch.nn.functional.cosine_similarity(image_features.float(), text_features.float(), dim=-1)
    return CLIP_SCORE_SCALE * cos.clamp(min=0)


class ClipScorer:
    """``score(images, captions)``: per image, the CLIPScore of each caption."""

    def __init__(self, model_name: str, pretrained: str | None, device: str = "cpu", dtype=None, bundle=None):
        self.model_name, self.pretrained, self.device, self.dtype = model_name, pretrained, device, dtype
        self.bundle, self._transform = bundle, None

    @classmethod
    def from_config(cls, config, context) -> "ClipScorer | None":
        """The scorer ``--clip-score-model`` asks for, or None; ``--clip-score-pretrained`` alone is an error."""
        if not config.clip_score_model:
            if config.clip_score_pretrained:
                raise ConfigError("--clip-score-pretrained needs --clip-score-model (the open_clip architecture "
                                  "its weights belong to), or drop it")
            return None
        return cls(config.clip_score_model, config.clip_score_pretrained, context.device, context.dtype)

    def check(self) -> None:
        """Resolve architecture and weights file, read the file's structure and fit its keys and shapes to the
        architecture (:func:`genemi.models.clip.check_clip`; no weight is read)."""
        from genemi.models.clip import check_clip, resolve_model_spec, resolve_pretrained

        try:
            spec = resolve_model_spec(self.model_name)
            resolve_pretrained(spec, self.pretrained)
        except GenemiError as exc:
            raise ConfigError(f"--clip-score-model {self.model_name}: {exc}") from exc
        weights = check_clip(self.model_name, self.pretrained, "--clip-score-pretrained")
        if weights is None:
            raise ConfigError(f"--clip-score-model {self.model_name} has no weights: give --clip-score-pretrained "
                              "(a checkpoint file, a folder or a cached open_clip tag)")

    def load(self) -> None:
        if self.bundle is None:
            from genemi.models.clip import create_clip

            self.bundle = create_clip(self.model_name, self.pretrained)
        self.bundle.model.to(self.device, dtype=self.dtype or torch.float32)

    def offload(self) -> None:
        if self.bundle is not None:
            release_to_cpu(self.bundle.model)

    def preprocess(self, images: Sequence) -> torch.Tensor:
        """PIL images as the model's input tensor on the CPU (thread-safe)."""
        if self._transform is None:
            self._transform = self.bundle.transform(is_train=False)
        return torch.stack([self._transform(img) for img in images]) if len(images) else torch.empty(0)

    @torch.no_grad()
    def score(self, images, captions: Sequence[Sequence[str]], batch_size: int = 64) -> list[list[float]]:
        """Per image (PIL or :meth:`preprocess`-ed), the CLIPScore of each of its captions. Each image and each
        distinct caption is encoded once."""
        from genemi.models.clip import encode_text_trimmed

        if len(images) != len(captions):
            raise DataError(f"{len(images)} images but {len(captions)} caption lists")
        used = [i for i, caps in enumerate(captions) if caps]
        out: list[list[float]] = [[] for _ in captions]
        if not used:
            return out
        model, dtype = self.bundle.model, self.dtype or torch.float32
        pixels = images[used] if isinstance(images, torch.Tensor) else self.preprocess([images[i] for i in used])
        image_features = torch.cat([model.encode_image(pixels[k : k + batch_size].to(self.device, dtype)).float()
                                    for k in range(0, len(pixels), batch_size)])
        texts = list(dict.fromkeys(t for i in used for t in captions[i]))
        tokens = self.bundle.tokenizer(texts)
        text_features = torch.cat([encode_text_trimmed(model, tokens[k : k + batch_size].to(self.device)).float()
                                   for k in range(0, len(texts), batch_size)])
        row = {t: k for k, t in enumerate(texts)}
        for k, i in enumerate(used):
            idx = torch.tensor([row[t] for t in captions[i]], device=text_features.device)
            out[i] = clip_score(image_features[k].expand(len(idx), -1), text_features[idx]).cpu().tolist()
        return out
