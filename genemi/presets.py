"""Configuration flow: dataclass defaults < YAML preset < command-line flags and ``--set`` overrides.

This is the only module that reads YAML presets or applies overrides. Presets are parsed with
``yaml.safe_load`` (never executed); unknown keys are rejected with the nearest valid name suggested.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from genemi.errors import ConfigError

T = TypeVar("T")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-serialisable dict of a (nested) config dataclass."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(cfg)


def parse_set_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["optim.lr=1e-5", "data.workers=4"]`` into a nested dict; values are parsed as safe YAML."""
    nested: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (for example optim.lr=1e-5), got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
            if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value.strip()):
                value = float(value)  # YAML 1.1 reads "1e-5" as a string
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from exc
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is set both as a value and as a section")
        node[parts[-1]] = value
    return nested


def merge_dicts(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: values of ``update`` win; nested sections merge key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_preset(path: str | Path) -> dict[str, Any]:
    """Read a YAML preset file into a dict (empty file -> empty dict)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(
    cls: type[T],
    preset: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from its defaults, an optional YAML preset, then nested ``overrides`` (None values skipped)."""
    values: dict[str, Any] = read_preset(preset) if preset else {}
    if overrides:
        values = merge_dicts(values, _drop_none(overrides))
    source = str(preset) if preset else "overrides"
    return build_dataclass(cls, values, where=source)


def _drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            sub = _drop_none(value)
            if sub:
                out[key] = sub
        elif value is not None:
            out[key] = value
    return out


def build_dataclass(cls: type[T], values: Mapping[str, Any], where: str = "config", prefix: str = "") -> T:
    """Instantiate a (nested) dataclass from a mapping, rejecting unknown keys and coercing simple types."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: section {prefix.rstrip('.') or '<root>'} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in values if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(sorted(fields))}"
        raise ConfigError(f"{where}: unknown config key '{prefix}{key}'{hint}")
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        kwargs[name] = _coerce(hints[name], raw, f"{prefix}{name}", where)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _coerce(hint: Any, value: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, where, prefix=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value for {key}: {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: {key} must have {len(args)} entries, got {len(value)}")
            return tuple(_coerce(a, v, key, where) for a, v in zip(args, value))
        item = args[0] if args else Any
        seq = [_coerce(item, v, key, where) for v in value]
        return tuple(seq) if origin is tuple else seq
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float, Path)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
    if hint is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{where}: {key} must be a path, got {value!r}")
    return value


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, so ``--config <path>`` reproduces the run."""
    from genemi.manifest import write_atomic

    write_atomic(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False).encode("utf-8"))
