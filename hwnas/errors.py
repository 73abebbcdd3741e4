"""Errors a user can cause. Each message says what was wrong and what to do.

The CLI prints any ``HwnasError`` as one line and exits with status 2; every other
exception is a bug in hwnas and keeps its traceback.
"""


class HwnasError(Exception):
    """Base class for errors caused by input the user can correct."""


class ConfigError(HwnasError):
    """A bad flag, option, objective, constraint or setting."""


class GenotypeError(HwnasError):
    """A genotype that is not valid in its search space."""


class BenchmarkError(HwnasError):
    """A missing, corrupt or incomplete benchmark table."""


class RunError(HwnasError):
    """A run directory that cannot be used (exists, in use, missing, corrupt)."""


class DeviceError(HwnasError):
    """A device profile that is invalid or a device that is unavailable here."""


class DatasetError(HwnasError):
    """A dataset that cannot be found or loaded."""
