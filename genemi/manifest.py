"""JSONL manifests: validated reading (file:line errors) and crash-safe appending.

A manifest is one JSON object per line. Appends are written as whole lines in one ``write`` followed by
flush + fsync, so a crash can at worst leave a truncated *last* line; readers detect it, warn and drop it
(the record is then simply redone on resume).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

from pydantic import BaseModel, ValidationError

from genemi.errors import ManifestError

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=BaseModel)


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-empty line; a truncated final line is dropped with a warning."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(f"manifest not found: {path}") from exc
    lines = raw.split(b"\n")
    ends_with_newline = raw.endswith(b"\n")
    for index, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        is_last = index == len(lines) or (index == len(lines) - 1 and ends_with_newline)
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if is_last and not ends_with_newline:
                logger.warning("%s:%d: dropping truncated last line (interrupted write)", path, index)
                return
            if isinstance(exc, UnicodeDecodeError):
                raise ManifestError(f"{path}:{index}: byte {exc.start + 1} of the line (0x{line[exc.start]:02x}) is "
                                    "not valid UTF-8; pass --encoding for a caption file in another encoding, or re-encode it as "
                                    "UTF-8") from exc
            raise ManifestError(f"{path}:{index}: invalid JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise ManifestError(f"{path}:{index}: expected a JSON object, got {type(obj).__name__}")
        yield index, obj


def read_records(path: str | Path, record_type: type[R]) -> list[R]:
    """Read and validate every record of a JSONL manifest; errors name the file and line."""
    return validate_records(path, iter_json_lines(path), record_type)


def validate_records(path: str | Path, lines: Iterable[tuple[int, dict]], record_type: type[R]) -> list[R]:
    """Validate ``(line number, object)`` pairs read from ``path``; errors name the file and line."""
    records = []
    for line_no, obj in lines:
        try:
            records.append(record_type.model_validate(obj))
        except ValidationError as exc:
            raise ManifestError(f"{path}:{line_no}: invalid {record_type.__name__}: {_short(exc)}") from exc
    return records


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<record>"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def encode_line(obj: dict) -> str:
    """One manifest line (without the newline): compact JSON, UTF-8 kept as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class ManifestWriter:
    """Append records to a JSONL manifest atomically per batch (one write + flush).

    A flushed batch survives a killed process (it is in the OS page cache); ``fsync`` (survives power loss)
    runs at most every ``fsync_interval`` seconds and on close, so tiny batches do not wait on the disk.
    If the file ends with a truncated line from an earlier crash, it is cut off before appending, so a
    resumed run never glues a new record onto half an old one.
    """

    def __init__(self, path: str | Path, fsync_interval: float = 5.0):
        self.fsync_interval, self._last_sync = fsync_interval, time.monotonic()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._fh = open(self.path, "ab")

    def _repair_tail(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1
            logger.warning("%s: removing a truncated last line left by an interrupted run", self.path)
            fh.truncate(cut)

    def write(self, records: Iterable[BaseModel | dict]) -> int:
        """Append ``records``; returns how many were written."""
        lines = []
        for rec in records:
            obj = rec.model_dump(mode="json") if isinstance(rec, BaseModel) else rec
            lines.append(encode_line(obj))
        if not lines:
            return 0
        self._fh.write(("\n".join(lines) + "\n").encode("utf-8"))
        self._fh.flush()
        if time.monotonic() - self._last_sync >= self.fsync_interval:
            os.fsync(self._fh.fileno())
            self._last_sync = time.monotonic()
        return len(lines)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def require_writable_dir(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and prove it writable before any work; a ConfigError naming ``what``."""
    from genemi.errors import ConfigError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to {what} {folder}: {exc.strerror or exc}") from exc
    return folder


def check_writable_dir(folder: str | Path, what: str) -> Path:
    """Prove, without creating anything, that ``folder`` can be created or written: it is a folder or does not
    exist, and its nearest existing parent is a writable folder. A ConfigError naming ``what`` otherwise. The
    folder itself is created by the first write, so a run stopped by a later check leaves nothing behind."""
    from genemi.errors import ConfigError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {folder}: is a file, not a folder; give a folder")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {folder}: cannot create it, {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {folder}: cannot write there ({probe} is not writable)")
    return folder


def require_writable_file(path: str | Path, flag: str) -> Path:
    """Check, before any work, that ``path`` can be created or appended to (not a folder, its folder can be made
    and written); a ConfigError naming ``flag`` otherwise."""
    from genemi.errors import ConfigError

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with open(path, "ab"):
                pass
        elif not os.access(path.parent, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from exc
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or an odd number): leave its file alone
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove what a killed writer of ``path`` left next to it: ``.<name>.<pid>.tmp`` files (:func:`write_atomic`)
    and ``.<name>.tmp-<pid>`` / ``.<name>.old-<pid>`` folders (whole-folder replacements) whose process is gone.
    Temporaries of a live process (another writer, or this one) are kept. Returns what was removed."""
    import re
    import shutil

    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}(?:\.(\d+)\.tmp|\.(?:tmp|old)-(\d+))")
    removed = []
    for entry in path.parent.glob(f".{path.name}.*") if path.parent.is_dir() else ():
        m = pattern.fullmatch(entry.name)
        if not m or _alive(int(m.group(1) or m.group(2))):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temporary file in the same folder, fsync, rename); temporaries
    of the same output left by a killed writer are removed first."""
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def merge_side_file(path: str | Path, side: str | Path) -> int:
    """Fold the records of ``side`` into the manifest ``path``: a record replaces the one with its id in
    place, new ids are appended in ``side``'s order. Atomic; idempotent if interrupted before the side
    file is removed. Returns how many records were merged."""
    path, side = Path(path), Path(side)
    if not side.exists():
        return 0
    updates: dict[str, bytes] = {}
    for _, obj in iter_json_lines(side):
        updates[str(obj["id"])] = encode_line(obj)
    merged = len(updates)
    lines = []
    for _, obj in iter_json_lines(path) if path.exists() else ():
        key = str(obj["id"])
        lines.append(updates.pop(key) if key in updates else encode_line(obj))
    lines.extend(updates.values())
    write_atomic(path, "".join(line + "\n" for line in lines).encode("utf-8"))
    side.unlink()
    return merged


class ManifestIndex:
    """A manifest looked up by record id, lazily: the first lookup indexes every line's byte offset; each lookup
    then parses only the line it needs (memory stays O(records), not O(their contents), e.g. for masks). A
    truncated last line (an interrupted write) is not indexed; any other bad line is a ManifestError with its
    line number. Safe to use from several threads."""

    def __init__(self, path: str | Path, record_type: type[R]):
        self.path, self.record_type = Path(path), record_type
        self._lines: dict[str, tuple[int, int, int]] | None = None
        self._lock = threading.Lock()

    def _index(self) -> dict[str, tuple[int, int, int]]:
        with self._lock:
            if self._lines is None:
                lines, offset = {}, 0
                try:
                    fh = open(self.path, "rb")
                except FileNotFoundError as exc:
                    raise ManifestError(f"manifest not found: {self.path}") from exc
                with fh:
                    for number, line in enumerate(fh, start=1):
                        if line.strip():
                            try:
                                lines[str(json.loads(line)["id"])] = (offset, len(line), number)
                            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
                                if not line.endswith(b"\n"):
                                    break  # a truncated last line: that record is not there
                                raise ManifestError(f"{self.path}:{number}: not a {self.record_type.__name__}: "
                                                    f"{exc}") from exc
                        offset += len(line)
                self._lines = lines
            return self._lines

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._index()

    def get(self, record_id: str) -> R | None:
        """The record with this id, validated, or None when the manifest has none."""
        where = self._index().get(record_id)
        if where is None:
            return None
        offset, length, number = where
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            line = fh.read(length)
        try:
            return self.record_type.model_validate_json(line)
        except ValidationError as exc:
            raise ManifestError(f"{self.path}:{number}: invalid {self.record_type.__name__}: {_short(exc)}") from exc


def done_ids(path: str | Path) -> set[str]:
    """Ids of the records already present in a manifest (empty if it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return set()
    return {str(obj["id"]) for _, obj in iter_json_lines(path) if "id" in obj}
