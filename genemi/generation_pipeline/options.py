"""Stage options: config-dataclass fields that carry their command-line flag and help.

Each stage's config section is a dataclass whose fields are declared with :func:`option`; the pipeline's
parser, the YAML preset section and the check that every given option is used are all derived from them.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import field
from typing import Any, ClassVar, Iterable

from genemi.errors import ConfigError
from genemi.generation_pipeline.backends import BackendRegistry


class StageSection:
    """Base of every stage's config section (a dataclass with ``backend`` and ``batch_size`` fields).
    ``backends`` names the stage's backend registry; building a section checks the backend name, the batch size
    and then the section's own :meth:`validate`, so a bad value from a flag, a preset or ``--set`` is refused
    with the flag's name before anything runs."""

    backends: ClassVar[BackendRegistry]
    #: the backends that ask the run's chat model (section ``llm``, :mod:`genemi.generation_pipeline.chat`)
    llm_backends: ClassVar[tuple[str, ...]] = ()

    @property
    def uses_llm(self) -> bool:
        return self.backend in self.llm_backends

    def __post_init__(self) -> None:
        self.backends.check_name(self.backend)
        if isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.backends.stage}={self.batch_size}: must be at least 1")
        for f in dataclasses.fields(self):
            allowed, value = f.metadata.get("choices"), getattr(self, f.name)
            if allowed and value is not None and value not in allowed:
                raise ConfigError(f"{flag_of(f)} {value!r}: choose {' or '.join(map(str, allowed))}")
        self.validate()

    def validate(self) -> None:
        """The section's own checks (raise a ConfigError naming the flag)."""


def require_positive(value: int, flag: str) -> None:
    if value < 1:
        raise ConfigError(f"{flag} must be at least 1, not {value}")


def require_fraction(value: float, flag: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{flag} must be in [0, 1], not {value}")


def option(default: Any = None, help: str = "", *, flag: str | None = None, aliases: Iterable[str] = (),
           backends: Iterable[str] | None = None, choices: Iterable[Any] | None = None,
           default_factory: Any = None, metavar: str | None = None, content: bool = True,
           stages: Iterable[str] | None = None) -> Any:
    """A config field with its flag (default ``--field-name``), help text, and, where it only applies to
    some backends, their names (giving it with another backend is an error that says why). ``content=False``
    marks a setting that cannot change what the stage writes (batch sizes, timeouts, concurrency): it is left
    out of the stage's settings fingerprint (:mod:`genemi.generation_pipeline.settings`). ``stages``: in a section
    several stages share, the stages the option applies to (only theirs are shaped by it)."""
    meta = {"help": help, "flag": flag, "aliases": tuple(aliases), "backends": tuple(backends) if backends else None,
            "choices": tuple(choices) if choices is not None else None, "metavar": metavar, "content": content,
            "stages": tuple(stages) if stages else None}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def flag_of(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _arg_type(hint: Any):
    """argparse ``type=`` for simple field types (None: a plain string or a switch)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) and args else hint
    return {int: int, float: float}.get(base)


def add_section_arguments(group: argparse._ArgumentGroup, section_cls: type, dest_prefix: str,
                          choices: dict[str, Iterable[Any]] | None = None) -> None:
    """One flag per field of ``section_cls`` (``choices`` overrides a field's choices); values land in
    ``args.<dest_prefix>__<field>`` (None = not given)."""
    hints = typing.get_type_hints(section_cls)
    for f in dataclasses.fields(section_cls):
        if "help" not in f.metadata:
            continue
        hint = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else None
        text = f.metadata["help"]
        if f.metadata.get("backends"):
            text += f" [only {' / '.join(f.metadata['backends'])}]"
        if f.metadata.get("stages"):
            text += f" [stage {' / '.join(f.metadata['stages'])}]"
        kw: dict[str, Any] = {"dest": f"{dest_prefix}__{f.name}", "default": None}
        if hint is bool:
            kw["action"] = argparse.BooleanOptionalAction
            text += f" (default: {'on' if default else 'off'})"
        else:
            kw["type"] = _arg_type(hint) or str
            allowed = (choices or {}).get(f.name) or f.metadata.get("choices")
            if allowed:
                kw["choices"] = tuple(allowed)
            if not allowed:
                kw["metavar"] = f.metadata.get("metavar") or f.name.upper()
            if default not in (None, ""):
                text += f" (default: {default})"
        group.add_argument(flag_of(f), *f.metadata["aliases"], help=text, **kw)


def check_backend_options(section: Any, given: Iterable[str], backend_field: str = "backend") -> None:
    """Refuse options that were given (flag or preset) but do not apply to the section's chosen backend."""
    backend = getattr(section, backend_field, None)
    fields = {f.name: f for f in dataclasses.fields(section)}
    for name in given:
        f = fields.get(name)
        allowed = f.metadata.get("backends") if f is not None else None
        if allowed and backend not in allowed:
            backend_flag = flag_of(fields[backend_field]) if backend_field in fields else backend_field
            raise ConfigError(f"{flag_of(f)} applies only to {backend_flag} {' or '.join(allowed)}, "
                              f"not {backend_flag} {backend}; drop it or choose that backend")
