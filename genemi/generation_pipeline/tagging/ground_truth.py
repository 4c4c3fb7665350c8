"""``ground_truth`` tagger for shapes-world images: the scene's canonical caption and its object phrases
(largest first), read from the world's annotations (see :mod:`genemi.synthetic.ground_truth`). No model."""

from __future__ import annotations

from typing import Sequence


class GroundTruthTagger:
    name = "ground_truth"
    needs_captions = False

    def __init__(self, config, context):
        self.max_items, self.image_root, self.index = config.max_items, context.image_root, None

    def check(self) -> None:
        from genemi.synthetic.ground_truth import scene_files

        scene_files(self.image_root)

    def load(self) -> None:
        from genemi.synthetic.ground_truth import SceneIndex

        if self.index is None:
            self.index = SceneIndex.for_root(self.image_root)

    def offload(self) -> None:
        return None

    def tag(self, images: Sequence, captions: Sequence[list[str]]):
        from genemi.synthetic.ground_truth import salient_objects

        self.load()
        out = []
        for image in images:
            ann = self.index.find(image)
            if ann is None:  # not a world image: no items (the stage records the image as untagged)
                out.append((None, [], None))
                continue
            objects = salient_objects(ann)[: self.max_items]
            out.append((ann["captions"][0], [o["phrase"] for o in objects], [1.0] * len(objects)))
        return out
