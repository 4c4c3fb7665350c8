"""Which models to evaluate, in which order: baselines first, then snapshots by epoch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from genemi.errors import ConfigError

SNAPSHOT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class ModelEntry:
    label: str  # file-name safe; names the result JSON
    pretrained: str | None
    epoch: int | None = None
    baseline: bool = False


def snapshot_epoch(path: str | Path) -> int | None:
    """The last number in the file stem: ``model_3.pt`` -> 3, ``epoch_10.pt`` -> 10, ``latest.pt`` -> None."""
    numbers = _NUMBER.findall(Path(path).stem)
    return int(numbers[-1]) if numbers else None


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("_") or "model"


def collect_models(snapshot_files: Sequence[str] = (), snapshot_folder: str | None = None,
                   baselines: Sequence[str] = ()) -> list[ModelEntry]:
    """Baselines (``NAME=PATH`` or ``NAME=`` for no weights) then snapshots sorted by epoch, then name."""
    entries: list[ModelEntry] = []
    for spec in baselines:
        name, sep, path = spec.partition("=")
        if not sep or not name:
            raise ConfigError(f"--baseline expects NAME=PATH (PATH may be empty for random weights), got {spec!r}")
        entries.append(ModelEntry(_label(name), path or None, None, True))
    files = [Path(f) for f in snapshot_files]
    if snapshot_folder:
        folder = Path(snapshot_folder)
        if not folder.is_dir():
            raise ConfigError(f"--snapshot-folder {folder}: not a folder")
        files += [f for f in folder.iterdir() if f.is_file() and f.suffix in SNAPSHOT_SUFFIXES]
    for f in files:
        if not f.exists():
            raise ConfigError(f"--snapshot-file {f}: not found")
    files = sorted(set(files), key=lambda f: (snapshot_epoch(f) is None, snapshot_epoch(f) or 0, f.name))
    entries += [ModelEntry(_label(f.stem), str(f), snapshot_epoch(f)) for f in files]
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two models would write the same result file: {sorted({l for l in labels if labels.count(l) > 1})}")
    return entries
