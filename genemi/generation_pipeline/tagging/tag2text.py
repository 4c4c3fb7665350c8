"""``tag2text`` tagger: the original's Tag2Text (Swin-B 384 px, ``tag2text_swin_14m.pth``) gives each image its
tags (the items) and a caption, exactly as the original ``inference_tag2text`` did (genemi's own
re-implementation, :mod:`genemi.models.tag2text`).

Tag rule of the original: a tag is kept when its probability is **strictly greater** than its class threshold,
0.68 by default and 0.70 for person / man / woman whatever the base threshold; then the deleted number/misc tags
are removed. Tags stay in tag-list order. (The original's ``--threshold 0.64`` was set after the model was built
and never applied; genemi applies ``--tag2text-threshold``, default 0.68 = what GeNeMi's runs used.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from genemi.errors import ConfigError
from genemi.generation_pipeline.stage import release_to_cpu
from genemi.generation_pipeline.tagging.base import TagResult
from genemi.models.tag2text.inference import DEFAULT_THRESHOLD, DELETED_TAG_INDEX, TAG_LIST_NAMES, select_tags

TAG2TEXT_THRESHOLD = DEFAULT_THRESHOLD
#: indices into Tag2Text's tag list the original deletes, and their words
TAG2TEXT_DELETED_TAG_INDEX = DELETED_TAG_INDEX
TAG2TEXT_DELETED_TAGS = ("quarter", "back", "two", "three", "four", "five", "one")


def filter_tags(tag_list: Sequence[str], probs: Sequence[float], threshold: float = TAG2TEXT_THRESHOLD) -> list[str]:
    """The original's tag filter over the whole tag list (``probs[i]`` = probability of ``tag_list[i]``): kept
    when strictly greater than the class threshold, deleted indices removed, in tag-list order."""
    kept = select_tags(torch.as_tensor(list(probs), dtype=torch.float32).unsqueeze(0), threshold)[0]
    return [tag_list[i] for i in kept]


def _beside(checkpoint: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        if (checkpoint.parent / name).is_file():
            return checkpoint.parent / name
    return None


class Tag2TextTagger:
    name = "tag2text"

    def __init__(self, config, context):
        self.config, self.device, self.dtype, self.max_items = config, context.device, context.dtype, config.max_items
        self.checkpoint, self.threshold = config.tag2text_checkpoint, config.tag2text_threshold
        self.predictor = None

    def _paths(self) -> tuple[Path, Path, Path]:
        c = self.config
        if not self.checkpoint:
            raise ConfigError("--tagger tag2text needs --tag2text-checkpoint (the original tag2text_swin_14m.pth)")
        ckpt = Path(self.checkpoint).expanduser()
        if not ckpt.is_file():
            raise ConfigError(f"--tag2text-checkpoint {ckpt}: " + ("is a folder, expected a .pth file" if ckpt.is_dir()
                                                                   else "file not found"))
        tag_list = Path(c.tag2text_tag_list).expanduser() if c.tag2text_tag_list else _beside(ckpt, TAG_LIST_NAMES)
        if tag_list is None or not tag_list.is_file():
            raise ConfigError(f"Tag2Text needs its tag list: give --tag2text-tag-list (the original's "
                              f"tag2text_ori_tag_list.txt) or put {TAG_LIST_NAMES[0]} next to {ckpt}"
                              + (f" ({tag_list}: file not found)" if tag_list else ""))
        vocab = Path(c.tag2text_vocab).expanduser() if c.tag2text_vocab else _beside(ckpt, ("vocab.txt",))
        if vocab is None or not vocab.is_file():
            raise ConfigError(f"Tag2Text needs bert-base-uncased's vocab.txt: give --tag2text-vocab or put vocab.txt "
                              f"next to {ckpt}" + (f" ({vocab}: file not found)" if vocab else ""))
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"--tag2text-threshold must be between 0 and 1, not {self.threshold}")
        return ckpt, tag_list, vocab

    def _image_size(self, ckpt: Path, sizes) -> None:
        if self.config.image_size not in (None, sizes.swin.image_size):
            raise ConfigError(f"--image-size {self.config.image_size}: the Tag2Text checkpoint {ckpt.name} is "
                              f"built for {sizes.swin.image_size} px")

    def check(self) -> None:
        """Paths, then the checkpoint read as structure and fitted to a model on the ``meta`` device
        (:func:`~genemi.models.tag2text.loader.check_tag2text`), the tag list and vocabulary sized as it needs."""
        from genemi.errors import CheckpointError
        from genemi.models.tag2text import Tag2TextTokenizer, read_tag_list
        from genemi.models.tag2text.inference import check_vocabularies
        from genemi.models.tag2text.loader import check_tag2text

        ckpt, tag_list, vocab = self._paths()
        sizes = check_tag2text(ckpt)
        self._image_size(ckpt, sizes)
        try:
            check_vocabularies(sizes, len(read_tag_list(tag_list)), len(Tag2TextTokenizer(vocab)))
        except CheckpointError as exc:
            raise CheckpointError(f"--tag2text-checkpoint {ckpt}: {exc}") from None

    def load(self) -> None:
        if self.predictor is None:
            from genemi.models.tag2text import Tag2TextPredictor, Tag2TextTokenizer, load_tag2text, read_tag_list

            ckpt, tag_list, vocab = self._paths()
            model = load_tag2text(ckpt)
            self._image_size(ckpt, model.sizes)
            self.predictor = Tag2TextPredictor(model, Tag2TextTokenizer(vocab),
                                               read_tag_list(tag_list, model.sizes.num_classes),
                                               threshold=self.threshold, length_rule=self.config.tag2text_length_rule)
        self.predictor.model.to(self.device, dtype=self.dtype or torch.float32)

    def offload(self) -> None:
        if self.predictor is not None:
            release_to_cpu(self.predictor.model)

    def tag(self, images, captions) -> list[TagResult]:
        out = []
        for res in self.predictor.predict(list(images)):
            idx = list(range(len(res.tags)))
            if len(idx) > self.max_items:  # the most probable ones, still in tag-list order
                idx = sorted(sorted(idx, key=lambda i: -res.tag_scores[i])[:self.max_items])
            out.append(TagResult(res.caption, [res.tags[i] for i in idx], [res.tag_scores[i] for i in idx],
                                 all_tags=list(res.tags) if len(idx) < len(res.tags) else None))
        return out
