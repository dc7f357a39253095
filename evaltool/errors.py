"""One tree of exceptions and warnings for the whole package.

Errors say what is wrong, where (file, column, config key and YAML line),
what was found, and how to fix it.  The CLI maps ``ConfigError`` and
``DataError`` to exit code 2 and ``EstimationError`` to exit code 1.
"""

from __future__ import annotations


class EvaltoolError(Exception):
    """Base class of every error evaltool raises on purpose."""

    exit_code: int = 1


class ConfigError(EvaltoolError, ValueError):
    """The YAML config is invalid (unknown key, wrong type, bad value)."""

    exit_code = 2


class DataError(EvaltoolError, ValueError):
    """An input file or column is missing, malformed or inconsistent."""

    exit_code = 2


class OutputError(EvaltoolError, OSError):
    """The output folder cannot be written (exists already, not writable)."""

    exit_code = 2


class EstimationError(EvaltoolError, RuntimeError):
    """An estimator could not produce a valid estimate from valid input.

    Use ``user_error=True`` when the cause is a choice the user can change in
    the config (too few clusters, no overlap, empty design); the CLI then
    exits with code 2 instead of 1.
    """

    def __init__(self, message: str, *, user_error: bool = False) -> None:
        super().__init__(message)
        self.user_error = user_error
        self.exit_code = 2 if user_error else 1


class EvaltoolWarning(UserWarning):
    """Base class of every warning evaltool emits."""


class RowsDroppedWarning(EvaltoolWarning):
    """Rows were excluded from an analysis (always with a count and reason)."""


class OverlapWarning(EvaltoolWarning):
    """Treated and comparison units overlap poorly on the propensity score."""


class FewClustersWarning(EvaltoolWarning):
    """Too few clusters for cluster-robust standard errors to be reliable."""


class FigureWarning(EvaltoolWarning):
    """A figure could not be drawn; the results and the report are complete without it."""


class ConvergenceWarning(EvaltoolWarning):
    """An optimiser did not converge."""
