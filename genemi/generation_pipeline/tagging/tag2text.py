"""``tag2text`` tagger (the original's Tag2Text Swin-B): registered, not available yet.

The original filtered tags at a 0.64 threshold and deleted the tags below, which "disturb captioning";
both constants live here for the implementation that a later issue adds.
"""

from __future__ import annotations

from genemi.errors import BackendUnavailable

TAG2TEXT_THRESHOLD = 0.64
TAG2TEXT_IMAGE_SIZE = 384
#: indices into Tag2Text's tag list the original deletes, and their words
TAG2TEXT_DELETED_TAG_INDEX = (127, 2961, 3351, 3265, 3338, 3355, 3359)
TAG2TEXT_DELETED_TAGS = ("quarter", "back", "two", "three", "four", "five", "one")


def filter_tags(tags: list[str], scores: list[float], threshold: float = TAG2TEXT_THRESHOLD) -> list[str]:
    """The original's tag filter: score >= threshold and not one of the deleted number/misc tags."""
    return [t for t, s in zip(tags, scores) if s >= threshold and t not in TAG2TEXT_DELETED_TAGS]


class Tag2TextTagger:
    name = "tag2text"

    def __init__(self, config, context):
        self.checkpoint, self.threshold = config.tag2text_checkpoint, config.tag2text_threshold

    def check(self) -> None:
        raise BackendUnavailable(
            "the tag2text tagger is not available yet (original Tag2Text checkpoints need their own loader); "
            "use --tagger captions (with --annotation-file) or --tagger blip --blip-caption-model DIR"
        )

    def load(self) -> None:  # never reached: check() refuses first
        self.check()

    def offload(self) -> None:
        return None

    def tag(self, images, captions):
        self.check()
