"""Exception types raised by genemi library code (CLIs turn them into messages and exit codes)."""


class GenemiError(Exception):
    """Base class of every error genemi raises on purpose."""


class ConfigError(GenemiError, ValueError):
    """A configuration value, preset file or command-line override is invalid."""


class CheckpointError(GenemiError):
    """A checkpoint cannot be found, read, or does not fit the requested architecture."""


class ManifestError(GenemiError):
    """A JSONL manifest or annotation file is malformed (the message names file and line)."""


class DataError(GenemiError):
    """A dataset cannot be built from the given files."""


class ImageError(GenemiError):
    """An image file is missing, unreadable or unusable."""


class TrainingError(GenemiError):
    """Training cannot continue (for example, too many non-finite losses in a row)."""


class BackendUnavailable(GenemiError):
    """An optional backend or package is not installed or not available yet."""
