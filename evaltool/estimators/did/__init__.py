"""Difference-in-differences estimators."""

from evaltool.estimators.did import (
    did_staggered,  # noqa: F401
    event_study,  # noqa: F401
    twfe,  # noqa: F401
    twobytwo,  # noqa: F401
)
