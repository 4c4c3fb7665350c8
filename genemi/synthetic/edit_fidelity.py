"""Edit fidelity: how often a painted variation of a shapes-world image shows the edit its prompt asks for.

For a ``genemi generate`` run on the world's images (ground-truth tag/ground/segment, so each item is one object of
the scene), every variation whose prompt names an object the world can draw
(:func:`~genemi.synthetic.parsing.prompt_object`) is measured in the item's region: the
object's exact mask grown by ``mask_dilate`` pixels (the region the inpainter was asked to repaint).

* **colour**: each pixel of the region is classified to the nearest colour of the world's palette (the eight
  colours, their stripe shades, the grey background; a pixel farther than ``COLOUR_TOLERANCE`` from all of them is
  unclassified); the dominant colour is the most frequent object colour among the classified pixels, provided it
  covers at least ``min_object_share`` of the region (else there is no object: ``None``). A hit: it equals the
  colour the prompt asks for.
* **shape**: the region's object pixels (classified, not background) are compared with the asked object drawn in
  each of the eight shapes at the item's place in the scene (the world's renderer, same colour, size, texture and
  occluders); the best intersection over union names the shape. A hit: it is the asked shape. At small image sizes
  some shapes are hard to tell apart; the ``render`` inpainter's own score is the measurement's ceiling.

``heldout`` counts the measured variations that ask for a (shape, colour) pair the world's train split never shows
(:meth:`~genemi.synthetic.scenes.SplitSpec.default`): a learned inpainter never saw one painted.

Variations with undrawable prompts ("a large golden hexagon") and failed variations are counted, not measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from genemi.synthetic.scenes import BACKGROUND, COLOURS, SHAPES, Scene, SplitSpec, render

#: largest RGB distance at which a pixel still counts as a palette colour
COLOUR_TOLERANCE = 60.0
_STRIPE_SHADE = 0.45  # genemi.synthetic.scenes._texture's darker band


def _palette() -> tuple[np.ndarray, list[str]]:
    names, rows = ["background"], [BACKGROUND]
    for name, rgb in COLOURS.items():
        names += [name, name]
        rows += [rgb, tuple(v * _STRIPE_SHADE for v in rgb)]
    return np.asarray(rows, dtype=np.float64), names


def classify_pixels(pixels: np.ndarray) -> np.ndarray:
    """``[N, 3]`` RGB -> ``[N]`` palette names (``"background"``, a colour name, or ``""``: unclassified)."""
    table, names = _palette()
    dist = np.linalg.norm(pixels.astype(np.float64)[:, None, :] - table[None], axis=-1)
    best = dist.argmin(axis=1)
    out = np.asarray(names, dtype=object)[best]
    out[dist[np.arange(len(best)), best] > COLOUR_TOLERANCE] = ""
    return out


def dominant_colour(pixels: np.ndarray, min_object_share: float = 0.2) -> str | None:
    """The most frequent object colour among ``pixels`` ``[N, 3]`` if it covers ``min_object_share`` of them."""
    labels = classify_pixels(pixels)
    colours = labels[(labels != "background") & (labels != "")]
    if not len(colours):
        return None
    names, counts = np.unique(colours, return_counts=True)
    best = int(counts.argmax())
    return str(names[best]) if counts[best] >= min_object_share * len(pixels) else None


def painted_shape(image: np.ndarray, region: np.ndarray, scene: Scene, index: int, asked) -> str | None:
    """The shape whose rendering of ``asked`` (a SceneObject) at object ``index`` best overlaps the region's
    object pixels (intersection over union inside the region); None when the region shows no object."""
    labels = classify_pixels(image[region])
    found = np.zeros(region.shape, dtype=bool)
    found[region] = (labels != "background") & (labels != "")
    if not found.any():
        return None
    size = image.shape[0]
    scores = []
    for shape in SHAPES:
        edited = scene.with_object(index, shape=shape, colour=asked.colour, size=asked.size, texture=asked.texture)
        drawn = render(edited, size).masks[index] & region
        scores.append(((drawn & found).sum() / max(1, (drawn | found).sum()), shape))
    return max(scores)[1]


@dataclass
class FidelityReport:
    """Counts over one run's variations; ``by_kind``: the same counts per portrayal kind."""

    variations: int = 0
    failed: int = 0
    undrawable: int = 0
    measured: int = 0
    colour_hits: int = 0
    shape_hits: int = 0
    shape_changes: int = 0  # measured variations whose prompt asks for another shape than the source object's
    shape_change_hits: int = 0
    heldout: int = 0  # measured variations whose asked (shape, colour) is a held-out pair of the world's split
    heldout_colour_hits: int = 0
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, key: str) -> None:
        setattr(self, key, getattr(self, key) + 1)
        counts = self.by_kind.setdefault(kind, {})
        counts[key] = counts.get(key, 0) + 1

    @property
    def colour_rate(self) -> float:
        return self.colour_hits / self.measured if self.measured else float("nan")

    @property
    def shape_rate(self) -> float:
        return self.shape_hits / self.measured if self.measured else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "colour_rate": self.colour_rate, "shape_rate": self.shape_rate,
                "shape_change_rate": self.shape_change_hits / self.shape_changes if self.shape_changes else None,
                "heldout_colour_rate": self.heldout_colour_hits / self.heldout if self.heldout else None}


def measure_run(run_dir: str | Path, scenes_file: str | Path, mask_dilate: int,
                min_object_share: float = 0.2) -> FidelityReport:
    """Edit fidelity of the variations in ``run_dir/variations.jsonl`` (see the module docstring); the source
    images' scenes come from the world's ``scenes_*.jsonl`` (``scenes_file``)."""
    from PIL import Image

    from genemi.masks import dilate
    from genemi.synthetic.parsing import prompt_object
    from genemi.manifest import read_records
    from genemi.records import VariationPlan
    from genemi.synthetic.ground_truth import decode_mask, match_item
    from genemi.synthetic.parsing import CaptionParseError
    from genemi.synthetic.world import read_scene_annotations

    run_dir = Path(run_dir)
    scenes = {a["image"]: a for a in read_scene_annotations(scenes_file)}
    report = FidelityReport()
    heldout_pairs = set(SplitSpec.default().heldout_pairs)
    for record in read_records(run_dir / "variations.jsonl", VariationPlan):
        ann = scenes[record.image]
        scene = ann["scene"]
        for item in record.items:
            objects = match_item(item.item, ann["objects"])
            for v in item.variations:
                report.add(v.kind, "variations")
                if v.status != "ok" or not v.image:
                    report.add(v.kind, "failed")
                    continue
                try:
                    asked = prompt_object(v.prompt)
                except CaptionParseError:
                    report.add(v.kind, "undrawable")
                    continue
                obj = objects[0]
                region = dilate(decode_mask(obj), mask_dilate) if mask_dilate else decode_mask(obj)
                image = np.asarray(Image.open(run_dir / v.image).convert("RGB"))
                report.add(v.kind, "measured")
                colour_hit = dominant_colour(image[region], min_object_share) == asked.colour
                if colour_hit:
                    report.add(v.kind, "colour_hits")
                if (asked.shape, asked.colour) in heldout_pairs:
                    report.add(v.kind, "heldout")
                    if colour_hit:
                        report.add(v.kind, "heldout_colour_hits")
                hit = painted_shape(image, region, scene, obj["index"], asked) == asked.shape
                if hit:
                    report.add(v.kind, "shape_hits")
                if asked.shape != scene.objects[obj["index"]].shape:
                    report.add(v.kind, "shape_changes")
                    if hit:
                        report.add(v.kind, "shape_change_hits")
    return report


__all__ = ["COLOUR_TOLERANCE", "FidelityReport", "classify_pixels", "dominant_colour", "measure_run",
           "painted_shape"]
