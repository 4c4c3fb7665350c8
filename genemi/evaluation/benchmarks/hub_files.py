"""Benchmark files as the Hugging Face hub ships them: Parquet tables, and images embedded in them.

Parquet is read with pyarrow; errors name the file. An embedded image (the ``datasets`` ``Image`` feature, a
struct of ``bytes`` and ``path``; or a plain binary column) is written to a file once, so the rest of genemi
keeps seeing image files (:class:`~genemi.evaluation.scoring.ImageRef`):
``<cache>/<SHA-256 of the Parquet file, 20 hex>/<row>_<column><ext>`` with an ``index.json`` written last.
A later run finds the index (and every file at its recorded size) and reads only the text columns. The
cache defaults to ``$GENEMI_CACHE/embedded_images`` (``~/.cache/genemi/embedded_images``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from genemi.errors import BackendUnavailable, ManifestError
from genemi.evaluation.scoring import file_digest
from genemi.manifest import write_atomic

INDEX = "index.json"


def default_image_cache() -> Path:
    return Path(os.environ.get("GENEMI_CACHE") or Path.home() / ".cache" / "genemi") / "embedded_images"


def _parquet_file(path: Path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a declared dependency
        raise BackendUnavailable("reading Parquet files needs pyarrow (pip install pyarrow)") from exc
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise ManifestError(f"{path}: not a readable Parquet file: {exc}") from exc


def read_parquet(path: str | Path, columns: Sequence[str], optional: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rows of a Parquet file, restricted to ``columns`` (each required) and those of ``optional`` it has."""
    import pyarrow as pa

    path = Path(path)
    pf = _parquet_file(path)
    names = pf.schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise ManifestError(f"{path}: no column {', '.join(map(repr, missing))} (it has {', '.join(names)})")
    try:
        return pf.read(columns=[*columns, *(c for c in optional if c in names and c not in columns)]).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        raise ManifestError(f"{path}: cannot read the Parquet data: {exc}") from exc


def _suffix(data: bytes, name: str | None) -> str:
    for magic, ext in ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"), (b"BM", ".bmp")):
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return Path(name).suffix.lower() if name and Path(name).suffix else ".img"


def _image_value(value: Any, where: str) -> tuple[bytes | None, str | None]:
    """(embedded bytes, path) of one image cell."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, (bytes, bytearray)):
        data, path = bytes(value), None
    elif isinstance(value, str):
        data, path = None, value
    else:
        data, path = None, None
    if not data and not path:
        raise ManifestError(f"{where}: no image (expected a struct of bytes/path, bytes, or a path; "
                            f"got {type(value).__name__})")
    return (bytes(data) if data else None), path


def embedded_images(parquet: str | Path, columns: Sequence[str],
                    cache: str | Path | None = None) -> list[dict[str, Path]]:
    """For each row of ``parquet``, ``column -> image file`` for the image ``columns``; images embedded as bytes
    are written under ``cache`` once per version of the file, images given only by path are used in place
    (relative paths from the Parquet file's folder)."""
    from genemi.errors import DataError

    parquet = Path(parquet)
    folder = Path(cache or default_image_cache()) / file_digest(parquet)[:20]
    index = _read_index(folder, columns)
    if index is None:
        try:
            index = _extract(parquet, columns, folder)
        except OSError as exc:
            raise DataError(f"cannot write the images embedded in {parquet} to {folder}: {exc} (set the "
                            "benchmark's image_cache to a writable folder)") from exc
    return [{c: folder / row[c] if isinstance(row[c], str) else Path(row[c]["path"]) for c in columns}
            for row in index]


def _extract(parquet: Path, columns: Sequence[str], folder: Path) -> list[dict]:
    """Write the embedded images of ``columns`` to ``folder`` (a few rows in memory at a time); the index rows."""
    import pyarrow as pa

    pf = _parquet_file(parquet)
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise ManifestError(f"{parquet}: no column {', '.join(map(repr, missing))} "
                            f"(it has {', '.join(pf.schema_arrow.names)})")
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    try:
        batches = pf.iter_batches(batch_size=32, columns=list(columns))
        for row in (r for batch in batches for r in batch.to_pylist()):
            n, entry = len(entries), {}
            for col in columns:
                data, path = _image_value(row[col], f"{parquet}: row {n}, column {col!r}")
                if data is None:
                    entry[col] = {"path": str(Path(path) if Path(path).is_absolute() else parquet.parent / path)}
                    continue
                target = folder / f"{n}_{col}{_suffix(data, path)}"
                if not (target.is_file() and target.stat().st_size == len(data)):
                    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                    tmp.write_bytes(data)
                    os.replace(tmp, target)
                entry[col], entry[f"{col}.size"] = target.name, len(data)
            entries.append(entry)
    except pa.ArrowException as exc:
        raise ManifestError(f"{parquet}: cannot read the Parquet data: {exc}") from exc
    index = {"source": str(parquet), "columns": list(columns), "rows": entries}
    write_atomic(folder / INDEX, json.dumps(index).encode())
    return entries


def _read_index(folder: Path, columns: Sequence[str]) -> list[dict] | None:
    """The index of a complete earlier extraction (every file present at its size), else None."""
    try:
        data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        if data["columns"] != list(columns):
            return None
        for row in data["rows"]:
            for col in columns:
                if isinstance(row[col], str) and (folder / row[col]).stat().st_size != row[f"{col}.size"]:
                    return None
        return data["rows"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
