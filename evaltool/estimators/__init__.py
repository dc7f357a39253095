"""Estimators.  Importing this package registers every built-in method."""

from evaltool.estimators import (
    did,  # noqa: F401
    multilevel,  # noqa: F401
)
