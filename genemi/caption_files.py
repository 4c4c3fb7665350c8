"""Caption annotation files, read into one flat list of :class:`CaptionEntry` (image, caption, ids).

Formats (``auto`` picks by content and extension):

* ``karpathy``: BLIP / COCO Karpathy JSON list ``[{image, caption | captions, image_id?}]``;
* ``coco``: official COCO ``captions_*.json`` (``images`` + ``annotations``);
* ``jsonl``: one object per line with ``image`` and ``caption`` (or ``captions``), optional ``id``/``image_id``;
* ``csv``: open_clip CSV/TSV with an image and a caption column.

Entry ids are stable and derived from the inputs (the COCO annotation id, else image path + a hash of
the caption), so reruns and shards agree on them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from genemi.errors import DataError, ManifestError
from genemi.manifest import iter_json_lines

CaptionFormat = Literal["auto", "karpathy", "coco", "jsonl", "csv"]
CAPTION_FORMATS = ("auto", "karpathy", "coco", "jsonl", "csv")


@dataclass(frozen=True)
class CaptionEntry:
    id: str
    image: str
    caption: str
    image_id: str | int | None = None


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """A text file's contents; bytes that are not ``encoding`` are a DataError naming file, line and byte offset."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{path} is a folder, not a file") from exc
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: byte offset {exc.start} (0x{raw[exc.start]:02x}) is not valid {encoding}; "
                        "pass --encoding (e.g. latin-1) or re-encode the file as UTF-8") from exc


def parse_json_lines(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` per non-empty line of decoded JSONL ``text``; every line must parse (a torn
    last line is an error here), errors name ``path`` and the line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise ManifestError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def iter_json_objects(path: str | Path, encoding: str = "utf-8") -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` per non-empty line of a JSONL file in ``encoding``. UTF-8 goes through the
    manifest reader, which also drops a last line torn by an interrupted write."""
    import codecs

    if codecs.lookup(encoding).name == "utf-8":
        return iter_json_lines(path)
    return parse_json_lines(Path(path), read_text(path, encoding))


def read_json(path: str | Path, encoding: str = "utf-8") -> Any:
    """Parse a JSON file; errors name the file (and line for syntax errors or undecodable bytes)."""
    try:
        return json.loads(read_text(path, encoding))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc


def caption_id(image: str, caption: str) -> str:
    return f"{image}#{hashlib.sha1(caption.encode('utf-8')).hexdigest()[:12]}"


def _entries_from_objects(path: Path, objects, where: str) -> list[CaptionEntry]:
    entries = []
    for loc, obj in objects:
        if not isinstance(obj, dict) or "image" not in obj:
            raise ManifestError(f"{path}{where}{loc}: no 'image' key")
        caps = obj.get("captions", obj.get("caption"))
        if caps is None:
            raise ManifestError(f"{path}{where}{loc}: neither 'caption' nor 'captions'")
        caps = [caps] if isinstance(caps, str) else list(caps)
        image = str(obj["image"])
        for cap in caps:
            if not isinstance(cap, str):
                raise ManifestError(f"{path}{where}{loc}: caption {cap!r} is not a string")
            given = obj.get("id") if len(caps) == 1 else None
            entries.append(CaptionEntry(str(given) if given is not None else caption_id(image, cap), image, cap,
                                        obj.get("image_id")))
    return entries


def _coco(path: Path, data: dict) -> list[CaptionEntry]:
    files = {img["id"]: img["file_name"] for img in data["images"]}
    entries = []
    for k, ann in enumerate(data["annotations"]):
        if "caption" not in ann or "image_id" not in ann:
            raise ManifestError(f"{path}: annotation {k} lacks 'caption' or 'image_id'")
        if ann["image_id"] not in files:
            raise ManifestError(f"{path}: annotation {ann.get('id', k)} names unknown image_id {ann['image_id']}")
        image = files[ann["image_id"]]
        ann_id = ann.get("id")
        entry_id = f"{image}#ann{ann_id}" if ann_id is not None else caption_id(image, ann["caption"])
        entries.append(CaptionEntry(entry_id, image, ann["caption"], ann["image_id"]))
    return entries


def read_caption_entries(
    path: str | Path,
    fmt: CaptionFormat = "auto",
    csv_img_key: str = "filepath",
    csv_caption_key: str = "title",
    csv_separator: str | None = None,
    encoding: str = "utf-8",
) -> list[CaptionEntry]:
    """Every (image, caption) of an annotation file, in file order (``encoding``: of the file's text)."""
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise DataError(f"--encoding {encoding!r}: unknown text encoding") from exc
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a caption file: give the annotation file itself (JSON: Karpathy or "
                        "COCO, JSONL, CSV or TSV)")
    if not path.is_file():
        raise DataError(f"caption file not found: {path}")
    suffix = path.suffix.lower()
    if fmt == "auto":
        fmt = "jsonl" if suffix == ".jsonl" else "csv" if suffix in (".csv", ".tsv") else "json"
    if fmt == "csv":
        sep = csv_separator or ("\t" if suffix == ".tsv" else ",")
        with io.StringIO(read_text(path, encoding), newline="") as fh:
            reader = csv.DictReader(fh, delimiter=sep)
            for key in (csv_img_key, csv_caption_key):
                if key not in (reader.fieldnames or []):
                    raise ManifestError(f"{path}: column {key!r} not found (columns: {reader.fieldnames})")
            rows = [(f"{n + 2}", {"image": r[csv_img_key], "caption": r[csv_caption_key]}) for n, r in enumerate(reader)]
        return _entries_from_objects(path, rows, ":")
    if fmt == "jsonl":
        return _entries_from_objects(path, iter_json_objects(path, encoding), ":")
    data = read_json(path, encoding)
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        if fmt not in ("json", "coco"):
            raise ManifestError(f"{path}: this is an official COCO captions file, not {fmt}")
        return _coco(path, data)
    if isinstance(data, list):
        if fmt not in ("json", "karpathy"):
            raise ManifestError(f"{path}: this is a JSON list (Karpathy layout), not {fmt}")
        return _entries_from_objects(path, enumerate(data), ": record ")
    raise ManifestError(f"{path}: not a Karpathy JSON list, a COCO captions file, JSONL or CSV")
