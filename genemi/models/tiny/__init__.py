"""Tiny randomly initialised models of the real architectures, written in their real on-disk formats.

Tests and ``make demo`` build these and then load them through the same loaders users hit with real
checkpoints. Each builder takes ``(out_dir, seed)`` and returns the paths it wrote.
"""

from genemi.models.tiny.clip import save_tiny_clip

#: name -> builder(out_dir: Path, seed: int) -> dict[str, Path]
TINY_BUILDERS = {
    "clip": save_tiny_clip,
}

__all__ = ["TINY_BUILDERS", "save_tiny_clip"]
