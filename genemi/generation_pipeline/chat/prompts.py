"""Instruction prompts for chat models: genemi's own (a text resource of the backend's package) or the user's
file, with ``{name}`` placeholders filled in."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from genemi.errors import ConfigError


def load_prompt(path: str | None, package: str, resource: str, **values: object) -> str:
    """The prompt text of ``path`` (a user's file) or of genemi's ``resource`` in ``package``, with each
    ``{name}`` of ``values`` replaced (other braces are left as they are, so JSON examples need no escaping)."""
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"instruction prompt file {file} does not exist")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read instruction prompt file {file}: {exc}") from exc
    else:
        try:
            text = resources.files(package).joinpath(resource).read_text(encoding="utf-8")
        except (OSError, FileNotFoundError) as exc:
            raise ConfigError(f"genemi's instruction prompt {resource} is missing from the installation "
                              "(reinstall genemi)") from exc
    if not text.strip():
        raise ConfigError(f"instruction prompt {path or resource} is empty")
    text = text.strip()
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text + "\n"
