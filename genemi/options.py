"""Command options declared once: config-dataclass fields that carry their flag, YAML key, default, help, choices
and checks.

Every genemi command (``generate``, ``train``, ``eval``, ``negatives``, ``convert``) declares its options as
dataclass sections whose fields are made with :func:`option` (nested sections with :func:`section`). From those
declarations come:

* the parser: one flag per field (``--field-name`` unless ``flag=`` says otherwise; hyphenated names first,
  older spellings as ``aliases``), booleans as ``--x/--no-x`` (:class:`Switch`), choices from ``choices=`` or a
  ``Literal`` type, comma lists for tuple/list fields, and the default shown one way, ``(default: X)``;
* the YAML key (the field's name, nested sections as YAML sections), read with ``--config FILE.yaml`` and
  overridden with ``--set key=value`` (:func:`gather`: defaults < preset < flags < ``--set``);
* the checks (:func:`check_fields`, run by :class:`Section`): a value outside ``choices`` or the bounds
  ``at_least`` / ``above`` / ``at_most`` is a :class:`~genemi.errors.ConfigError` naming the flag.

Every command also gets ``--config``, ``--set``, ``-v/--verbose`` and ``-q/--quiet`` (:func:`command_parser`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import types
import typing
from dataclasses import field
from typing import Any, Iterable, Mapping, Sequence

from genemi.errors import ConfigError

#: the words a switch accepts after its flag (``--sample-by-score on``), and ``auto`` for a tri-state one
ON_WORDS = ("on", "true", "yes", "1")
OFF_WORDS = ("off", "false", "no", "0")
AUTO_WORDS = ("auto",)


class _Explicit:
    """The value of a flag that sets a field to None on purpose (``--pretrained none``, ``--quick-gelu auto``):
    unlike an absent flag (None), it reaches the config."""

    def __repr__(self) -> str:
        return "NONE"


NONE = _Explicit()


# --- declaring options ----------------------------------------------------------------------------------------

def option(default: Any = None, help: str = "", *, flag: str | bool | None = None, aliases: Iterable[str] = (),
           backends: Iterable[str] | None = None, choices: Iterable[Any] | None = None,
           default_factory: Any = None, metavar: str | None = None, content: bool = True,
           stages: Iterable[str] | None = None, at_least: float | None = None, above: float | None = None,
           at_most: float | None = None, none: str | None = None, parse: Any = None, repeat: bool = False,
           words: bool = False, default_text: str | None = None, parts: Sequence[tuple[str, str]] = (),
           positional: bool = False, bare: Any = None, nargs: str | None = None, required: bool = False) -> Any:
    """A config field with its command-line flag and help.

    ``flag``: the flag (default ``--field-name``; ``False``: a YAML-only setting); ``aliases``: older spellings
    still accepted; ``backends``: where it only applies to some backends, their names (giving it with another
    backend is an error that says why, :func:`check_backend_options`); ``choices``: allowed values;
    ``at_least``/``above``/``at_most``: bounds, checked with the flag's name; ``none``: the word that sets the
    field to None from the command line (``--pretrained none``); ``parse``: the flag's argparse type;
    ``repeat``: a list field whose flag may be given several times; ``words``: a switch that also takes
    ``on``/``off`` (and ``auto`` = None for a ``bool | None`` field) after its flag, as older spellings did;
    ``default_text``: how ``--help`` shows a default that is computed elsewhere; ``parts``: a tuple field set
    element by element by its own flags, ``((flag, help), ...)``; ``positional``: an argument, not a flag;
    ``bare``: the value of the flag given without one (``--save-item-scores`` = csv); ``nargs``: a list field whose
    flag takes several values (``--from-ceclip-npy a.npy b.npy``); ``required``: a value must be given (flag,
    ``--config`` or ``--set``), else a ConfigError naming the flag.
    ``content=False`` marks a setting that cannot change what is written (batch sizes, timeouts, concurrency);
    ``stages``: in a section several pipeline stages share, the stages the option applies to."""
    meta = {"help": help, "flag": flag, "aliases": tuple(aliases), "backends": tuple(backends) if backends else None,
            "choices": tuple(choices) if choices is not None else None, "metavar": metavar, "content": content,
            "stages": tuple(stages) if stages else None, "at_least": at_least, "above": above, "at_most": at_most,
            "none": none, "parse": parse, "repeat": repeat, "words": words, "default_text": default_text,
            "parts": tuple(parts), "positional": positional, "bare": bare,
            "nargs": nargs, "required": required}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def section(cls: type, title: str, *, prefix: str = "") -> Any:
    """A nested config section (its YAML section is the field's name; ``--help`` groups its flags under
    ``title``). ``prefix``: put before the flags of its fields (``coco-order-`` -> ``--coco-order-images``),
    for a section class used twice."""
    return field(default_factory=cls, metadata={"section": title, "prefix": prefix})


def flag_of(f: dataclasses.Field, prefix: str = "") -> str:
    """The main flag of a field (its YAML key when it has none)."""
    flag = f.metadata.get("flag")
    if flag is False:
        return f.name
    if flag:
        return flag.replace("--", "--" + prefix, 1) if prefix else flag
    return "--" + prefix + f.name.replace("_", "-")


def flag_at(cls: type, dotted: str) -> str | None:
    """The flag of the option at YAML key ``dotted`` (``"coco_order.images"``) of ``cls``; None when it has none."""
    prefix = ""
    *parents, leaf = dotted.split(".")
    for name in parents:
        f = _fields(cls).get(name)
        if f is None or not dataclasses.is_dataclass(_hints(cls).get(name)):
            return None
        prefix += f.metadata.get("prefix", "")
        cls = _hints(cls)[name]
    f = _fields(cls).get(leaf)
    if f is None or "help" not in f.metadata or f.metadata.get("flag") is False or f.metadata.get("positional"):
        return None
    return flag_of(f, prefix)


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _base(hint: Any) -> tuple[Any, bool]:
    """``(type without None, whether None is allowed)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else hint), type(None) in typing.get_args(hint)
    return hint, False


# --- checks ---------------------------------------------------------------------------------------------------

def _bound_error(name: str, value: Any, f: dataclasses.Field) -> str | None:
    lo, above, hi = f.metadata.get("at_least"), f.metadata.get("above"), f.metadata.get("at_most")
    if lo is not None and hi is not None and not lo <= value <= hi:
        return f"{name} must be in [{lo:g}, {hi:g}], not {value:g}"
    if lo is not None and value < lo:
        return f"{name} must be at least {lo:g}, not {value:g}"
    if above is not None and value <= above:
        return f"{name} must be greater than {above:g}, not {value:g}"
    if hi is not None and value > hi:
        return f"{name} must be at most {hi:g}, not {value:g}"
    return None


@functools.lru_cache(maxsize=None)
def _literal_choices(cls: type) -> dict[str, tuple]:
    """Field name -> the values of its ``Literal`` type (the choices a field declares by its type)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        base, _ = _base(hint)
        if typing.get_origin(base) is typing.Literal:
            out[name] = typing.get_args(base)
    return out


def check_fields(obj: Any) -> None:
    """Refuse a value outside its field's ``choices`` (declared, or its ``Literal`` type) or bounds (a
    ConfigError naming the flag)."""
    literal = _literal_choices(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None and f.metadata.get("required"):
            name = f.name.upper() if f.metadata.get("positional") else flag_of(f)
            raise ConfigError(f"give {name}: {f.metadata['help']}")
        if value is None or "help" not in f.metadata:
            continue
        allowed = f.metadata.get("choices") or literal.get(f.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        if allowed and any(v not in allowed for v in values):
            bad = next(v for v in values if v not in allowed)
            raise ConfigError(f"{flag_of(f)} {bad!r}: choose {' or '.join(map(str, allowed))}")
        numbers = value if isinstance(value, (list, tuple)) else [value]
        for v in numbers:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                problem = _bound_error(flag_of(f), v, f)
                if problem:
                    raise ConfigError(problem)


class Section:
    """Base of a config section declared with :func:`option`: building it checks every field's choices and
    bounds (:func:`check_fields`), then the section's own :meth:`validate`, so a bad value from a flag, a preset
    or ``--set`` is refused with the flag's name before anything runs."""

    def __post_init__(self) -> None:
        check_fields(self)
        self.validate()

    def validate(self) -> None:
        """The section's own checks (raise a ConfigError naming the flag)."""


def require_positive(value: int, flag: str) -> None:
    if value < 1:
        raise ConfigError(f"{flag} must be at least 1, not {value}")


def require_fraction(value: float, flag: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{flag} must be in [0, 1], not {value}")


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


# --- the parser -----------------------------------------------------------------------------------------------

def _word(value: str, tri_state: bool) -> Any:
    lowered = value.lower()
    if lowered in ON_WORDS:
        return True
    if lowered in OFF_WORDS:
        return False
    if tri_state and lowered in AUTO_WORDS:
        return NONE
    raise argparse.ArgumentError(None, f"expected on or off{' or auto' if tri_state else ''}, got {value!r}")


class Switch(argparse.Action):
    """A boolean flag ``--x`` with its negation ``--no-x`` (older ``--no-...`` spellings among the aliases too).
    With ``words``, ``--x on|off`` (and ``auto``, None, for a tri-state field) is accepted as well."""

    def __init__(self, option_strings, dest, words: bool = False, tri_state: bool = False, **kwargs):
        strings = []
        for s in option_strings:
            strings.append(s)
            if s.startswith("--") and not s.startswith("--no-"):
                strings.append("--no-" + s[2:])
        self.words, self.tri_state = words, tri_state
        if words:
            kwargs["metavar"] = "on|off|auto" if tri_state else "on|off"
        super().__init__(strings, dest, nargs="?" if words else 0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        negated = option_string.startswith("--no-")
        if values is None or values == []:
            value: Any = not negated
        else:
            try:
                value = _word(values, self.tri_state)
            except argparse.ArgumentError as exc:
                parser.error(f"argument {option_string}: {exc.message}")
            if negated:
                parser.error(f"argument {option_string}: takes no value (use --{option_string[5:]} {values})")
        setattr(namespace, self.dest, value)

    def format_usage(self) -> str:
        return " | ".join(self.option_strings[:2])


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """One help style for every command: each flag's spellings once (hyphenated first), then its metavar;
    a switch as ``--x, --no-x``; defaults as ``(default: X)`` (added by the declarations, never ``[x]``).
    Argument defaults argparse holds (None for a flag not given) are never printed."""

    def _format_action_invocation(self, action):
        if not action.option_strings:
            return super()._format_action_invocation(action)
        names = ", ".join(action.option_strings)
        if action.nargs == 0 or isinstance(action, Switch):
            return names + (f" [{action.metavar}]" if isinstance(action, Switch) and action.words else "")
        return f"{names} {self._format_args(action, self._get_default_metavar_for_optional(action))}"


def _type_of(f: dataclasses.Field, hint: Any):
    """``(argparse type, choices, is a list)`` of a field."""
    base, _ = _base(hint)
    parse = f.metadata.get("parse")
    choices = f.metadata.get("choices")
    origin = typing.get_origin(base)
    if origin is typing.Literal and choices is None:
        choices = typing.get_args(base)
    if origin in (list, tuple) and not f.metadata.get("repeat") and not f.metadata.get("nargs"):
        item = (typing.get_args(base) or (str,))[0]
        convert = {int: int, float: float}.get(item, str)
        return parse or comma_list(convert), choices, True
    if origin in (list, tuple):
        item = (typing.get_args(base) or (str,))[0]
        return parse or {int: int, float: float}.get(item, str), choices, False
    return parse or {int: int, float: float}.get(base, str), choices, False


def comma_list(convert=str):
    """An argparse type: ``a,b,c`` -> ``[convert(a), convert(b), convert(c)]``."""

    def parse(text: str) -> list:
        try:
            return [convert(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            what = {int: "integers", float: "numbers"}.get(convert, "values")
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None

    parse.__name__ = f"comma list of {convert.__name__}"
    return parse


def _with_none(parse, word: str):
    def convert(text: str):
        return NONE if text.lower() == word else parse(text)

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _default_text(f: dataclasses.Field) -> str | None:
    if f.metadata.get("default_text") is not None:
        return f.metadata["default_text"]
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    else:
        return None
    if isinstance(default, bool):
        return "on" if default else "off"
    if default is None or default == "" or default == () or default == []:
        return None
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default))
    if isinstance(default, str) and default.strip() != default or default == "\t":
        return repr(default)
    return str(default)


def add_field_argument(group, f: dataclasses.Field, hint: Any, dest: str, prefix: str = "",
                       choices: Iterable[Any] | None = None) -> None:
    """The flag(s) of one field (values land in ``args.<dest>``; None = not given)."""
    text = f.metadata["help"]
    if f.metadata.get("backends"):
        text += f" [only {' / '.join(f.metadata['backends'])}]"
    if f.metadata.get("stages"):
        text += f" [stage {' / '.join(f.metadata['stages'])}]"
    default = _default_text(f)
    flags = [flag_of(f, prefix), *f.metadata["aliases"]]
    base, optional = _base(hint)
    if f.metadata.get("positional"):
        parse, allowed, _ = _type_of(f, hint)
        group.add_argument(dest, type=parse, choices=tuple(choices or allowed or ()) or None, nargs="?",
                           default=None, help=text, metavar=f.metadata.get("metavar"))
        return
    if f.metadata.get("parts"):
        for i, (part_flag, part_help) in enumerate(f.metadata["parts"]):
            shown = f" (default: {default.split(',')[i]})" if default else ""
            group.add_argument(part_flag, dest=f"{dest}__part{i}", type=float, default=None,
                               metavar=f.metadata.get("metavar") or "X", help=part_help + shown)
        return
    if base is bool:
        if default is not None and not (optional and f.default is None):
            text += f" (default: {default})"
        elif f.metadata.get("default_text"):
            text += f" (default: {f.metadata['default_text']})"
        group.add_argument(*flags, dest=dest, action=Switch, default=None, help=text,
                           words=f.metadata.get("words", False), tri_state=optional)
        return
    parse, allowed, _ = _type_of(f, hint)
    allowed = tuple(choices) if choices else allowed
    if f.metadata.get("none"):
        parse = _with_none(parse, f.metadata["none"])
    kw: dict[str, Any] = {"dest": dest, "default": None, "type": parse}
    if f.metadata.get("repeat"):
        kw["action"] = "append"
    if f.metadata.get("bare") is not None:
        kw["nargs"], kw["const"] = "?", f.metadata["bare"]
    if f.metadata.get("nargs"):
        kw["nargs"] = f.metadata["nargs"]
    is_list = typing.get_origin(base) in (list, tuple) and not f.metadata.get("repeat") and not f.metadata.get("nargs")
    if allowed:
        kw["metavar"] = f.metadata.get("metavar") or ("LIST" if is_list else "{" + ",".join(map(str, allowed)) + "}")
        if f.metadata.get("none") or is_list:
            text += f" (one of {', '.join(map(str, allowed))})"
        else:
            kw["choices"] = allowed
    else:
        kw["metavar"] = f.metadata.get("metavar") or ("LIST" if is_list else f.name.upper())
    if default is not None:
        text += f" (default: {default})"
    group.add_argument(*flags, help=text, **kw)


def add_section_arguments(group, section_cls: type, dest_prefix: str,
                          choices: dict[str, Iterable[Any]] | None = None, prefix: str = "") -> None:
    """One flag per field of ``section_cls`` (``choices`` overrides a field's choices); values land in
    ``args.<dest_prefix>__<field>`` (None = not given). Nested sections are not followed (:func:`add_options`
    does)."""
    hints = typing.get_type_hints(section_cls)
    for f in dataclasses.fields(section_cls):
        if "help" not in f.metadata or f.metadata.get("flag") is False:
            continue
        add_field_argument(group, f, hints[f.name], f"{dest_prefix}__{f.name}", prefix, (choices or {}).get(f.name))


def add_options(parser: argparse.ArgumentParser, cls: type, title: str | None = None, dest: str = "",
                prefix: str = "", group=None, skip: Iterable[str] = ()) -> None:
    """Flags for every field of ``cls`` (but those named in ``skip``) and of its nested sections
    (:func:`section`; each its own group in ``--help``); values land in ``args.<dest path joined by __>``, e.g.
    ``args.optim__lr``."""
    group = group or (parser.add_argument_group(title) if title else parser)
    hints = typing.get_type_hints(cls)
    nested = []
    skip = set(skip)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        name = f"{dest}__{f.name}" if dest else f.name
        if "section" in f.metadata:
            nested.append((f, name))
            continue
        if "help" not in f.metadata or f.metadata.get("flag") is False:
            continue
        add_field_argument(group, f, hints[f.name], name, prefix)
    for f, name in nested:
        add_options(parser, hints[f.name], f.metadata["section"] or None, name, prefix + f.metadata.get("prefix", ""),
                    group=None if f.metadata["section"] else group)


# --- from the command line to a config --------------------------------------------------------------------------

def given_values(args: argparse.Namespace, cls: type, dest: str = "") -> dict[str, Any]:
    """The options of ``cls`` given on the command line, as a nested dict of YAML keys (an explicit ``none``
    is None; element flags of a tuple are left to :func:`gather`)."""
    out: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{dest}__{f.name}" if dest else f.name
        if "section" in f.metadata:
            sub = given_values(args, hints[f.name], name)
            if sub:
                out[f.name] = sub
            continue
        value = getattr(args, name, None)
        if value is None:
            continue
        if f.metadata.get("repeat") and isinstance(value, list) and value and isinstance(value[0], list):
            value = [v for chunk in value for v in chunk]
        out[f.name] = None if value is NONE else value
    return out


def _apply_parts(args: argparse.Namespace, cls: type, values: dict[str, Any], dest: str = "") -> None:
    """Element flags of tuple fields (``--beta-1``): the other elements from the values so far or the default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{dest}__{f.name}" if dest else f.name
        if "section" in f.metadata:
            sub = values.get(f.name) if isinstance(values.get(f.name), dict) else {}
            _apply_parts(args, hints[f.name], sub, name)
            if sub:
                values[f.name] = sub
            continue
        given = {i: getattr(args, f"{name}__part{i}", None) for i in range(len(f.metadata.get("parts", ())))}
        given = {i: v for i, v in given.items() if v is not None}
        if not given:
            continue
        current = values.get(f.name)
        if current is None:
            current = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        current = list(current)
        for i, v in given.items():
            current[i] = v
        values[f.name] = current


def gather(cls: type, args: argparse.Namespace, preset: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values a command's config is built from: ``preset`` (default: ``--config``'s file) < the flags given
    < ``--set`` overrides; nested dicts of YAML keys, explicit None kept."""
    from genemi.presets import merge_dicts, parse_set_overrides, read_preset

    if preset is None:
        preset = read_preset(args.config) if getattr(args, "config", None) else {}
    values = merge_dicts(preset, given_values(args, cls))
    _apply_parts(args, cls, values)
    return merge_dicts(values, parse_set_overrides(getattr(args, "set", None)))


def build(cls: type, values: Mapping[str, Any], args: argparse.Namespace | None = None) -> Any:
    """The config of ``cls`` from :func:`gather`'s values (unknown keys refused with the nearest name)."""
    from genemi.presets import build_dataclass

    where = "the options"
    if args is not None and getattr(args, "config", None):
        where = f"--config {args.config} / flags / --set"
    elif args is not None and getattr(args, "set", None):
        where = "--set"
    return build_dataclass(cls, values, where=where)


def resolve(cls: type, args: argparse.Namespace) -> Any:
    """Defaults < ``--config`` preset < flags < ``--set``, built and checked."""
    return build(cls, gather(cls, args), args)


def command_parser(prog: str, description: str, *, config: str | None = "YAML file of options (the flags' names "
                   "with _ for -, sections as YAML sections); flags override it", progress: bool = False,
                   epilog: str | None = None, parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A command's parser with the flags every command has: ``--config``, ``--set``, ``-v/--verbose``,
    ``-q/--quiet`` (and ``--progress/--no-progress`` where a command shows progress bars). ``config=None``: a
    tool with no options file (``genemi generate export`` ...), which still has ``-v``/``-q``."""
    p = parser_class(prog=prog, description=description, formatter_class=HelpFormatter, epilog=epilog)
    g = p.add_argument_group("command")
    if config:
        g.add_argument("--config", default=None, metavar="FILE", help=config)
        g.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                       help="override one option by its YAML key, e.g. --set optim.lr=1e-5 (repeatable; applied "
                       "last)")
    add_logging_flags(g)
    if progress:
        g.add_argument("--progress", dest="progress", action=Switch, default=True,
                       help="progress bars (default: on)")
    return p


def tool_parser(prog: str, description: str, cls: type, *, epilog: str | None = None,
                parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser of a command whose options are the fields of one section ``cls`` (``--config``, ``--set``,
    ``-v``/``-q`` as every command); :func:`resolve` turns its arguments into the checked section."""
    p = command_parser(prog, description, epilog=epilog, parser_class=parser_class)
    add_options(p, cls, prog.split()[-1])
    return p


def add_logging_flags(group) -> None:
    """``-v/--verbose`` (debug logging) and ``-q/--quiet`` (errors only)."""
    group.add_argument("-v", "--verbose", action="store_true", default=False, help="debug logging")
    group.add_argument("-q", "--quiet", action="store_true", default=False, help="errors only")


def setup_logging(args: argparse.Namespace, default: int = logging.WARNING,
                  fmt: str = "%(levelname)s %(name)s: %(message)s") -> None:
    """Logging at ``default``, debug with ``-v``, errors only with ``-q`` (both: refused by the caller)."""
    if getattr(args, "verbose", False) and getattr(args, "quiet", False):
        raise ConfigError("-v/--verbose and -q/--quiet contradict each other; give one")
    level = logging.DEBUG if getattr(args, "verbose", False) else (
        logging.ERROR if getattr(args, "quiet", False) else default)
    logging.basicConfig(level=level, format=fmt)
    logging.getLogger().setLevel(level)


def given_keys(values: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The dotted YAML keys present in a nested dict of values (``{"optim": {"lr": 1}}`` -> ``{"optim.lr"}``)."""
    out: set[str] = set()
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            out |= given_keys(value, f"{prefix}{key}.")
        else:
            out.add(f"{prefix}{key}")
    return out
