"""Estimators.  Importing this package registers every built-in method."""

from evaltool.estimators import did  # noqa: F401
from evaltool.estimators.psm import ipw, method  # noqa: F401

from evaltool.estimators import synthesis  # noqa: F401  # isort: skip
from evaltool.estimators import multilevel  # noqa: F401  # isort: skip
