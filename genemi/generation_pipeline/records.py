"""Old location of :mod:`genemi.records` (the record types pipeline, trainer and evaluator share)."""

from genemi.records import *  # noqa: F401,F403
