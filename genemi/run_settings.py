"""Settings records: an output that is resumed never mixes settings silently.

Next to an output file (a pipeline stage's manifest, a ``genemi negatives`` file), ``<output>.settings.json``
records the settings that shape its content, with the identity of every model file or folder a setting names
(file sizes and a hash of the first and last MiB of each, so a copied or moved model keeps its identity and
one overwritten with other weights does not). A rerun whose settings differ is refused with the differences
named, unless the caller allows the change, which is then kept in the record's ``history``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from genemi.errors import ConfigError
from genemi.manifest import write_atomic

SUFFIX = ".settings.json"


def file_identity(path: Path) -> dict[str, Any]:
    """What makes a model file or folder the same model: file names, sizes and the first and last MiB of each."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())[:64]
    digest = hashlib.sha256()
    for f in files:
        size = f.stat().st_size
        digest.update(f"{f.relative_to(path) if f != path else f.name}:{size}".encode())
        with open(f, "rb") as fh:
            digest.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), 2)
                digest.update(fh.read())
    return {"files": len(files), "sha256": digest.hexdigest()[:16]}


def fingerprint(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"settings": values, "files": identities}``: every string value naming an existing path gets its identity."""
    values = json.loads(json.dumps(dict(values), default=str))  # as it reads back from the record (tuples: lists)
    files = {k: file_identity(Path(v).expanduser()) for k, v in values.items()
             if isinstance(v, str) and v and Path(v).expanduser().exists()}
    return {"settings": values, "files": files}


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``name: old -> new`` for every setting that changed; a model path that changed but names the same
    model (same identity) does not count."""
    out = []
    o, n = old.get("settings", {}), new.get("settings", {})
    of, nf = old.get("files", {}), new.get("files", {})
    for key in sorted(set(o) | set(n)):
        a, b = o.get(key), n.get(key)
        if key in of and key in nf:
            if of[key] != nf[key]:
                out.append(f"{key}: {a} -> {b} (a different model)" if a != b else f"{key}: {b} changed on disk")
        elif a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


def settings_path(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


def _recorded(output: Path) -> dict[str, Any] | None:
    path = settings_path(output)
    if not output.exists() or not path.exists():
        return None  # nothing written yet, or an output from before settings records: adopted as it is
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable settings record ({exc}); remove it to adopt the current settings") from exc


def check_settings(output: Path, current: Mapping[str, Any], allow_changed: bool, what: str, remedy: str) -> None:
    """Refuse to resume ``output`` with settings other than those that wrote it (a ConfigError naming them and
    ``remedy``), unless ``allow_changed``."""
    recorded = _recorded(output)
    changed = differences(recorded, current) if recorded is not None else []
    if changed and not allow_changed:
        raise ConfigError(f"{what}: {output} was written with other settings ({'; '.join(changed)}). Rerun with the "
                          f"same settings to resume, or {remedy}")


def record_settings(output: Path, current: Mapping[str, Any]) -> None:
    """Write the settings record; earlier different settings (a change that was allowed) are kept in
    ``history`` with how many records they wrote."""
    entry = dict(current)
    try:
        recorded = _recorded(output) or {}
    except ConfigError:
        recorded = {}
    history = list(recorded.pop("history", []))
    if recorded and differences(recorded, current):
        with open(output, "rb") as fh:
            written = sum(1 for _ in fh)
        history.append({**recorded, "records_before_change": written})
    if history:
        entry["history"] = history
    write_atomic(settings_path(output), json.dumps(entry, indent=2, sort_keys=True, default=str).encode("utf-8"))
