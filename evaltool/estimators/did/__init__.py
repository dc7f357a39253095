"""Difference-in-differences estimators."""

from evaltool.estimators.did import twobytwo  # noqa: F401
