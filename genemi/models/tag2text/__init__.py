"""From-scratch Tag2Text (recognize-anything's ``tag2text``, Swin-B 384 px) that loads the original checkpoints
and reproduces the original's tags and captions. See ``docs/generation_pipeline.md`` ("Tag2Text")."""

from genemi.models.tag2text.config import BertSizes, SwinSizes, Tag2TextSizes, sizes_from_config_dir, write_config_dir
from genemi.models.tag2text.inference import (CLASS_THRESHOLDS, DEFAULT_THRESHOLD, DELETED_TAG_INDEX, Tag2TextOutput,
                                              Tag2TextPredictor, preprocess, read_tag_list, select_tags)
from genemi.models.tag2text.loader import load_state_dict_strictly, load_tag2text, read_state_dict
from genemi.models.tag2text.model import Tag2Text
from genemi.models.tag2text.tokenizer import Tag2TextTokenizer

__all__ = ["BertSizes", "CLASS_THRESHOLDS", "DEFAULT_THRESHOLD", "DELETED_TAG_INDEX", "SwinSizes", "Tag2Text",
           "Tag2TextOutput", "Tag2TextPredictor", "Tag2TextSizes", "Tag2TextTokenizer", "load_state_dict_strictly",
           "load_tag2text", "preprocess", "read_state_dict", "read_tag_list", "select_tags", "sizes_from_config_dir",
           "write_config_dir"]
