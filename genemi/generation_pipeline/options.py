"""Stage options: the pipeline's part of the option mechanism (:mod:`genemi.options`).

Each stage's config section is a :class:`StageSection` dataclass whose fields are declared with
:func:`genemi.options.option`; the pipeline's parser, the YAML preset section and the check that every given
option is used are all derived from them. The declaration helpers are re-exported here for the stage configs.
"""

from __future__ import annotations

from typing import ClassVar

from genemi.errors import ConfigError
from genemi.generation_pipeline.backends import BackendRegistry
from genemi.options import (Section, add_section_arguments, check_backend_options, check_fields, flag_of, option,
                            require_fraction, require_positive)

__all__ = ["StageSection", "add_section_arguments", "check_backend_options", "flag_of", "option", "require_fraction",
           "require_positive"]


class StageSection(Section):
    """Base of every stage's config section (a dataclass with ``backend`` and ``batch_size`` fields).
    ``backends`` names the stage's backend registry; building a section checks the backend name, the batch size,
    every field's choices and bounds and then the section's own :meth:`validate`, so a bad value from a flag, a
    preset or ``--set`` is refused with the flag's name before anything runs."""

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
        check_fields(self)
        self.validate()
