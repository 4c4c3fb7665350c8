"""The run-wide data the pages load on demand, never on every page: the search index
(``data/search-0001.js``, ...) and every scored variation's scores for the run-wide pass count
(``data/scores-0001.js``, ...).

Pages are opened as ``file://`` URLs, where fetch/XHR of local JSON is blocked, so each shard is a script that
hands its rows to the page: ``galleryShard("search", 1, [...]);``. Shards hold whole rows and stay near
:data:`SHARD_BYTES`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from genemi.generation_pipeline.gallery.loading import Row
from genemi.manifest import write_atomic
from genemi.score_filters import DEFAULT_IVA_SCOPE, iva_of

#: the target size of one shard file
SHARD_BYTES = 256 * 1024
#: where the shards go, under the gallery folder
DATA_DIR = "data"
#: what an earlier version of the gallery wrote instead (loaded by every page): removed
LEGACY_FILES = ("run-scores.js",)

_SHARD_RE = re.compile(r"(search|scores)-\d{4,}\.js")


def search_rows(rows: list[Row], per_page: int) -> list[list]:
    """``[page, item id, image id, item label, image caption, [[variation id, short label, caption, ...]]]``; a
    variation id under its item's id is written relative to it (``"/var_0"``)."""
    def vid(item_id: str, variation_id: str) -> str:
        return variation_id[len(item_id):] if variation_id.startswith(item_id + "/") else variation_id

    return [[k // per_page + 1, r.item.id, r.image.id, r.item.item, r.image.caption or "",
             [[vid(r.item.id, v.id), v.short, *v.captions] for v in r.item.variations]] for k, r in enumerate(rows)]


def score_rows(rows: list[Row], iva_scope: str = DEFAULT_IVA_SCOPE) -> list[list]:
    """``[mean ITM logit, IVA of iva_scope]`` of every painted variation of a scored image (null: that score is
    missing)."""
    return [[v.mean_itm, iva_of(v, iva_scope)] for r in rows if r.scored for v in r.item.variations
            if v.status == "ok"]


def _encode(kind: str, number: int, rows: list[str]) -> bytes:
    # allow_nan: a non-finite score is written NaN / Infinity, JavaScript literals the page fails every threshold on
    return f'galleryShard("{kind}",{number},[{",".join(rows)}]);\n'.encode("ascii")


def write_shards(gallery_dir: Path, kind: str, rows: list[list]) -> list[str]:
    """Write ``rows`` as ``data/<kind>-0001.js``, ...; returns the file names (none when there are no rows)."""
    folder = gallery_dir / DATA_DIR
    folder.mkdir(exist_ok=True)
    names, chunk, size = [], [], 0
    encoded = (json.dumps(row, separators=(",", ":"), ensure_ascii=True, allow_nan=True) for row in rows)
    for text in encoded:
        if chunk and size + len(text) > SHARD_BYTES:
            names.append(_flush(folder, kind, len(names) + 1, chunk))
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        names.append(_flush(folder, kind, len(names) + 1, chunk))
    return names


def _flush(folder: Path, kind: str, number: int, chunk: list[str]) -> str:
    name = f"{kind}-{number:04d}.js"
    write_atomic(folder / name, _encode(kind, number, chunk))
    return name


def remove_stale_shards(gallery_dir: Path, written: set[str]) -> None:
    """Shards an earlier, larger gallery left, and the files an earlier version wrote instead."""
    for path in (gallery_dir / DATA_DIR).glob("*.js"):
        if _SHARD_RE.fullmatch(path.name) and path.name not in written:
            path.unlink()
    for name in LEGACY_FILES:
        (gallery_dir / name).unlink(missing_ok=True)
