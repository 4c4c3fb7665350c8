"""Training-set files of an export, each written whole to a temporary name and renamed (a rerun replaces them
with byte-identical files, a killed export leaves the old ones): JSONL records, tab-separated tables (open_clip
CSV), WebDataset shards."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

from pydantic import BaseModel

from genemi.errors import ImageError

SHARD_PATTERN = "shard-%06d.tar"
_IMAGE_EXTS = {".jpg": "jpg", ".jpeg": "jpg", ".png": "png", ".webp": "webp"}


def image_payload(path: Path) -> tuple[str, bytes]:
    """(webdataset extension, bytes): the file's own bytes, or a PNG re-encoding of another format."""
    ext = _IMAGE_EXTS.get(path.suffix.lower())
    try:
        if ext is not None:
            return ext, path.read_bytes()
        from PIL import Image

        with Image.open(path) as img:
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="PNG")
        return "png", buf.getvalue()
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from exc


def json_bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def write_jsonl(path: Path, records: Sequence[BaseModel]) -> dict:
    from genemi.manifest import encode_line, write_atomic

    lines = "".join(encode_line(r.model_dump(mode="json", exclude_none=True)) + "\n" for r in records)
    write_atomic(path, lines.encode("utf-8"))
    return {"path": str(path), "records": len(records)}


def write_tsv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> dict:
    """A tab-separated table (open_clip's CSV with ``--csv-separator '\\t'``)."""
    from genemi.manifest import write_atomic

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    write_atomic(path, buf.getvalue().encode("utf-8"))
    return {"path": str(path), "rows": count}


def _replace_dir(tmp: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def write_shards(folder: Path, samples: Iterable[dict], shard_size: int) -> dict:
    """WebDataset shards of ``shard_size`` samples under ``folder``, replaced as a whole."""
    import webdataset as wds

    from genemi.manifest import remove_stale_temporaries

    remove_stale_temporaries(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        pattern = str(tmp).replace("%", "%%") + "/" + SHARD_PATTERN
        writer = wds.ShardWriter(pattern, maxcount=shard_size, maxsize=float("inf"), verbose=0, mtime=0.0)
        try:
            count = 0
            for sample in samples:
                writer.write(sample)
                count += 1
        finally:
            writer.close()
        shards = sorted(p.name for p in tmp.glob("shard-*.tar"))
        for name in shards:
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        _replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    last = len(shards) - 1
    pattern = str(folder / (f"shard-{{000000..{last:06d}}}.tar" if last > 0 else "shard-000000.tar"))
    return {"path": pattern, "shards": [str(folder / s) for s in shards], "samples": count}
