"""Settings fingerprints: a resumed run never mixes settings silently.

Next to each stage manifest, ``<manifest>.settings.json`` records the settings that shape its content: the
stage's options (those of its chosen backend; batch sizes, timeouts and concurrency are left out), the run's
seed and precision, and the identity of every model file or folder an option names (file sizes and a hash
of the first and last MiB of each, so a copied or moved model keeps its identity and one overwritten with
other weights does not). A rerun whose settings differ stops before any work and names the differences; ``--force`` starts the
stage over (its outputs and every later stage's are removed), ``--allow-changed-settings`` continues and
records the change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

from genemi.errors import ConfigError
from genemi.manifest import write_atomic

SUFFIX = ".settings.json"
#: folders (under a stage's output folder) written by a stage besides its manifest
STAGE_FILES = {"inpaint": ("variations",)}


def _identity(path: Path) -> dict[str, Any]:
    """What makes a model file or folder the same model: file names, sizes and the first and last MiB of each
    (a copied or moved model keeps its identity; one overwritten with other weights does not)."""
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


def stage_settings(section: Any, seed: int, dtype: str) -> dict[str, Any]:
    """The content-shaping settings of one stage's config section (plus the run's seed and dtype); options
    that name an existing file or folder are recorded with its identity."""
    values: dict[str, Any] = {"seed": seed, "dtype": dtype}
    files: dict[str, Any] = {}
    backend = getattr(section, "backend", None)
    for f in dataclasses.fields(section):
        meta = f.metadata
        if "help" not in meta or not meta.get("content", True):
            continue
        if meta.get("backends") and backend not in meta["backends"]:
            continue  # an option of another backend changes nothing
        value = getattr(section, f.name)
        if isinstance(value, str) and value and Path(value).expanduser().exists():
            files[f.name] = _identity(Path(value).expanduser())
        values[f.name] = value
    return {"settings": values, "files": files}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
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


def settings_path(out_dir: Path, manifest: str) -> Path:
    return out_dir / (manifest + SUFFIX)


def check_settings(out_dir: Path, stage: str, manifest: str, current: dict[str, Any], allow_changed: bool) -> None:
    """Refuse to append to ``manifest`` with settings other than those that wrote it (a ConfigError naming
    them), unless ``allow_changed``."""
    path = settings_path(out_dir, manifest)
    if not (out_dir / manifest).exists() or not path.exists():
        return  # nothing written yet, or a manifest from before fingerprints: adopted as it is
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable settings record ({exc}); remove it to adopt the current settings") from exc
    changed = differences(recorded, current)
    if changed and not allow_changed:
        raise ConfigError(
            f"stage {stage}: {out_dir / manifest} was written with other settings ({'; '.join(changed)}). Rerun with "
            "the same settings to resume, or --force to start this stage over (removes its outputs and every later "
            "stage's), or --allow-changed-settings to continue with mixed settings (recorded)")


def record_settings(out_dir: Path, manifest: str, current: dict[str, Any]) -> None:
    """Write the settings record; earlier different settings (``--allow-changed-settings``) are kept in
    ``history`` with how many records they wrote."""
    path = settings_path(out_dir, manifest)
    entry = dict(current)
    if path.exists() and (out_dir / manifest).exists():
        try:
            recorded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        history = recorded.pop("history", [])
        if differences(recorded, current):
            with open(out_dir / manifest, "rb") as fh:
                written = sum(1 for _ in fh)
            history.append({**recorded, "records_before_change": written})
        if history:
            entry["history"] = history
    write_atomic(path, json.dumps(entry, indent=2, sort_keys=True, default=str).encode("utf-8"))


def remove_outputs(out_dir: Path, stages: Sequence[tuple[str, str]]) -> list[str]:
    """``--force``: remove the manifests (side files, settings records) and files of the given
    ``(stage, manifest)`` pairs; returns what was removed."""
    removed = []
    for stage, manifest in stages:
        for name in (manifest, manifest + ".retry", manifest + SUFFIX):
            if (out_dir / name).exists():
                (out_dir / name).unlink()
                removed.append(name)
        for folder in STAGE_FILES.get(stage, ()):
            if (out_dir / folder).is_dir():
                shutil.rmtree(out_dir / folder)
                removed.append(folder + "/")
    return removed
