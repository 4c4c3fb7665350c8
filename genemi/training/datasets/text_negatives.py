"""``text_negatives``: JSONL of :class:`~genemi.records.TextNegativeRecord` (caption + typed hard negatives +
validity), one pair each, for ``--loss ceclip|negclip``."""

from __future__ import annotations

from pathlib import Path

from genemi.caption_files import iter_json_objects
from genemi.errors import DataError
from genemi.manifest import validate_records
from genemi.records import TextNegativeRecord
from genemi.training.datasets.base import DataRequest, PairSpec, TrainData, join_root
from genemi.training.datasets.coco import read_pool
from genemi.training.datasets.mined import flat_train_data


def read_text_negative_pairs(path: str | Path, image_root: Path | None, encoding: str = "utf-8") -> list[PairSpec]:
    """Caption + typed hard negatives, one pair each; negatives keep their file order (type order).

    Every record must carry the same negative types in the same order (the losses index negatives by
    position): a file that mixes layouts, e.g. written with ``--types ceclip`` and then the default, is refused.
    """
    records = validate_records(path, iter_json_objects(path, encoding), TextNegativeRecord)
    layouts: dict[tuple[str, ...], int] = {}
    for r in records:
        key = tuple(n.type for n in r.negatives)
        layouts[key] = layouts.get(key, 0) + 1
    if len(layouts) > 1:
        (a, na), (b, nb) = sorted(layouts.items(), key=lambda kv: -kv[1])[:2]
        raise DataError(f"{path}: records carry different negative layouts ({na} with {len(a)} negatives "
                        f"[{', '.join(a[:4])}{', ...' if len(a) > 4 else ''}], {nb} with {len(b)} "
                        f"[{', '.join(b[:4])}{', ...' if len(b) > 4 else ''}]); regenerate the file with one --types")
    return [
        PairSpec(join_root(image_root, r.image), (r.caption,), tuple(n.text for n in r.negatives),
                 tuple(n.valid for n in r.negatives))
        for r in records
    ]


def build(req: DataRequest) -> TrainData:
    pairs = read_text_negative_pairs(req.dataset(), req.cfg.image_root, req.cfg.encoding)
    return flat_train_data(req, pairs, read_pool(req.cfg))
