"""A small synthetic "shapes world": real files in every dataset format, for tests and ``make demo``."""

from genemi.synthetic.shapes import ShapesDataset, write_shapes_dataset

__all__ = ["ShapesDataset", "write_shapes_dataset"]
