"""What produced an output, beyond its settings: the versions of the packages that computed it and genemi's own
git commit. Settings records (:mod:`genemi.generation_pipeline.settings`) carry it next to the settings; it is
recorded, never compared (a resume on a newer diffusers is allowed, and the record says so)."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

#: distribution names whose versions are recorded (import name differs for open_clip: open_clip_torch)
PACKAGES = ("torch", "diffusers", "transformers", "open_clip_torch", "genemi")


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """``{distribution: version}`` of :data:`PACKAGES`; None for one that is not installed."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.lru_cache(maxsize=1)
def genemi_commit() -> str | None:
    """The git commit of the genemi source in use (with ``-dirty`` when its tracked files changed), or None
    when genemi is not run from a git checkout (an installed wheel) or git is missing."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                "genemi"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit or None


def provenance(resolved: dict | None = None) -> dict:
    """``{"packages", "genemi_commit"}``, plus ``resolved`` (what a stage's presets and defaults resolved to,
    e.g. steps, guidance, the scheduler's class and config) when given."""
    out = {"packages": package_versions(), "genemi_commit": genemi_commit()}
    if resolved:
        out["resolved"] = resolved
    return out
