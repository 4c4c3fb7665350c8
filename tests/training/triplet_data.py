"""Whole-image hard negatives (TripletCLIP triplets) built from the shapes data, in each format the trainer reads:
``triplets.jsonl`` (TripletRecord), a TSV with negative columns and WebDataset shards with negative images."""

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from genemi.records import TripletRecord
from genemi.training.data import read_variation_records


@dataclass(frozen=True)
class TripletFiles:
    jsonl: Path  # two TripletRecords per source image (its item 0 and item 1 recoloured)
    tsv: Path  # filepath, title, neg_caption, neg_image; the last row has empty negative cells
    shards: str  # 2 shards; see write_triplet_shards
    records: list[TripletRecord]
    num_sources: int


def triplet_records(shapes) -> list[TripletRecord]:
    """A source image + caption, and a variation of one of its items (false of the source) with its caption."""
    out = []
    for rec in read_variation_records(shapes.variations_jsonl):
        item, var = rec.id.split("/")[1:]
        if var != "var_0":
            continue
        out.append(TripletRecord(id=f"{rec.origin_name}/neg_{item[-1]}", image=rec.source,
                                 caption=rec.original_captions[0], neg_caption=rec.captions[0], neg_image=rec.save,
                                 kind="replace_attribute"))  # fmt: skip
    return out


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_triplet_shards(folder: Path, shapes, records: list[TripletRecord], corrupt_negative: int | None = None,
                         with_negatives: bool = True) -> str:  # fmt: skip
    """One sample per source image (its first triplet) over 2 shards: png + txt + json (a text negative) +
    ``neg_caption.txt`` + ``neg_image.png``; every third sample spells them ``neg_txt`` + ``neg_png``.
    Sample ``corrupt_negative`` gets a negative image that is no image. Returns the brace pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    firsts = [r for r in records if r.id.endswith("/neg_0")]
    for s in range(2):
        with tarfile.open(folder / f"shard-{s:03d}.tar", "w") as tar:
            for j, r in enumerate(firsts[s::2]):
                index, key = 2 * j + s, f"{s:03d}{j:05d}"
                _add(tar, f"{key}.png", (shapes.images / r.image).read_bytes())
                _add(tar, f"{key}.txt", r.caption.encode())
                _add(tar, f"{key}.json", json.dumps({"negatives": [f"text negative {index}"]}).encode())
                if not with_negatives:
                    continue
                neg = b"not a png" if index == corrupt_negative else (shapes.images / r.neg_image).read_bytes()
                cap_ext, img_ext = ("neg_txt", "neg_png") if index % 3 == 2 else ("neg_caption.txt", "neg_image.png")
                _add(tar, f"{key}.{cap_ext}", r.neg_caption.encode())
                _add(tar, f"{key}.{img_ext}", neg)
    return str(folder / "shard-{000..001}.tar")


def write_triplet_files(folder: Path, shapes) -> TripletFiles:
    folder.mkdir(parents=True, exist_ok=True)
    records = triplet_records(shapes)
    jsonl = folder / "triplets.jsonl"
    jsonl.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in records))
    firsts = [r for r in records if r.id.endswith("/neg_0")]
    rows = [f"{r.image}\t{r.caption}\t{r.neg_caption}\t{r.neg_image}\n" for r in firsts[:-1]]
    rows.append(f"{firsts[-1].image}\t{firsts[-1].caption}\t\t\n")
    tsv = folder / "triplets.tsv"
    tsv.write_text("filepath\ttitle\tneg_caption\tneg_image\n" + "".join(rows))
    shards = write_triplet_shards(folder / "shards", shapes, records)
    return TripletFiles(jsonl, tsv, shards, records, shapes.num_sources)
