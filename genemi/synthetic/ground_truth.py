"""Ground truth for the pipeline: find the shapes-world scene an image shows, by its pixels.

The ``ground_truth`` tagging, grounding and segmentation backends use a :class:`SceneIndex` over the
``scenes_*.jsonl`` files that :func:`genemi.synthetic.write_world` writes next to its ``images/`` folder. An
image is identified by the sha256 of its RGB pixels, so the backends need nothing but the image the stage
hands them (the stage protocols pass pixels, not paths), and an edited or unknown image finds no scene.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from genemi.errors import DataError
from genemi.synthetic.scenes import image_hash


def scene_files(image_root: str | Path) -> list[Path]:
    """``scenes_*.jsonl`` in the image root or its parent (the world's layout), sorted."""
    root = Path(image_root)
    files = sorted({*root.glob("scenes_*.jsonl"), *root.parent.glob("scenes_*.jsonl")})
    if not files:
        raise DataError(f"ground truth: no scenes_*.jsonl in {root} or {root.parent} "
                        "(write the shapes world with genemi.synthetic.write_world and pass its images/ as the root)")
    return files


class SceneIndex:
    """Scene annotations keyed by the pixel hash of their rendered image."""

    def __init__(self, files: Iterable[str | Path], image_root: str | Path):
        import json

        from PIL import Image

        self.by_hash: dict[str, dict] = {}
        root = Path(image_root)
        for path in files:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                ann = json.loads(line)
                image = root / ann["image"]
                if image.is_file():
                    with Image.open(image) as img:
                        self.by_hash[image_hash(img)] = ann

    @classmethod
    def for_root(cls, image_root: str | Path) -> "SceneIndex":
        return cls(scene_files(image_root), image_root)

    def find(self, image) -> dict | None:
        """The annotation of the scene ``image`` (PIL image or ``[H, W, 3]`` uint8 array) shows, or None."""
        from PIL import Image

        if isinstance(image, np.ndarray):
            image = Image.fromarray(np.asarray(image, dtype=np.uint8))
        return self.by_hash.get(image_hash(image))


def salient_objects(ann: dict) -> list[dict]:
    """The scene's visible objects, largest first (ties: scene order)."""
    visible = [o for o in ann["objects"] if o["area"] > 0]
    return sorted(visible, key=lambda o: (-o["area"], o["index"]))


def match_item(item: str, objects: list[dict]) -> list[dict]:
    """Objects an item phrase names: the exact phrase, else every object whose phrase contains all its words."""
    exact = [o for o in objects if o["phrase"] == item]
    if exact:
        return exact
    words = set(item.lower().split())
    return [o for o in objects if words and words <= set(o["phrase"].split())]


def decode_mask(obj: dict) -> np.ndarray:
    from genemi.masks import rle_decode
    from genemi.records import RLE

    return rle_decode(RLE(**obj["mask"]))


class AnnotationBackend:
    """What the ``ground_truth`` tagger, grounder and segmenter share: the world's annotations under the
    image root, indexed by pixel hash, loaded once; no model to move or free."""

    name = "ground_truth"

    def __init__(self, config, context):
        self.config, self.image_root, self.index = config, context.image_root, None

    def check(self) -> None:
        scene_files(self.image_root)

    def load(self) -> None:
        if self.index is None:
            self.index = SceneIndex.for_root(self.image_root)

    def offload(self) -> None:
        return None
