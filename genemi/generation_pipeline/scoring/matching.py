"""What the two scoring stages share (``score`` for variations, ``negscore`` for whole-image negatives): the
image-text matcher of ``--scorer`` with the optional CLIPScore model, their lifecycle, images read and
preprocessed in the reader thread, and one batched call per model for every (image, caption) pair of a batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from genemi.errors import GenemiError
from genemi.generation_pipeline.scoring.clip_score import ClipScorer
from genemi.generation_pipeline.stage import Stage, StageItem
from genemi.images import load_rgb
from genemi.records import Failure


@dataclass
class Prepared:
    """One record's images to score, in order (``ids``), their model inputs, and what could not be read."""

    ids: list[str] = field(default_factory=list)
    images: list = field(default_factory=list)  # PIL images of ``ids`` (until preprocessed)
    itm_pixels: object = None  # the matcher's pixel_values of ``ids`` (a tensor) or the PIL images
    clip_pixels: object = None
    failures: dict[str, Failure] = field(default_factory=dict)  # id -> why it failed here
    #: item id -> (iva_image, iva_window, note) (score only)
    iva: dict[str, tuple[float, float, str | None]] = field(default_factory=dict)


class MatchingStage(Stage):
    """A stage that scores images of the output folder against captions with ``--scorer`` (+ CLIPScore)."""

    def __init__(self, config, context) -> None:
        super().__init__(config, context)
        self.clip = ClipScorer.from_config(config, context)

    def check(self) -> None:
        super().check()
        if self.clip is not None:
            self.clip.check()

    def load(self) -> None:
        super().load()
        if self.clip is not None:
            self.clip.load()

    def offload(self) -> None:
        super().offload()
        if self.clip is not None:
            self.clip.offload()

    def read(self, prep: Prepared, key: str, image: str | None, missing: str) -> None:
        """Add the output folder's ``image`` to ``prep`` under ``key``, or record why it cannot be scored."""
        if not image:
            prep.failures[key] = Failure(stage=self.name, type="no_image", message=missing)
            return
        try:
            img = load_rgb(self.context.output_dir / image)
        except GenemiError as exc:
            prep.failures[key] = Failure.from_exception(self.name, exc)
            return
        prep.ids.append(key)
        prep.images.append(img)

    def preprocess(self, prep: Prepared) -> Prepared:
        """The model inputs of ``prep``'s images not failed by now (in the reader thread)."""
        keep = [k for k, key in enumerate(prep.ids) if key not in prep.failures]
        prep.ids, images = [prep.ids[k] for k in keep], [prep.images[k] for k in keep]
        preprocess = getattr(self.backend, "preprocess", None)
        prep.itm_pixels = preprocess(images) if preprocess is not None else images
        prep.clip_pixels = self.clip.preprocess(images) if self.clip is not None else None
        prep.images = []
        return prep

    def match(self, items: Sequence[StageItem], captions: dict[str, list[str]]) -> dict[str, dict]:
        """Scores of every prepared image of the batch with its ``captions[id]``: id -> ``itm_score`` (raw logits),
        ``itm_prob`` and, with a CLIPScore model, ``clip_score``: one list per image, one value per caption."""
        import torch

        ids = [key for item in items for key in item.prepared.ids]
        texts = [captions[key] for key in ids]

        def joined(parts: list):
            parts = [p for p in parts if p is not None and len(p)]
            if not parts:
                return []
            return torch.cat(parts) if isinstance(parts[0], torch.Tensor) else [x for p in parts for x in p]

        scores: dict[str, dict] = {}
        if ids:
            with self.timed():
                itm = self.backend.match(joined([it.prepared.itm_pixels for it in items]), texts)
                clip = self.clip.score(joined([it.prepared.clip_pixels for it in items]), texts) if self.clip else None
            for k, key in enumerate(ids):
                scores[key] = {"itm_score": itm[k][0], "itm_prob": itm[k][1]}
                if clip is not None:
                    scores[key]["clip_score"] = clip[k]
        return scores
