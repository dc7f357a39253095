"""Per-trust effects and random-effects synthesis across trusts (meta-analysis, meta-regression)."""

from evaltool.estimators.synthesis import method  # noqa: F401
