"""Image files a stage writes next to its manifest (``variations/``, ``negatives/``): paths built from record ids,
every component sanitised and the result checked to stay inside the stage's folder; atomic writes (a temporary
file in the same folder, then ``os.replace``), so a killed run never leaves half an image; the temporary files of
a killed run removed when their folder is written again.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from genemi.errors import DataError

TMP_PREFIX = ".tmp-"  # unfinished image files (ignored by merge, removed when their folder is written again)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_component(text: str, limit: int = 100) -> str:
    """One path component from data: ``[A-Za-z0-9._-]`` kept, anything else ``_``, no leading dot (so never
    ``.``, ``..`` or hidden), at most ``limit`` characters; a name that had to change gets a short hash of the
    original so that different names stay different."""
    clean = _UNSAFE.sub("_", text)
    clean = re.sub(r"^\.+", lambda m: "_" * len(m[0]), clean) or "_"
    if clean != text or len(clean) > limit:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        clean = f"{clean[:limit]}-{digest}"
    return clean


def id_tail(child_id: str, parent_id: str) -> str:
    """``cap_0/neg_1`` of ``<parent id>/cap_0/neg_1``; an id that does not start with its parent's is kept whole."""
    return child_id[len(parent_id) + 1 :] if child_id.startswith(parent_id + "/") else child_id


def contained_path(output_dir: Path, folder: str, components: Sequence[str], name: str, what: str) -> Path:
    """``output_dir/folder/<each component sanitised>/name`` (``name``: a file name built from sanitised parts),
    refused (DataError naming ``what``) unless it lies strictly inside ``output_dir/folder``."""
    root = Path(output_dir) / folder
    path = root.joinpath(*(safe_component(c) for c in components), name)
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root) or path.resolve() == resolved_root:
        raise DataError(f"{what}: image path {path} would leave {root}")
    return path


def write_image_atomic(path: Path, array: np.ndarray, fmt: str) -> None:
    """Write an RGB image through a temporary file in the same folder + ``os.replace`` (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(TMP_PREFIX + path.name)
    img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    with open(tmp, "wb") as fh:
        if fmt == "png":
            img.save(fh, format="PNG")
        else:
            img.save(fh, format="JPEG", quality=95)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def remove_leftovers(folder: Path) -> None:
    """Remove the unfinished image files a killed run left in ``folder``."""
    if folder.is_dir():
        for entry in os.scandir(folder):
            if entry.name.startswith(TMP_PREFIX) and entry.is_file():
                Path(entry.path).unlink(missing_ok=True)
