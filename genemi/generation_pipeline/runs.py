"""A finished run's folder, as the tools after ``genemi generate`` (export, stats, gallery, regenerate) read it:
the folder itself and what its ``run_summary.json`` recorded (the run's configuration, its image folder)."""

from __future__ import annotations

import json
from pathlib import Path

from genemi.errors import ConfigError

RUN_SUMMARY = "run_summary.json"


def run_folder(output_dir: str | Path) -> Path:
    """The run's output folder (a ConfigError when it is not one)."""
    root = Path(output_dir)
    if not root.is_dir():
        raise ConfigError(f"output folder not found: {root}")
    return root


def run_config(output_dir: Path, what: str) -> dict:
    """The configuration ``run_summary.json`` recorded; ``what`` says who needs it, for the error."""
    path = output_dir / RUN_SUMMARY
    if not path.is_file():
        raise ConfigError(f"{path} not found: {what}")
    try:
        config = json.loads(path.read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path} holds no run configuration: {what}")
    return config


def input_dir_from_summary(output_dir: Path) -> Path:
    """``config.input_dir`` of the run's summary (a ConfigError asking for --input-dir otherwise)."""
    path = output_dir / RUN_SUMMARY
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["config"]["input_dir"]
    except FileNotFoundError:
        value = None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read config.input_dir from {path}: {exc}; give --input-dir") from exc
    if not value:
        raise ConfigError(f"no --input-dir given and {path} does not name one (config.input_dir); give --input-dir")
    return Path(value)
