"""Segmentation: a mask per grounded item and its inpainting crop window (stage ``segment``, :mod:`.stage`).
Backend: ``sam`` (Meta's segment-anything with original checkpoints, :mod:`.sam`); RLE and crop windows in
:mod:`.masks`."""

from genemi.generation_pipeline.segmentation.base import SEGMENTERS, Segmenter
from genemi.generation_pipeline.segmentation.config import SegmentConfig

__all__ = ["SEGMENTERS", "SegmentConfig", "Segmenter"]
