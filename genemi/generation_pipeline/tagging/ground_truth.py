"""``ground_truth`` tagger for shapes-world images: the scene's canonical caption and its object phrases
(largest first), read from the world's annotations (see :mod:`genemi.synthetic.ground_truth`). No model."""

from __future__ import annotations

from typing import Sequence

from genemi.generation_pipeline.tagging.base import TagResult
from genemi.synthetic.ground_truth import AnnotationBackend


class GroundTruthTagger(AnnotationBackend):
    needs_captions = False

    def __init__(self, config, context):
        super().__init__(config, context)
        self.max_items = config.max_items

    def tag(self, images: Sequence, captions: Sequence[list[str]]) -> list[TagResult]:
        from genemi.synthetic.ground_truth import salient_objects

        self.load()
        out = []
        for image in images:
            ann = self.index.find(image)
            if ann is None:  # not a world image: no items (the stage records the image as untagged)
                out.append(TagResult(None, []))
                continue
            objects = salient_objects(ann)[: self.max_items]
            out.append(TagResult(ann["captions"][0], [o["phrase"] for o in objects], [1.0] * len(objects)))
        return out
