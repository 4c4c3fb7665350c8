"""Pipeline inputs: an image folder (recursive) or an annotation file with original captions."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from genemi.caption_files import read_caption_entries
from genemi.errors import DataError
from genemi.records import ImageInput
from genemi.images import IMAGE_EXTENSIONS, under_root



def collect_inputs(input_dir: str | Path | None = None, annotation_file: str | Path | None = None,
                   encoding: str = "utf-8") -> list[ImageInput]:
    """Every input image, sorted by id (the canonical order shards and merges keep).

    With an annotation file (Karpathy / BLIP JSON list, COCO ``captions_*.json`` or JSONL) images are those it
    names, relative to ``input_dir`` (the original's ``--root-dir``), with their captions; otherwise every
    jpg/jpeg/png/webp under ``input_dir``.
    """
    if annotation_file:
        by_image: dict[str, list[str]] = defaultdict(list)
        for entry in read_caption_entries(annotation_file, encoding=encoding):
            if input_dir:
                under_root(input_dir, entry.image, f"--annotation-file {annotation_file} (under --root-dir)")
            by_image[entry.image].append(entry.caption)
        return [ImageInput(id=img, image=img, captions=caps) for img, caps in sorted(by_image.items())]
    if not input_dir:
        raise DataError("give --input-dir (an image folder) or --annotation-file")
    root = Path(input_dir)
    if not root.is_dir():
        raise DataError(f"input folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"no jpg/jpeg/png/webp images under {root}")
    return [ImageInput(id=p.relative_to(root).as_posix(), image=p.relative_to(root).as_posix()) for p in files]


def shard(inputs: list[ImageInput], num_shards: int, index: int) -> list[ImageInput]:
    """Shard ``index`` of ``num_shards``: every n-th image of the sorted list."""
    if num_shards < 1 or not 0 <= index < num_shards:
        raise DataError(f"shard index {index} is not in [0, {num_shards})")
    return inputs[index::num_shards]
