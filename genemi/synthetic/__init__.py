"""Synthetic data with known answers, for tests, ``make demo`` and controlled experiments.

* :mod:`genemi.synthetic.shapes`: the minimal two-item shapes set in every training format (plumbing tests).
* :mod:`genemi.synthetic.scenes` + :mod:`genemi.synthetic.world`: the compositional shapes world (1-3 objects,
  8 shapes, 8 colours, 2 sizes, 2 textures, 5 spatial relations, any resolution, exact boxes and masks,
  compositional train/test splits) and its exports in real benchmark and training formats.
"""

from genemi.synthetic.scenes import Scene, SceneObject, SplitSpec, render
from genemi.synthetic.shapes import ShapesDataset, write_shapes_dataset
from genemi.synthetic.world import ShapesWorld, write_world

__all__ = ["Scene", "SceneObject", "ShapesDataset", "ShapesWorld", "SplitSpec", "render", "write_shapes_dataset",
           "write_world"]
