"""A finished run's folder, as the tools after ``genemi generate`` (export, stats, gallery, regenerate) read it:
the folder itself and what its ``run_summary.json`` recorded (the run's configuration, its image folder). Paths
the run was given relative to the folder it was started in (``working_dir``) resolve from anywhere."""

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


def _working_dir(output_dir: Path) -> Path | None:
    """The folder the run was started in (``working_dir`` of its summary; older runs did not record it)."""
    try:
        value = json.loads((output_dir / RUN_SUMMARY).read_text(encoding="utf-8")).get("working_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return Path(value) if isinstance(value, str) and value else None


def recorded_path(value: str, output_dir: Path, key: str, flag: str) -> Path:
    """A path the run recorded (``config.<key>`` of its summary), found from wherever the tool runs: as it is
    when absolute, else relative to the folder the run was started in (``working_dir``), else to the current
    folder. A ConfigError naming ``flag``, the flag that overrides it, when none of these exists."""
    path = Path(value).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        started = _working_dir(output_dir)
        candidates = ([started / path] if started is not None else []) + [Path.cwd() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise ConfigError(f"{output_dir / RUN_SUMMARY} records {key} {value!r}, which is not found "
                      f"(looked at {', '.join(str(c) for c in candidates)}); give {flag} PATH")


def input_dir_from_summary(output_dir: Path) -> Path:
    """``config.input_dir`` of the run's summary, resolved by :func:`recorded_path` (a ConfigError asking for
    --input-dir otherwise)."""
    path = output_dir / RUN_SUMMARY
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["config"]["input_dir"]
    except FileNotFoundError:
        value = None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read config.input_dir from {path}: {exc}; give --input-dir") from exc
    if not value:
        raise ConfigError(f"no --input-dir given and {path} does not name one (config.input_dir); give --input-dir")
    return recorded_path(value, output_dir, "input_dir", "--input-dir")
