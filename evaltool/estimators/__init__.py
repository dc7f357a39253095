"""Estimators.  Importing this package registers every built-in method."""

from evaltool.estimators import did  # noqa: F401
from evaltool.estimators.psm import method as psm_method  # noqa: F401
