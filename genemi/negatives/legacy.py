"""Convert the original CE-CLIP hard-negative files (``processed_dataset*.npy``) to genemi records.

Those files are NumPy object arrays of Python dicts, i.e. **pickles**: loading one can run arbitrary code.
They are read only when the caller passes ``trust_pickle=True`` (``--trust-pickle`` on the command line),
which should be done only for files you produced yourself or got from a source you trust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from genemi.errors import DataError, ManifestError
from genemi.records import TextNegative, TextNegativeRecord

#: CE-CLIP keys in the order of its ``valid_caption`` columns 1..4, with genemi's type names
CECLIP_NEGATIVE_KEYS = (
    ("relation_aug_caption", "swap_obj"),
    ("adj_aug_caption", "replace_att"),
    ("noun_aug_caption", "replace_obj"),
    ("verb_aug_caption", "replace_act"),
)
#: where the original trainer looked for an image_id's file (relative to $IMG_DATA_DIR)
COCO_TRAIN2014_TEMPLATE = "train2014/COCO_train2014_{image_id:012d}.jpg"
_INVALID = "###"


def expand_npy_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders expand to their ``*.npy`` files in name order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(p.glob("*.npy"))
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"CE-CLIP negatives file not found: {p}")
    if not out:
        raise DataError("no .npy files found")
    return out


def convert_ceclip_record(obj: dict, image_template: str = COCO_TRAIN2014_TEMPLATE) -> TextNegativeRecord:
    """One CE-CLIP dict to a record; ``'###'`` texts, mask zeros and negatives equal to the caption are invalid."""
    caption = str(obj["caption"])
    mask = list(obj.get("valid_caption") or [1] * 5)
    image = image_template.format(image_id=int(obj["image_id"]))
    negatives = []
    for column, (key, kind) in enumerate(CECLIP_NEGATIVE_KEYS, start=1):
        text = str(obj.get(key, _INVALID))
        if text == _INVALID or not mask[column]:
            negatives.append(TextNegative(type=kind, text="", valid=False, reason="marked invalid by CE-CLIP ('###')"))
        elif " ".join(text.lower().split()) == " ".join(caption.lower().split()):
            negatives.append(TextNegative(type=kind, text=text, valid=False,
                                          reason="identical to the caption (CE-CLIP marked it valid)"))
        else:
            negatives.append(TextNegative(type=kind, text=text))
    ann = obj.get("id")
    rid = f"{image}#ann{ann}" if ann is not None else f"{image}#{caption}"
    return TextNegativeRecord(id=rid, image=image, caption=caption, image_id=obj["image_id"], negatives=negatives)


def read_ceclip_npy(paths: Iterable[str | Path], trust_pickle: bool = False,
                    image_template: str = COCO_TRAIN2014_TEMPLATE) -> list[TextNegativeRecord]:
    """Every record of the given CE-CLIP ``.npy`` files (refuses unless ``trust_pickle``)."""
    import numpy as np

    files = expand_npy_paths(paths)
    if not trust_pickle:
        raise DataError(
            "CE-CLIP .npy files are Python pickles and can run code when loaded; pass --trust-pickle "
            "(trust_pickle=True) only for files from a trusted source"
        )
    records = []
    for f in files:
        try:
            data = np.load(f, allow_pickle=True)
        except Exception as exc:  # numpy raises several types for corrupt files
            raise ManifestError(f"{f}: cannot read as a NumPy file: {exc}") from exc
        for i, obj in enumerate(data.tolist() if hasattr(data, "tolist") else data):
            if not isinstance(obj, dict) or "caption" not in obj or "image_id" not in obj:
                raise ManifestError(f"{f}: item {i} is not a CE-CLIP record (needs caption, image_id)")
            records.append(convert_ceclip_record(obj, image_template))
    return records
