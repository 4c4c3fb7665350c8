"""``ground_truth`` grounder for shapes-world images: each item's exact pixel box from the world's
annotations (score 1), matched by phrase (see :mod:`genemi.synthetic.ground_truth`). No model."""

from __future__ import annotations

from typing import Sequence

from genemi.generation_pipeline.grounding.base import Detections
from genemi.records import Box
from genemi.synthetic.ground_truth import AnnotationBackend


class GroundTruthGrounder(AnnotationBackend):
    model = None

    def detect(self, images: Sequence, items: Sequence[Sequence[str]]) -> list[Detections]:
        from genemi.synthetic.ground_truth import match_item, salient_objects

        self.load()
        out = []
        for image, wanted in zip(images, items):
            ann = self.index.find(image)
            objects = salient_objects(ann) if ann else []
            boxes, ungrounded = [], []
            for item in wanted:
                found = match_item(item, objects)
                if not found:
                    ungrounded.append(item)
                boxes += [Box(item=item, box=[float(v) for v in o["box"]], score=1.0) for o in found]
            out.append(Detections(boxes, ungrounded))
        return out
