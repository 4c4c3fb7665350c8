"""Segmentation: one mask per grounded item with Meta's segment-anything, plus the inpainting crop window."""

from genemi.generation_pipeline.segmentation.masks import crop_window, rle_decode, rle_encode
from genemi.generation_pipeline.segmentation.sam import SegmentStage, load_sam, sam_config_from_state_dict

__all__ = ["SegmentStage", "crop_window", "load_sam", "rle_decode", "rle_encode", "sam_config_from_state_dict"]
