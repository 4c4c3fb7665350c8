"""Backends of a stage, registered by name and imported only when chosen.

A registry maps a backend name to ``"module:Class"``; adding a backend is one module plus one line in its
stage's registry. Every backend class is built as ``Class(config_section, context)`` and offers:

* ``check()``: cheap validation before any image is processed (files exist, URL given, ...);
* ``load()`` / ``offload()``: move models on / off the accelerator (no-ops for model-free backends).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from genemi.errors import ConfigError


@dataclass(frozen=True)
class BackendRegistry:
    stage: str
    flag: str  # the command-line flag that picks the backend, for messages
    entries: Mapping[str, str]  # name -> "module:Class"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def check_name(self, name: str) -> None:
        if name not in self.entries:
            raise ConfigError(f"unknown {self.flag} {name!r}; choose from {', '.join(self.entries)}")

    def backend_class(self, name: str) -> type:
        self.check_name(name)
        module, _, cls = self.entries[name].partition(":")
        return getattr(importlib.import_module(module), cls)

    def build(self, name: str, config: Any, context: Any) -> Any:
        return self.backend_class(name)(config, context)
